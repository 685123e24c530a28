"""Live red-flag phrases in what the patient says, negation respected."""

from __future__ import annotations

import re

from consults.notes.context import assert_span, sentences
from consults.notes.types import RedFlag, Urgency

# (pattern, category, urgency); urgency follows the Manchester-style five levels.
_RULES: tuple[tuple[tuple[str, ...], str, Urgency], ...] = (
    (
        (
            r"crushing (?:chest )?pain",
            r"chest pain (?:going|spreading|radiating) (?:down|to|into) (?:my |"
            r"the )?(?:left )?(?:arm|jaw)",
            r"elephant (?:sitting )?on (?:my|the) chest",
        ),
        "cardiac",
        "immediate",
    ),
    (
        (
            r"chest pain",
            r"chest tightness",
            r"chest pressure",
        ),
        "cardiac",
        "very_urgent",
    ),
    (
        (
            r"can'?t breathe",
            r"ca n't breathe",
            r"cannot breathe",
            r"unable to breathe",
            r"struggling to breathe",
            r"gasping",
            r"choking",
            r"turning blue",
            r"lips (?:are )?(?:turning )?blue",
        ),
        "respiratory",
        "immediate",
    ),
    (
        (
            r"short(?:ness)? of breath",
            r"trouble breathing",
            r"difficulty breathing",
        ),
        "respiratory",
        "very_urgent",
    ),
    (
        (
            r"(?:kill|hurt|harm)(?:ing)? my ?self",
            r"suicid\w+",
            r"end (?:my|it) (?:life|all)",
            r"don'?t want to (?:live|be alive|be here)",
            r"better off dead",
            r"take my (?:own )?life",
            r"overdos\w+",
        ),
        "mental_health",
        "immediate",
    ),
    (
        (
            r"face (?:is )?droop\w*",
            r"droop\w* (?:face|mouth|smile)",
            r"slurr\w+ (?:speech|words)",
            r"speech (?:is )?slurred",
            r"can'?t (?:move|feel) (?:my )?(?:arm|leg|one side)",
            r"sudden (?:weakness|numbness) (?:on|in|of) (?:one|my left|my right|the left|"
            r"the right) (?:side|arm|leg)",
            r"weakness on one side",
            r"worst headache of my life",
            r"thunderclap headache",
        ),
        "neurological",
        "immediate",
    ),
    (
        (
            r"seizures?",
            r"convulsions?",
            r"fitting",
            r"unconscious",
            r"unresponsive",
            r"passed out",
            r"blacked out",
            r"fainted",
        ),
        "neurological",
        "very_urgent",
    ),
    (
        (
            r"vomiting blood",
            r"throwing up blood",
            r"coughing up blood",
            r"heavy bleeding",
            r"bleeding (?:heavily|a lot|won'?t stop|that won'?t stop)",
            r"soak(?:ing|ed)? (?:through )?(?:a|one|my) pads?",
            r"black,? tarry stools?",
            r"blood in (?:my|the) stools?",
            r"bleeding profusely",
            r"hemorrhag\w+",
        ),
        "bleeding",
        "very_urgent",
    ),
    (
        (
            r"anaphyla\w+",
            r"throat (?:is )?(?:closing|swelling)",
            r"tongue (?:is )?swell\w+",
            r"lips (?:are )?swell\w+",
            r"swollen (?:tongue|lips|throat)",
        ),
        "anaphylaxis",
        "immediate",
    ),
    (
        (
            r"stiff neck (?:and|with) (?:a )?fever",
            r"fever (?:and|with) (?:a )?stiff neck",
            r"rash that (?:does ?n'?t|doesn'?t|won'?t) fade",
        ),
        "infection",
        "very_urgent",
    ),
    (
        (
            r"high fever",
            r"fever of (?:10[3-9]|11\d)",
        ),
        "infection",
        "urgent",
    ),
    (
        (r"severe (?:abdominal|stomach|belly) pain",),
        "abdominal",
        "urgent",
    ),
    (
        (
            r"sudden (?:loss of )?vision",
            r"lost (?:my )?vision",
            r"can'?t see",
        ),
        "vision",
        "very_urgent",
    ),
    (
        (r"pregnan\w+ (?:and|with) (?:bleeding|pain)",),
        "obstetric",
        "very_urgent",
    ),
)
_COMPILED = tuple(
    (re.compile(rf"\b(?:{'|'.join(p)})\b", re.IGNORECASE), c, u) for p, c, u in _RULES
)
_ORDER = {"immediate": 0, "very_urgent": 1, "urgent": 2, "standard": 3, "non_urgent": 4}


def detect_red_flags(text: str) -> list[RedFlag]:
    """Red-flag phrases in text, most urgent first; denied or hypothetical ones are skipped."""
    flags: dict[tuple[str, str], RedFlag] = {}
    for sentence in sentences(text) or [text]:
        taken: list[tuple[int, int]] = []
        for pattern, category, urgency in _COMPILED:
            for m in pattern.finditer(sentence):
                # A phrase inside a more urgent one already found is the same complaint.
                if any(s <= m.start() < e for s, e in taken):
                    continue
                a = assert_span(sentence=sentence, start=m.start(), end=m.end())
                if a.negated or a.hypothetical or a.experiencer != "patient":
                    continue
                if a.temporality == "historical":
                    continue
                taken.append((m.start(), m.end()))
                phrase = m.group(0).lower()
                flags.setdefault((phrase, category), RedFlag(phrase, category, urgency))
    return sorted(flags.values(), key=lambda f: _ORDER[f.urgency])
