"""Medication mentions from a drug dictionary, with dose, route, frequency and status."""

from __future__ import annotations

import re
from functools import lru_cache

from consults.notes.context import assert_span, sentences
from consults.notes.lexicon import DOSE, FREQUENCIES, ROUTES, UNIT_NORMAL
from consults.notes.numbers import words_to_digits

_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9\-]*")
# Words the drug dictionary knows that are ordinary English or tests in a consultation.
_NOT_DRUGS = frozenset(
    {
        "water", "oxygen", "sugar", "salt", "caffeine", "alcohol", "iron", "air", "blood",
        "calcium", "potassium", "sodium", "zinc", "magnesium", "glucose", "nicotine", "ice",
        "heat", "coffee", "tea", "fluid", "fluids", "protein", "dax", "omega", "fiber",
        "vitamin", "vitamins", "cold", "today", "lactose", "hydrogen", "nitrogen", "carbon",
        "sulfur", "silver", "gold", "copper", "lead", "acid", "base", "chloride", "ethanol",
        "cocaine", "marijuana", "cannabis", "tobacco", "smoke", "alright", "pad", "gas",
        "contrast", "saline", "insulin pump", "urea", "mineral", "herbal",
    }
)  # fmt: skip
_STOPPED = re.compile(
    r"\b(?:stopp?(?:ed|ing)?|quit|no longer|discontinu\w+|came off|come off|went off|"
    r"got off|off of|ran out|run out|not taking|weaned)\b",
    re.IGNORECASE,
)
_HISTORICAL = re.compile(
    r"\b(?:used to|in the past|years ago|previously|tried|had been on)\b", re.I
)
_STARTED = re.compile(
    r"\b(?:start(?:ing)? (?:you|him|her|them)?\s*(?:on|with)?|put (?:you|him|her) on|"
    r"prescrib\w+|begin|initiat\w+|trial of|try (?:you )?on|give (?:you|him|her)|"
    r"send (?:in )?(?:a )?prescription|i'?m going to (?:have you take|order)|add)\b",
    re.IGNORECASE,
)
_CONTINUED = re.compile(
    r"\b(?:continue|keep (?:you )?(?:on|taking)|stay on|refill\w*|increase|decrease|"
    r"bump|adjust|go up on|go down on|double|same dose)\b",
    re.IGNORECASE,
)
_STOP_PLAN = re.compile(r"\b(?:stop|discontinue|hold|come off|get off)\b", re.IGNORECASE)


@lru_cache(maxsize=1)
def _finder():  # noqa: ANN202 - the package has no type hints
    from drug_named_entity_recognition import find_drugs

    return find_drugs


def find_drug_spans(text: str) -> list[tuple[str, int, int]]:
    """Drug names in text as (canonical name, char start, char end)."""
    tokens = [(m.group(0), m.start(), m.end()) for m in _TOKEN.finditer(text)]
    if not tokens:
        return []
    found = _finder()([t[0] for t in tokens], is_ignore_case=True)
    spans: list[tuple[str, int, int]] = []
    for drug, start_tok, end_tok in found:
        # The package's end index is exclusive.
        last = tokens[max(start_tok, end_tok - 1)]
        surface = text[tokens[start_tok][1] : last[2]]
        if surface.lower() in _NOT_DRUGS or len(surface) < 4:
            continue
        name = str(drug.get("name", surface))
        spans.append((name, tokens[start_tok][1], last[2]))
    return spans


def _first(table: dict[str, str], text: str) -> str | None:
    best: tuple[int, str] | None = None
    for pattern, value in table.items():
        m = re.search(pattern, text, re.IGNORECASE)
        if m and (best is None or m.start() < best[0]):
            if "{n}" in value:
                num = re.search(r"\d+", m.group(0))
                value = value.format(n=num.group(0) if num else "few")
            best = (m.start(), value)
    return best[1] if best else None


def parse_dose(text: str) -> str | None:
    """First dose in text, normalised: "twenty milligrams" -> "20 mg"."""
    return _dose_text(DOSE.search(words_to_digits(text)))


def _dose_text(m: re.Match[str] | None) -> str | None:
    """A DOSE match as "20 mg"."""
    if m is None:
        return None
    unit = UNIT_NORMAL.get(m.group("unit").lower(), m.group("unit").lower())
    return f"{m.group('num')} {unit}"


_DOSE_OF = re.compile(
    rf"{DOSE.pattern}\s+of\s+(?:(?:the|your|his|her|my|their)\s+)?$", re.IGNORECASE
)


def parse_dose_before(text: str) -> str | None:
    """A dose said just before the name: "you're on twenty milligrams of lisinopril" -> "20 mg".

    ``text`` is what precedes the name in its sentence."""
    return _dose_text(_DOSE_OF.search(words_to_digits(text[-80:])))


_UNITLESS_OF = re.compile(
    r"\b(?P<num>\d+(?:\.\d+)?)\s+of\s+(?:(?:the|your|his|her|their)\s+)?$", re.IGNORECASE
)


def parse_unitless_dose_before(text: str, *, drug: str) -> str | None:
    """A dose said before the name without its unit: "you're on five hundred of metformin" ->
    "500 mg", "two . five of norvasc" -> "2.5 mg" (units for insulin, mg for the rest).

    A small whole number is a count ("two of the tylenol" is two tablets), not a dose: only a
    decimal or a number from 5 up is read. The unit is the caller's to mark as assumed.
    """
    m = _UNITLESS_OF.search(words_to_digits(text[-80:]))
    if m is None:
        return None
    num = m.group("num")
    if "." not in num and int(num) < 5:
        return None
    return f"{num} {'units' if 'insulin' in drug.lower() else 'mg'}"


def parse_route(text: str) -> str | None:
    return _first(ROUTES, text)


def parse_frequency(text: str) -> str | None:
    return _first(FREQUENCIES, words_to_digits(text))


def med_status(*, sentence: str, speaker: str, planning: bool) -> str:
    """Status of a medication mention from the words around it and who says it."""
    if _HISTORICAL.search(sentence):
        return "historical"
    if speaker == "doctor" and planning:
        if _STOP_PLAN.search(sentence):
            return "stopped"
        if _CONTINUED.search(sentence):
            return "continued"
        if _STARTED.search(sentence):
            return "started"
    if _STOPPED.search(sentence):
        return "stopped"
    if speaker == "doctor" and _STARTED.search(sentence):
        return "started"
    return "current"


def mentions(*, text: str) -> list[tuple[str, str, int, int]]:
    """(drug name, sentence, start, end) for each drug mention, sentence by sentence."""
    out: list[tuple[str, str, int, int]] = []
    for sentence in sentences(text):
        for name, start, end in find_drug_spans(sentence):
            out.append((name, sentence, start, end))
    return out


def is_negated_mention(*, sentence: str, start: int, end: int) -> bool:
    """'I'm not on any blood thinners' style denials; stopping is a status, not a denial."""
    if _STOPPED.search(sentence) or _HISTORICAL.search(sentence):
        return False
    return assert_span(sentence=sentence, start=start, end=end).negated
