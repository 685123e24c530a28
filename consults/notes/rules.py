"""Section rules for utterances whose section is certain from their words alone."""

from __future__ import annotations

import re

from consults.notes.context import FAMILY, is_question, strip_tags
from consults.notes.types import Utterance

_SOCIAL = re.compile(
    r"\b(?:smok\w+|cigarettes?|vap(?:e|ing)|tobacco|alcohol|drink(?:s|ing)? (?:beer|wine|alcohol|"
    r"socially|a lot|on the weekends?)|beers?|glass(?:es)? of wine|recreational drugs|marijuana|"
    r"cocaine|i work (?:as|at|in|for)|my job|retired|married|divorced|widowed|live (?:with|alone)|"
    r"exercise|work out|physical activity|occupation)\b",
    re.IGNORECASE,
)
_PLAN = re.compile(
    r"\b(?:(?:i'?m going to|i wan ?na|we wan ?na|i'?m gon ?na) (?:go ahead and )?(?:order|"
    r"prescribe|start|refer|send|put|have|get|give|increase|decrease|"
    r"recommend|schedule)|i'?d like (?:you )?to|i want (?:you )?to|we'?(?:ll| will) (?:order|start|"
    r"get|check|see|schedule|refer|continue|send|go ahead)|let'?s (?:go ahead|start|get|order|"
    r"continue|try|increase|schedule)|follow[- ]?up (?:with|in|appointment|visit)|come back|"
    r"see you (?:back )?in|"
    r"in (?:\d+|two|three|four|six|a couple of) (?:weeks|months)|refer(?:ral)?|prescri\w+|"
    r"continue (?:the|your|on)|go to the (?:er|emergency)|call (?:me|us|the office)|"
    r"if (?:it|that|this|you|things|the \w+) (?:gets?|get|becomes?|starts?|do(?:es)?n'?t|"
    r"worsens?|is n't|isn'?t)|physical therapy|schedule)\b",
    re.IGNORECASE,
)
_ASSESSMENT = re.compile(
    r"\b(?:my (?:impression|assessment|diagnosis)|i think (?:you|this|it|that|your) (?:have|has|"
    r"is|are|'s|'re)|consistent with|sounds like (?:you have|it'?s|a|an)|looks like (?:you have|"
    r"it'?s|a|an)|most likely|i suspect|you have (?:a|an) \w+ (?:strain|sprain|infection)|"
    r"diagnos\w+ (?:you )?with)\b",
    re.IGNORECASE,
)
_OBJECTIVE = re.compile(
    r"\b(?:on (?:your |my )?(?:physical )?exam(?:ination)?|your exam|i (?:do )?(?:hear|feel|see|"
    r"notice)|lungs (?:sound|are)|heart (?:sounds|is)|murmur|tender(?:ness)?|range of motion|"
    r"vital signs|your vitals|blood pressure (?:is|was|today)|x-?ray (?:shows|showed|revealed)|"
    r"(?:mri|ct|ultrasound|echo\w*|ekg|lab\w*|results?) (?:shows?|showed|revealed|came back|was|"
    r"were)|pulse ox|oxygen (?:saturation|level)|temperature (?:is|was))\b",
    re.IGNORECASE,
)
_OPENING = re.compile(
    r"\b(?:what brings you|what(?:'s| is) (?:going on|bringing you)|how can i help|what can i do "
    r"for you|what brought you|reason for (?:your|the) visit|what seems to be|tell me what|"
    r"how are you doing|what'?s been going on)\b",
    re.IGNORECASE,
)


def rule_section(*, utterance: Utterance) -> str | None:
    """The section an utterance certainly belongs to, or None to let the model decide."""
    text = strip_tags(utterance.text)
    if utterance.speaker == "doctor":
        if is_question(text):
            return None
        if _ASSESSMENT.search(text):
            return "assessment"
        if _PLAN.search(text):
            return "plan"
        if _OBJECTIVE.search(text):
            return "objective"
        return None
    if FAMILY.search(text):
        return "family_history"
    if _SOCIAL.search(text):
        return "social_history"
    return None


def is_opening_question(text: str) -> bool:
    """True for the doctor's 'what brings you in' style question."""
    return _OPENING.search(text) is not None
