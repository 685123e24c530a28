"""Lexicon post-correction: drug names Whisper garbled, doses and vitals in clinical form.

A drug correction needs evidence twice over. The heard words must be suspect (the decoder was
unsure of one of them, or they come right before a dose, or right after "taking", "allergic
to"…), and they must sound and spell like a name in the visit's lexicon (intake medicines, the
clinic formulary). Each change keeps the heard words and its confidence beside it, so the
physician sees it and can revert it; below ``threshold`` nothing changes.

Doses and vitals are rewritten in clinical form ("ten milligrams" → "10 mg", "one twenty eight
over eighty two" → "128/82 mmHg"), again with the spoken form kept.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from dataclasses import dataclass, replace
from functools import lru_cache

from consults.speech.types import (
    Correction,
    Segment,
    TextScorer,
    Transcript,
    Word,
    apply_corrections,
)

log = logging.getLogger(__name__)

# Calibrated on the bench's development set (bench/clinical_speech.py): the lowest bar at
# which every applied drug correction was right there (docs/speech.md, "Correction").
DEFAULT_THRESHOLD = 0.78
# A word the decoder gave less than this probability makes its span a candidate.
LOW_PROBABILITY = 0.6
MAX_SPAN_WORDS = 3
# Without any of those cues a span must score this much above the bar.
STRONG_MARGIN = 0.06
# A name run together with the word before ("addrosuvastatin") costs this much confidence.
GLUE_PENALTY = 0.06
GLUE_MIN_PREFIX, GLUE_MIN_NAME = 2, 6
# When the runner-up name scores within this of the best, the confidence drops by the shortfall.
AMBIGUITY_GAP = 0.08
# A heard word that fits a name and the name it holds or is held by ("citalopram",
# "escitalopram") within this of each other is not corrected at all.
FAMILY_GAP = 0.1

# The audio check (``scorer``): a suspect span whose sound and spelling fit a lexicon name at
# least this well, though below the bar, is decoded again, forced, with each of its
# ACOUSTIC_NAMES closest names in its place; a name is put in when the audio fits the line with
# it better than the line as heard by ACOUSTIC_MARGIN: a natural log-likelihood ratio of 4,
# about 55 to 1. On the bench (docs/speech.md) right fixes gained 6-17 and the one wrong one
# 3.1 ("penicillinopril" -> penicillin; said: pantoprazole).
ACOUSTIC_MIN_MATCH = 0.55
# A name on the visit's intake (the patient's medicines and allergies) is always among the
# names tried, as a rival if nothing else, and may go in from a looser spelling match: the
# patient listed it, and the audio must still pick it out by the margin. "behusts" (said:
# "allergic to peanuts", peanuts on the intake) spells like peanuts at 0.41 and the line fits
# it by +9.4.
ACOUSTIC_INTAKE_MIN_MATCH = 0.4
ACOUSTIC_NAMES = 3
ACOUSTIC_MARGIN = 4.0

_LETTERS = re.compile(r"[^a-z]")
_NUMBER_WORDS = {
    "zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
_UNITS = {
    "milligram": "mg", "milligrams": "mg", "mg": "mg", "micrograms": "mcg", "microgram": "mcg",
    "mcg": "mcg", "grams": "g", "gram": "g", "units": "units", "unit": "units",
    "milliliters": "mL", "milliliter": "mL", "millilitres": "mL", "ml": "mL",
    "miligrams": "mg", "miligram": "mg", "milligramme": "mg", "milligrammes": "mg", "mlg": "mg",
}  # fmt: skip
# Words after which a drug name is expected.
_CUES = frozenset(
    {"taking", "take", "takes", "took", "prescribe", "prescribed", "start", "started", "on",
     "to", "of", "with", "using", "continue", "stop", "stopped", "try", "tried", "me", "you",
     "gave", "give", "increase", "add", "use", "the", "your", "my"}
)  # fmt: skip
_DOSE_AHEAD = 3
# "200, and 50": Whisper writes the hundreds and the tens of "two hundred and fifty" apart.
_SPLIT_HUNDREDS = r"[1-9]00,?\s+and\s+[1-9]\d?\b"
_NUM = (
    rf"(?:{_SPLIT_HUNDREDS}|\d+(?:\.\d+)?|(?:(?:"
    + "|".join(_NUMBER_WORDS)
    + r"|hundred|and|point)(?:[\s-]+|\b))+)"
)
# Tens Whisper hears as ordinary words when a unit follows ("forty milligrams" → "for the
# milligrams"): the words, and the number they stand for right before a dose unit.
_SOUNDS_LIKE_TENS = {"for the": 40, "forty the": 40, "fif the": 50, "fifth the": 50}
_SOUNDS_LIKE = re.compile(
    r"\b(?P<num>" + "|".join(_SOUNDS_LIKE_TENS) + r")\s+(?P<unit>[a-z]+(?:[- ][a-z]+)?)\b",
    re.IGNORECASE,
)
SOUNDS_LIKE_CONFIDENCE = 0.85
_BP = re.compile(
    rf"\b(?P<sys>{_NUM})\s*(?:over|/)\s*(?P<dia>{_NUM})"
    r"(?P<unit>\s*(?:mm ?hg|millimet(?:er|re)s? of mercury))?",
    re.IGNORECASE,
)
# "one eighteen over seventy six" written as a dotted number: "1.18.76".
_BP_DOTTED = re.compile(r"(?<![\d.])(?P<sys>[12]\.\d\d)\.(?P<dia>\d{2,3})(?![\d.]*\d)")
# After "blood pressure" (or "BP") within a few words, Whisper may write the reading as one
# decimal number ("128.82"), or hear "over" as "or" ("160 or 100", "135mm or 85mm").
_PRESSURE_CUE = re.compile(r"\b(?:blood\s+pressure|bp|pressure)\b", re.IGNORECASE)
_CUE_REACH = 40  # characters from the end of the cue to the reading
_BP_DECIMAL = re.compile(r"(?<![\d.])(?P<sys>\d{2,3})\.(?P<dia>\d{2,3})(?![\d.]*\d)")
CUED_PRESSURE_CONFIDENCE = 0.9
_BP_OR = re.compile(
    r"(?<![\d.])(?P<sys>\d{2,3})(?:\s*mm)?,?\s+or\s+(?P<dia>\d{2,3})(?:\s*mm)?\b", re.IGNORECASE
)
_MIN_PULSE_PRESSURE = 20  # "130 or 120" is two guesses at one number, not a reading
# A dose is never written with a zero at the end of its decimals ("1.0 mg" is on the ISMP list
# of error-prone notations: read as 10 mg). Whisper writes "one hundred milligrams" as "1.100
# milligrams" at times; read as 1.1 mg that would be a dose a hundred times too small, so such
# a number is left as it was heard.
_TRAILING_ZERO = re.compile(r"\d\.\d*0\b")
_DOSE = re.compile(rf"\b(?P<num>{_NUM})[\s-]*(?P<unit>[a-z]+(?:[- ][a-z]+)?)\b", re.IGNORECASE)
# Whisper splits and bends unit words ("milli-grams", "milli drams"): a word or two that spell
# within this similarity of a unit is that unit.
_LOOSE_UNITS = {"milligrams": "mg", "micrograms": "mcg", "milliliters": "mL"}
_LOOSE_UNIT_SIMILARITY = 0.8


@dataclass(frozen=True, slots=True)
class _Token:
    core: str  # letters only, lower case
    text: str  # as recognised, with its leading space
    start: float
    end: float
    probability: float
    char_start: int  # in the segment text the tokens spell
    char_end: int


@dataclass(frozen=True, slots=True)
class _Edit:
    char_start: int
    char_end: int
    correction: Correction


# --------------------------------------------------------------------------- matcher


@lru_cache(maxsize=4096)
def _phonetic(text: str) -> str:
    import jellyfish

    return jellyfish.metaphone(text).lower()


def _similarity(a: str, b: str) -> float:
    import jellyfish

    if not a or not b:
        return 0.0
    return 1.0 - jellyfish.levenshtein_distance(a, b) / max(len(a), len(b))


def match_score(heard: str, name: str) -> float:
    """How much ``heard`` (one or more words) sounds and spells like ``name``, 0..1."""
    a, b = _LETTERS.sub("", heard.lower()), _LETTERS.sub("", name.lower())
    if len(a) < 3 or len(b) < 3:
        return 0.0
    sound = _similarity(_phonetic(a), _phonetic(b))
    spelling = _similarity(a, b)
    # A short syllable heard for a long name ("Lisa" for lisinopril) is weak evidence.
    length = min(len(a), len(b)) / max(len(a), len(b))
    return round((0.55 * sound + 0.45 * spelling) * (0.7 + 0.3 * length), 4)


def best_match(heard: str, lexicon: tuple[str, ...]) -> tuple[str, float] | None:
    """The lexicon name that ``heard`` most sounds like, with its score; None when empty."""
    ranked = ranked_matches(heard, lexicon)
    return ranked[0] if ranked else None


def ranked_matches(
    heard: str, lexicon: tuple[str, ...], *, top: int = 2
) -> list[tuple[str, float]]:
    """The ``top`` lexicon names ``heard`` sounds most like, best first, with their scores."""
    scored = sorted(((match_score(heard, name), name) for name in lexicon), reverse=True)
    return [(name, score) for score, name in scored[:top]]


# --------------------------------------------------------------------------- drugs


def _tokens(segment: Segment) -> tuple[str, list[_Token]]:
    """The segment's text rebuilt from its words (or split from its text), with offsets."""
    words = segment.words or tuple(
        Word(start=segment.start, end=segment.end, text=f" {w}") for w in segment.text.split()
    )
    tokens: list[_Token] = []
    text = ""
    for word in words:
        lead = len(word.text) - len(word.text.lstrip())
        begin = len(text) + (lead if text else 0)
        text += word.text if text else word.text.lstrip()
        tokens.append(
            _Token(
                core=_LETTERS.sub("", word.text.lower()),
                text=word.text,
                start=word.start,
                end=word.end,
                probability=word.probability,
                char_start=begin,
                char_end=len(text),
            )
        )
    return text, tokens


def _is_dose_word(token: _Token) -> bool:
    bare = token.text.strip().lower().strip(".,;:")
    return bool(re.match(r"^\d", bare)) or bare in _UNITS or bare in _NUMBER_WORDS


def _spans(tokens: list[_Token], lexicon: tuple[str, ...]):  # noqa: ANN202 - a generator
    """(first token, word count, tokens, letters heard) of each span that could be a garbled
    name: 1-3 words, no number or unit among them, none already a lexicon name."""
    known = {_LETTERS.sub("", name.lower()) for name in lexicon}
    for i in range(len(tokens)):
        for n in range(1, MAX_SPAN_WORDS + 1):
            span = tokens[i : i + n]
            if len(span) < n or any(not t.core or _is_dose_word(t) for t in span):
                break
            heard = "".join(t.core for t in span)
            if heard in known or any(t.core in known for t in span):
                break  # already a lexicon word: nothing to correct
            yield i, n, span, heard


def _drug_edits(
    tokens: list[_Token], *, lexicon: tuple[str, ...], preferred: frozenset[str], threshold: float
) -> list[_Edit]:
    candidates: list[tuple[float, int, int, str, str, int]] = []
    for i, n, span, heard in _spans(tokens, lexicon):
        unsure = min(t.probability for t in span) < LOW_PROBABILITY
        dose_next = any(_is_dose_word(t) for t in tokens[i + n : i + n + _DOSE_AHEAD])
        cued = i > 0 and tokens[i - 1].core in _CUES
        ranked = ranked_matches(heard, lexicon)
        if not ranked:
            continue
        name, score = ranked[0]
        why = []
        glue = _glued(span[0], lexicon) if n == 1 else None
        if glue is not None and glue[2] > score:
            # "prescribeboxycycline": the word before ran into the name.
            ranked = [(glue[1], glue[2]), *(r for r in ranked if r[0] != glue[1])]
            name, score = glue[1], glue[2]
            why.append(f"run together with {span[0].text.strip()[: glue[0]]!r}")
        else:
            glue = None
        # Two names that fit almost as well ("valsartan", "losartan") make it a guess, and
        # so does a name inside another ("citalopram", "escitalopram").
        rival = _family(name, lexicon)
        if rival is not None and score - match_score(heard, rival) < FAMILY_GAP:
            # "acitalopram": citalopram or escitalopram, whose doses differ twofold. Which
            # one was said is a coin flip, and no cue (a dose after it) settles it.
            continue
        if rival is not None:
            score -= AMBIGUITY_GAP
            why.append(f"could also be {rival}")
        elif len(ranked) > 1 and score - ranked[1][1] < AMBIGUITY_GAP:
            score -= AMBIGUITY_GAP - (score - ranked[1][1])
            why.append(f"also close to {ranked[1][0]}")
        # Words the decoder was sure of, in no drug context, need a near-exact match.
        if not (unsure or dose_next or cued) and score < threshold + STRONG_MARGIN:
            continue
        if name.lower() in preferred:
            score += 0.05
            why.append("on the intake list")
        if unsure:
            why.append("recognised with low confidence")
        if dose_next:
            score += 0.03
            why.append("said before a dose")
        confidence = round(min(1.0, score), 3)
        if confidence >= threshold:
            reason = f"sounds like {name} ({', '.join(why)})"
            candidates.append((confidence, i, i + n, name, reason, glue[0] if glue else 0))
    # The most confident first; spans that overlap a chosen one are dropped.
    chosen: list[_Edit] = []
    taken: set[int] = set()
    for confidence, i, j, name, reason, kept in sorted(candidates, key=lambda c: (-c[0], c[1])):
        if taken.intersection(range(i, j)):
            continue
        taken.update(range(i, j))
        span = tokens[i:j]
        heard = "".join(t.text for t in span).strip()
        if kept:
            name = f"{heard[:kept]} {name}"
        chosen.append(
            _Edit(
                char_start=span[0].char_start,
                char_end=span[-1].char_end,
                correction=Correction(
                    start=span[0].start,
                    end=span[-1].end,
                    heard=heard,
                    corrected=name + _trailing_punctuation(heard),
                    kind="drug",
                    confidence=confidence,
                    reason=reason,
                ),
            )
        )
    return chosen


def _acoustic_edits(
    segment: Segment,
    text: str,
    tokens: list[_Token],
    *,
    lexicon: tuple[str, ...],
    taken: list[tuple[int, int]],
    scorer: TextScorer,
    threshold: float,
    preferred: frozenset[str] = frozenset(),
) -> list[_Edit]:
    """Spans that sound a little like a drug, settled by the audio (see ACOUSTIC_MARGIN)."""
    intake = [name for name in lexicon if name.lower() in preferred]
    spans: list[tuple[float, int, int, str, list[tuple[str, float]]]] = []
    for i, n, span, core in _spans(tokens, lexicon):
        # A span starts and ends on the name itself, not on "the", "to", "my"...
        if span[0].core in _CUES or span[-1].core in _CUES:
            continue
        if min(t.probability for t in span) >= LOW_PROBABILITY:
            continue
        ranked = ranked_matches(core, lexicon, top=ACOUSTIC_NAMES)
        if not ranked or ranked[0][1] >= threshold:
            continue  # the lexicon's own bar decides those
        tried = {name for name, _ in ranked}
        names = [
            *ranked,
            *((name, match_score(core, name)) for name in intake if name not in tried),
        ]
        worth = [score for name, score in names if score >= _min_match(name, preferred)]
        if worth:
            spans.append((max(worth), i, i + n, core, names))
    edits: list[_Edit] = []
    used = list(taken)
    for _, i, j, core, ranked in sorted(spans, key=lambda s: (-s[0], s[1])):
        first, last = tokens[i], tokens[j - 1]
        if any(first.char_start < b and a < last.char_end for a, b in used):
            continue
        used.append((first.char_start, last.char_end))
        heard = text[first.char_start : last.char_end]
        options = [(name, name) for name, _ in ranked]
        glue = _glued(first, lexicon) if j == i + 1 else None
        if glue is not None:
            # "addosuvastatin": the word before may have run into the name.
            options.append((glue[1], f"{heard[: glue[0]]} {glue[1]}"))
        punctuation = _trailing_punctuation(heard)
        lines = [
            text[: first.char_start] + words + punctuation + text[last.char_end :]
            for _, words in options
        ]
        names = list(dict.fromkeys(name for name, _ in options))
        scores = scorer(segment.start, segment.end, [text, *lines], names)
        gains = [round(score - scores[0], 2) for score in scores[1:]]
        best = max(range(len(options)), key=gains.__getitem__)
        name, words = options[best]
        # A name with a family member (citalopram / escitalopram) is never put in this way:
        # "it telepram" (said: escitalopram) fitted citalopram by +7.9 and escitalopram by
        # less; a syllable like "es" is more than forced decoding of a garble can settle, and
        # the two doses differ.
        if gains[best] < ACOUSTIC_MARGIN or _family(name, lexicon) is not None:
            continue
        # The audio must settle which name, not only that some name beats a garble: the
        # line as heard can fit worse than any real word. "teacomprosol" (said: omeprazole)
        # fitted metoprolol by +11.8 and esomeprazole by +11.5; "tetronine" (said: codeine,
        # not among the names tried) fitted sertraline by +8.5, a name it spells like at only
        # 0.53, under the match that makes a span worth checking.
        rivals = [g for (other, _), g in zip(options, gains, strict=True) if other != name]
        if rivals and gains[best] - max(rivals) < ACOUSTIC_MARGIN:
            continue
        match = match_score(core, name)
        if match < _min_match(name, preferred):
            continue
        edits.append(
            _Edit(
                char_start=first.char_start,
                char_end=last.char_end,
                correction=Correction(
                    start=first.start,
                    end=last.end,
                    heard=heard,
                    corrected=words + punctuation,
                    kind="drug",
                    confidence=round(match, 3),
                    reason=(
                        f"sounds a little like {name}, under the bar by sound and spelling; "
                        f"the recording fits {name} better than the words heard: Whisper finds "
                        f"the line with it {times_likelier(gains[best])} times likelier, and "
                        f"likelier than with {' or '.join(n for n in names if n != name)}"
                    ),
                ),
            )
        )
    return edits


def _min_match(name: str, preferred: frozenset[str]) -> float:
    """How well a span must spell like ``name`` for the audio check to put it in."""
    return ACOUSTIC_INTAKE_MIN_MATCH if name.lower() in preferred else ACOUSTIC_MIN_MATCH


def times_likelier(log_ratio: float) -> str:
    """A natural log-likelihood ratio in words a reader takes in: 10.5 -> "about 36,000"."""
    ratio = math.exp(log_ratio)
    if ratio >= 1e6:
        return "over a million"
    digits = max(0, len(str(int(ratio))) - 2)  # two significant figures
    return f"about {round(ratio, -digits):,.0f}"


def _glued(token: _Token, lexicon: tuple[str, ...]) -> tuple[int, str, float] | None:
    """(letters kept in front, name, score) when the end of one word matches a name."""
    word = token.text.strip().rstrip(".,;:?!")
    if not word.isalpha() or len(word) < GLUE_MIN_PREFIX + GLUE_MIN_NAME:
        return None
    best: tuple[int, str, float] | None = None
    for k in range(GLUE_MIN_PREFIX, len(word) - GLUE_MIN_NAME + 1):
        match = best_match(word[k:], lexicon)
        if match is not None and _has_longer_front(match[0], lexicon):
            # "desitalopram" (said: escitalopram) is not "de" + citalopram: the letters cut
            # off may be the front of the longer name.
            continue
        if match is not None and (best is None or match[1] - GLUE_PENALTY > best[2]):
            best = (k, match[0], round(match[1] - GLUE_PENALTY, 4))
    return best


def _has_longer_front(name: str, lexicon: tuple[str, ...]) -> bool:
    """Whether another lexicon name is ``name`` with letters in front (escitalopram)."""
    key = name.lower()
    return any(len(o) > len(key) and o.lower().endswith(key) for o in lexicon)


def _family(name: str, lexicon: tuple[str, ...]) -> str | None:
    """Another lexicon name that holds ``name`` or is held by it, if any."""
    key = name.lower()
    for other in lexicon:
        low = other.lower()
        if low != key and (key in low or low in key) and min(len(key), len(low)) >= 5:
            return other
    return None


def _trailing_punctuation(text: str) -> str:
    return text[len(text.rstrip(".,;:?!")) :]


# --------------------------------------------------------------------------- numbers


def spoken_number(text: str) -> float | None:
    """The value of a spoken or written number: "one twenty eight" → 128, "10" → 10."""
    text = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    split = re.fullmatch(r"([1-9])00,?\s+and\s+([1-9]\d?)", text)
    if split:
        return float(int(split.group(1)) * 100 + int(split.group(2)))
    words = [w for w in re.split(r"[\s-]+", text) if w and w != "and"]
    if "point" in words:
        # "two point five" → 2.5, "point five" → 0.5, "zero point zero five" → 0.05: the digits
        # after the point are said one by one.
        i = words.index("point")
        whole = spoken_number(" ".join(words[:i])) if i else 0.0
        frac = words[i + 1 :]
        if whole is None or not frac or any(_NUMBER_WORDS.get(w, 10) > 9 for w in frac):
            return None
        return float(f"{int(whole)}.{''.join(str(_NUMBER_WORDS[w]) for w in frac)}")
    if not words or any(w not in _NUMBER_WORDS and w != "hundred" for w in words):
        return None
    # "one twenty eight", "one fifty" (blood pressure style): hundreds then the rest.
    if len(words) >= 2 and words[0] in ("one", "two") and "hundred" not in words:
        rest = spoken_number(" ".join(words[1:]))
        if rest is not None and 10 <= rest <= 99:
            return _NUMBER_WORDS[words[0]] * 100 + rest
    total, current = 0, 0
    for w in words:
        if w == "hundred":
            total += max(current, 1) * 100
            current = 0
        elif current and _NUMBER_WORDS[w] < 10 and current % 10 == 0 and current >= 20:
            current += _NUMBER_WORDS[w]
        elif current:
            return None  # "two three" is two numbers, not one
        else:
            current = _NUMBER_WORDS[w]
    return float(total + current)


def _fmt(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def _blood_pressure(systolic: str, diastolic: str) -> tuple[int, int] | None:
    high, low = spoken_number(systolic), spoken_number(diastolic)
    if high is None or low is None:
        return None
    # Whisper writes "one twenty-eight" as "1.28" or "1-28" at times.
    if 1.0 <= high < 3.0 and "." in systolic:
        high = round(high * 100)
    if 60 <= high <= 260 and 30 <= low <= 160 and high > low and high == int(high):
        return int(high), int(low)
    return None


def _unit(words: str) -> tuple[str, int] | None:
    """The unit that ``words`` (one or two words after a number) start with, and its length."""
    first = re.split(r"[- ]", words, maxsplit=1)[0]
    for candidate in (words, first):
        if candidate.lower() in _UNITS:
            return _UNITS[candidate.lower()], len(candidate)
        letters = _LETTERS.sub("", candidate.lower())
        for spelled, unit in _LOOSE_UNITS.items():
            if _similarity(letters, spelled) >= _LOOSE_UNIT_SIMILARITY:
                return unit, len(candidate)
    return None


def normalise_numbers(text: str) -> list[tuple[int, int, str, str]]:
    """(start, end, clinical form, kind) for each blood pressure and dose spoken in ``text``."""
    found: list[tuple[int, int, str, str]] = []
    for m in (*_BP.finditer(text), *_BP_DOTTED.finditer(text)):
        bp = _blood_pressure(m.group("sys"), m.group("dia"))
        if bp is not None:
            found.append((m.start(), m.end(), f"{bp[0]}/{bp[1]} mmHg", "vital"))
    for m in _DOSE.finditer(text):
        if any(s <= m.start() < e for s, e, _, _ in found):
            continue
        value = spoken_number(m.group("num"))
        unit_end = _unit(m.group("unit"))
        if value is None or value <= 0 or unit_end is None or _TRAILING_ZERO.search(m.group("num")):
            continue
        unit, length = unit_end
        end = m.start("unit") + length
        found.append((m.start(), end, f"{_fmt(value)} {unit}", "dose"))
    # A match may end in trailing spaces of the number pattern; keep them outside the edit.
    cleaned = []
    for start, end, form, kind in found:
        span = text[start:end]
        end -= len(span) - len(span.rstrip())
        if text[start:end] != form:
            cleaned.append((start, end, form, kind))
    return cleaned


def _after_pressure_cue(text: str, start: int) -> bool:
    """Whether "blood pressure" (or "BP") ends within _CUE_REACH characters before ``start``."""
    return any(0 <= start - m.end() <= _CUE_REACH for m in _PRESSURE_CUE.finditer(text[:start]))


def decimal_pressures(text: str) -> list[tuple[int, int, str]]:
    """(start, end, clinical form) of a blood pressure written as a decimal ("128.82") right
    after "blood pressure"; a decimal anywhere else is left alone."""
    found = []
    for m in _BP_DECIMAL.finditer(text):
        bp = _blood_pressure(m.group("sys"), m.group("dia"))
        if bp is not None and _after_pressure_cue(text, m.start()):
            found.append((m.start(), m.end(), f"{bp[0]}/{bp[1]} mmHg"))
    return found


def _pressure_edits(
    segment: Segment,
    text: str,
    tokens: list[_Token],
    *,
    taken: list[tuple[int, int]],
    scorer: TextScorer,
) -> list[_Edit]:
    """A blood pressure whose "over" was heard as "or" ("160 or 100" right after "blood
    pressure"): put in only when the recording fits "160 over 100" better than the words heard
    by ACOUSTIC_MARGIN. "Or" is a word people say; the audio, not the pattern, settles it."""
    edits: list[_Edit] = []
    for m in _BP_OR.finditer(text):
        if any(a < m.end() and m.start() < b for a, b in taken):
            continue
        bp = _blood_pressure(m.group("sys"), m.group("dia"))
        if bp is None or bp[0] - bp[1] < _MIN_PULSE_PRESSURE:
            continue
        if not _after_pressure_cue(text, m.start()):
            continue
        line = f"{text[: m.start()]}{bp[0]} over {bp[1]}{text[m.end() :]}"
        heard_score, over_score = scorer(segment.start, segment.end, [text, line], [])
        gain = over_score - heard_score
        if gain < ACOUSTIC_MARGIN:
            continue
        reason = (
            f"a blood pressure with 'over' heard as 'or'; the recording fits "
            f"'{bp[0]} over {bp[1]}' better than the words heard: Whisper finds that line "
            f"{times_likelier(gain)} times likelier"
        )
        form = f"{bp[0]}/{bp[1]} mmHg"
        edits.append(
            _span_edit(
                text, tokens, m.start(), m.end(), form, "vital", CUED_PRESSURE_CONFIDENCE, reason
            )
        )
        taken.append((m.start(), m.end()))
    return edits


def sounds_like_doses(text: str) -> list[tuple[int, int, str, str]]:
    """(start, end, clinical form, words heard) where words sounding like tens precede a unit."""
    found = []
    for m in _SOUNDS_LIKE.finditer(text):
        unit_end = _unit(m.group("unit"))
        if unit_end is None:
            continue
        unit, length = unit_end
        value = _SOUNDS_LIKE_TENS[" ".join(m.group("num").lower().split())]
        found.append((m.start(), m.start("unit") + length, f"{value} {unit}", m.group("num")))
    return found


def _span_edit(
    text: str,
    tokens: list[_Token],
    start: int,
    end: int,
    form: str,
    kind: str,
    confidence: float,
    reason: str,
) -> _Edit:
    """``text[start:end]`` replaced by ``form``, timed by the words it overlaps."""
    inside = [t for t in tokens if t.char_end > start and t.char_start < end] or tokens
    return _Edit(
        char_start=start,
        char_end=end,
        correction=Correction(
            start=inside[0].start,
            end=inside[-1].end,
            heard=text[start:end],
            corrected=form,
            kind=kind,  # type: ignore[arg-type]
            confidence=confidence,
            reason=reason,
        ),
    )


def _number_edits(text: str, tokens: list[_Token], *, threshold: float) -> list[_Edit]:
    edit = functools.partial(_span_edit, text, tokens)
    edits = []
    if threshold <= SOUNDS_LIKE_CONFIDENCE:
        for start, end, form, words in sounds_like_doses(text):
            number = form.split()[0]
            why = f"{words!r} sounds like {number}, said right before a unit"
            edits.append(edit(start, end, form, "dose", SOUNDS_LIKE_CONFIDENCE, why))
    for start, end, form in decimal_pressures(text):
        if threshold <= CUED_PRESSURE_CONFIDENCE:
            why = "a blood pressure written as one decimal number, right after 'blood pressure'"
            edits.append(edit(start, end, form, "vital", CUED_PRESSURE_CONFIDENCE, why))
    for start, end, form, kind in normalise_numbers(text):
        if not any(e.char_start < end and start < e.char_end for e in edits):
            edits.append(edit(start, end, form, kind, 1.0, "spoken number in clinical form"))
    return edits


# --------------------------------------------------------------------------- public


def correct_segment(
    segment: Segment,
    *,
    lexicon: tuple[str, ...],
    preferred: tuple[str, ...] = (),
    threshold: float = DEFAULT_THRESHOLD,
    numbers: bool = True,
    scorer: TextScorer | None = None,
) -> Segment:
    """The segment with garbled drug names and spoken doses/vitals corrected, evidence kept.

    With a ``scorer`` (``FasterWhisperTranscriber.text_scorer`` on the segment's audio), spans
    that sound only a little like a drug are checked against the audio (``_acoustic_edits``).
    """
    text, tokens = _tokens(segment)
    if not tokens:
        return segment
    prefer = frozenset(p.lower() for p in preferred)
    edits = _drug_edits(tokens, lexicon=lexicon, preferred=prefer, threshold=threshold)
    if scorer is not None:
        checks = [
            functools.partial(
                _acoustic_edits, lexicon=lexicon, threshold=threshold, preferred=prefer
            )
        ]
        if numbers:
            checks.append(_pressure_edits)
        for check in checks:
            try:
                edits += check(
                    segment,
                    text,
                    tokens,
                    taken=[(e.char_start, e.char_end) for e in edits],
                    scorer=scorer,
                )
            except Exception as error:  # noqa: BLE001 - a check only adds evidence
                # A failed audio check (the model, its memory, a stretch it cannot encode) must
                # not cost the transcript: the line keeps its lexical corrections, as without
                # one. The class name only: a message could quote the line.
                log.warning(
                    "audio check failed (%s): lexical correction only", type(error).__name__
                )
    if numbers:
        taken = [(e.char_start, e.char_end) for e in edits]
        edits += [
            e
            for e in _number_edits(text, tokens, threshold=threshold)
            if not any(e.char_start < b and a < e.char_end for a, b in taken)
        ]
    if not edits:
        return segment
    edits.sort(key=lambda e: e.char_start)
    corrections = tuple(replace(e.correction, at=e.char_start) for e in edits)
    return replace(
        segment,
        text=apply_corrections(text, corrections),
        heard_text=text,
        corrections=corrections,
    )


def correct_transcript(
    transcript: Transcript,
    *,
    lexicon: tuple[str, ...],
    preferred: tuple[str, ...] = (),
    threshold: float = DEFAULT_THRESHOLD,
    numbers: bool = True,
    scorer: TextScorer | None = None,
) -> Transcript:
    """``correct_segment`` on every segment of ``transcript``."""
    segments = tuple(
        correct_segment(
            s,
            lexicon=lexicon,
            preferred=preferred,
            threshold=threshold,
            numbers=numbers,
            scorer=scorer,
        )
        for s in transcript.segments
    )
    return replace(transcript, segments=segments)
