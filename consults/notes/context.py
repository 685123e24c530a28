"""ConText-style assertion rules (negation, experiencer, history, hypothetical) and dialogue acts.

A hand-written rule set in the style of Harkema et al.'s ConText: triggers open a scope forward
(or backward) to the end of the sentence or the first terminator. medspaCy was tried; it pulls
spaCy and a compiled sentence splitter for what these few rules do, so it is not a dependency.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from consults.notes.numbers import is_spoken_point
from consults.notes.types import Utterance


@dataclass(frozen=True, slots=True)
class Assertion:
    negated: bool = False
    experiencer: str = "patient"
    temporality: str = "current"
    hypothetical: bool = False
    uncertain: bool = False


def _rx(*alts: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(alts) + r")\b", re.IGNORECASE)


# ACI-Bench spells contractions with a space ("do n't"), so both spellings are matched.
_NT = r"(?:n't|n 't| n't|not)"
NEG_PRE = _rx(
    r"no", r"not", r"denies", r"denied", r"deny", r"without", r"never", r"negative for",
    r"free of", r"nor", r"none", r"neither",
    rf"(?:do|does|did|have|has|had|am|is|are|was|were|ca|can|could){_NT}",
    r"dont", r"didnt", r"havent", r"hasnt", r"doesnt", r"isnt", r"wasnt", r"arent",
    r"not (?:had|having|have|got|noticed|experienced|been)", r"no (?:more|longer)",
    r"nothing like", r"any more", r"anymore", r"resolved", r"gone away",
)  # fmt: skip
NEG_POST = _rx(r"went away", r"is gone", r"are gone", r"has resolved", r"resolved", r"no more")
PSEUDO_NEG = _rx(
    r"not only", r"no change", r"not sure", r"no increase", r"not certain", r"no problem",
    r"no worries", r"not bad", r"no doubt", r"not that bad", r"not too bad", r"not really sure",
    r"not just", r"no idea", r"not going away", r"doesn'?t go away", r"do n't know",
    r"don'?t know", r"not a lot", r"not much better", r"not getting better", r"not better",
    r"not improving", r"not been able", r"can'?t seem", r"ca n't seem",
)  # fmt: skip
TERMINATORS = _rx(
    r"but", r"however", r"although", r"though", r"except", r"aside from", r"apart from",
    r"other than", r"which", r"yet", r"still", r"although", r"and i", r"and it", r"and my",
    r"and then", r"and now", r"because", r"since", r"so",
    # Unpunctuated speech restarts with what the patient does have: "no surgeries you know i've
    # had back pain", "i haven't had any problems there i have had some swelling".
    r"i ?'?ve had", r"i have had", r"i ?'?ve been having", r"i have been having", r"i do have",
    r"i did have",
)  # fmt: skip
FAMILY = _rx(
    r"my (?:mother|mom|mum|father|dad|brother|sister|brothers|sisters|grandmother|grandma|"
    r"grandfather|grandpa|aunt|uncle|cousin|parents|family|siblings?)",
    r"(?:his|her|your) (?:mother|mom|father|dad|brother|sister|grandmother|grandfather|parents|"
    r"family|siblings?)",
    r"runs? in (?:the|my|your|our) family",
    r"family history",
)
OTHER_PERSON = _rx(r"my (?:husband|wife|son|daughter|kids|children|friend|partner|coworker)")
HISTORICAL = _rx(
    r"used to", r"in the past", r"years ago", r"as a (?:child|kid|teenager)", r"previously",
    r"history of", r"back in", r"a long time ago", r"when i was (?:younger|a kid|little)",
    r"had (?:a|an) (?:\w+ )?(?:surgery|operation)", r"years back",
)  # fmt: skip
HYPOTHETICAL = _rx(
    r"if",
    r"in case",
    r"should you",
    r"whether",
    r"watch for",
    r"look out for",
    r"worr(?:y|ied)"
    r" about",
    r"make sure",
    r"unless",
    r"call (?:me|us|the office)",
    r"go to the (?:er|emergency)",
    r"could be",
    r"rule out",
    r"risk of",
    r"to prevent",
    r"prevent",
)
UNCERTAIN = _rx(r"maybe", r"might", r"possibly", r"probably", r"not sure", r"i think", r"kind of",
                r"sort of", r"i guess")  # fmt: skip

_SENT_SPLIT = re.compile(r"(?<=[.?!;])\s+|\s+[.?!;]\s+")


def sentences(text: str) -> list[str]:
    """Split an utterance into sentences; ACI-Bench puts spaces before punctuation, and writes a
    spoken decimal point as a full stop ("two . five milligrams"), which ends no sentence."""
    parts: list[str] = []
    start = 0
    for m in _SENT_SPLIT.finditer(text):
        if not is_spoken_point(text, m.start(), m.end()):
            parts.append(text[start : m.start()])
            start = m.end()
    parts.append(text[start:])
    return [s.strip() for s in parts if s and s.strip(" .?!;")]


def _last_before(pattern: re.Pattern[str], text: str, end: int) -> re.Match[str] | None:
    last = None
    for m in pattern.finditer(text, 0, end):
        last = m
    return last


def _terminated(text: str, start: int, end: int) -> bool:
    return TERMINATORS.search(text, start, end) is not None


def _pseudo_covers(sentence: str, trig: re.Match[str]) -> bool:
    return any(p.start() <= trig.start() < p.end() for p in PSEUDO_NEG.finditer(sentence))


def assert_span(*, sentence: str, start: int, end: int) -> Assertion:
    """ConText assertion for the concept at sentence[start:end]."""
    negated = False
    for trig in NEG_PRE.finditer(sentence, 0, start):
        if _pseudo_covers(sentence, trig):
            continue
        if not _terminated(sentence, trig.end(), start):
            negated = True
    if not negated:
        for trig in NEG_POST.finditer(sentence, end):
            if not _terminated(sentence, end, trig.start()):
                negated = True
                break
    experiencer = "patient"
    fam = FAMILY.search(sentence)
    if fam and not _terminated(sentence, min(fam.end(), start), max(fam.start(), start)):
        experiencer = "family"
    elif (other := OTHER_PERSON.search(sentence)) and other.end() <= start:
        experiencer = "other"
    temporality = "current"
    hist = HISTORICAL.search(sentence)
    if hist and not _terminated(sentence, min(hist.end(), start), max(hist.start(), start)):
        temporality = "historical"
    hyp = _last_before(HYPOTHETICAL, sentence, start)
    hypothetical = bool(hyp and not _terminated(sentence, hyp.end(), start))
    uncertain = UNCERTAIN.search(sentence) is not None
    return Assertion(negated, experiencer, temporality, hypothetical, uncertain)


# --- dialogue acts -------------------------------------------------------------------------

_QUESTION_START = re.compile(
    r"^(?:(?:and|so|okay|ok|alright|all right|um|uh|now|also|,|\s)+)?"
    r"(?:do|does|did|are|is|was|were|have|has|had|any|anything|how about|what about|ever|"
    r"can|could|would|will|you have|you've|you're|you are|no)\b",
    re.IGNORECASE,
)
_UNPUNCTUATED_ASK = re.compile(
    r"\b(?:have you|do you|did you|are you|is there|any (?:other )?\w+|how about|what about|"
    r"or anything(?: like that)?$)",
    re.IGNORECASE,
)
_ASK_WORDS = 25  # an unpunctuated turn's question is in its last words
_NO = re.compile(
    r"^\W*(?:(?:um+|uh+|oh|well|hm+|mm)\W+)?"
    r"(?:no+|nope|nah|not really|not at all|negative|never|none|nothing|not that i know"
    r"(?: of)?|i do n't|i don'?t|i have n't|i haven'?t|i did n't|i didn'?t|no ma'am|no sir|"
    r"i have not|i do not|i did not|i am not|i'?m not|not at this point|"
    r"uh-uh|not recently|not lately)\b"
    # "I don't know", "I'm not sure": the patient cannot say, which is not a no.
    r"(?!\W*(?:(?:really|quite|even|exactly|totally)\W+)?"
    r"(?:know(?!\W+of\b)|remember|recall|sure|certain|understand)\b)",
    re.IGNORECASE,
)
_YES = re.compile(
    r"^\W*(?:(?:um|uh|oh|well)\W+)?(?:yes|yeah|yep|yup|yea|mm-hmm|mhm|uh-huh|correct|right|"
    r"sure|i do|i have|i did|definitely|absolutely|a little|a bit|sometimes|occasionally|"
    r"some|i am|i'm taking|a lot|exactly|that'?s (?:it|right|correct|the one))\b"
    r"(?!\s*n'?t\b|\s+not\b)",  # "i do n't know" is no yes
    re.IGNORECASE,
)


_TAG = re.compile(
    r"(?:^|[,.]?\s*)(?:okay|ok|right|alright|all right|yeah|you know|does that sound good|"
    r"sound good|is that okay|does that make sense|how does that sound)\s*\?\s*$",
    re.IGNORECASE,
)
_DICTATION = re.compile(r"\bhey\s*,?\s*(?:dragon|dax)\s*[?,.]?[^.?!]*[.?!]?", re.IGNORECASE)


def strip_tags(text: str) -> str:
    """Drop dictation commands and trailing tag questions ("..., okay ?")."""
    text = _DICTATION.sub(" ", text).strip()
    while True:
        shorter = _TAG.sub("", text).strip()
        if shorter == text:
            return text
        text = shorter


def is_question(text: str) -> bool:
    """True when a doctor's utterance ends by asking the patient something."""
    parts = sentences(strip_tags(text))
    if not parts:
        return False
    if "?" in parts[-1] or _QUESTION_START.match(parts[-1]):
        return True
    # ASR transcripts carry no punctuation: a final clause asking "any ... / have you ..." is
    # taken as a question.
    if not re.search(r"[.?!]", text):
        return _UNPUNCTUATED_ASK.search(" ".join(parts[-1].split()[-_ASK_WORDS:])) is not None
    return False


# Where a question asks anew ("... any nausea vomiting or diarrhea are you peeing a lot"); one
# after "or" goes on asking the same ("do you have chest pain or are you short of breath").
_ASKS = re.compile(
    r"(?<!\bor )\b(?:any|have you|do you|did you|are you|is there|is it|how about|"
    r"what about)\b",
    re.IGNORECASE,
)


def yes_answers_from(question: str, start: int = 0) -> int:
    """Where what a "yes" answers begins in a question from ``start``: the last of several
    questions asked together (a "yes" to "any nausea vomiting or diarrhea ... are you peeing a
    whole lot" is a yes to the peeing, D2N063). A "no" answers them all ("any fever any
    chills" "no")."""
    asks = [m.start() for m in _ASKS.finditer(question, start)]
    return asks[-1] if len(asks) > 1 else start


def question_sentence(text: str, *, answer: bool | None = None) -> str:
    """The part of a doctor's turn that is the question (its last question sentence), and of
    it what a yes ``answer`` answers (`yes_answers_from`)."""
    parts = sentences(strip_tags(text))
    asked = [s for s in parts if "?" in s or _QUESTION_START.match(s)]
    sentence = asked[-1] if asked else (parts[-1] if parts else text)
    words = sentence.split()
    if len(words) > _ASK_WORDS:
        # An unpunctuated turn is one long "sentence": what is asked is its end, from the first
        # asking clause there ("... associated with swelling ... have you sprained your ankle
        # before": a "no" answers the sprain, not the swelling).
        tail = " ".join(words[-_ASK_WORDS:])
        ask = _UNPUNCTUATED_ASK.search(tail)
        sentence = tail[ask.start() :] if ask else tail
    return sentence[yes_answers_from(sentence) :] if answer is True else sentence


def answer_polarity(text: str) -> bool | None:
    """True for a yes-answer, False for a no-answer, None when the reply is neither."""
    if _NO.match(text):
        return False
    if _YES.match(text):
        return True
    return None


def preceding_question(*, utterances: list[Utterance], index: int) -> Utterance | None:
    """The doctor question a patient turn answers: the closest doctor turn before it."""
    for j in range(index - 1, max(-1, index - 3), -1):
        prev = utterances[j]
        if prev.speaker == "doctor":
            return prev if is_question(prev.text) else None
    return None
