"""Spoken numbers to digits, so "one twenty-eight over eighty-two" reads as "128 over 82"."""

from __future__ import annotations

import re

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
_WORD = (
    r"(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|"
    r"fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|"
    r"seventy|eighty|ninety|hundred|thousand|and|point|a|half)"
)
_DIGITS = frozenset(w for w, value in _UNITS.items() if value < 10)
_DIGIT_WORD = "(?:" + "|".join(sorted(_DIGITS)) + ")"
# The units a spoken decimal point or a leading "point" comes before.
_POINT_UNIT = r"(?:milligrams?|mg|micrograms?|mcg|milliliters?|ml|units?|percent|%)"
# "point five milligrams" is 0.5 mg; "at that point two days later" is not 0.2 of anything.
_UNIT_AHEAD = re.compile(rf"[\s-]*(?:{_POINT_UNIT}|cc)\b", re.I)
_RUN = re.compile(rf"\b{_WORD}(?:[\s-]+{_WORD})*\b", re.IGNORECASE)


def _tokens_value(tokens: list[str]) -> str | None:
    """Value of a run of number words, or None when the run is not a number."""
    words = [t for t in tokens if t != "and"]
    if not words or all(w in {"a", "point"} for w in words):
        return None
    if len(words) > 2 and words[-2:] == ["a", "half"]:
        whole = _tokens_value(words[:-2])  # "two and a half milligrams": 2.5
        return f"{whole}.5" if whole is not None and whole.isdigit() else None
    if "half" in words:
        return None
    if "point" in words:
        i = words.index("point")
        whole = _tokens_value(words[:i]) if words[:i] else "0"
        frac = "".join(str(_UNITS.get(w, "")) for w in words[i + 1 :])
        return f"{whole}.{frac}" if whole is not None and frac else None
    # Spoken pairs like "one twenty-eight" (BP) or "one fifty" mean 128 and 150.
    if len(words) >= 2 and words[0] in _UNITS and 1 <= _UNITS[words[0]] <= 2:
        rest = _tokens_value(words[1:])
        if rest is not None and rest.isdigit() and 10 <= int(rest) <= 99:
            return str(_UNITS[words[0]] * 100 + int(rest))
    return " ".join(str(n) for n in _numbers(words))


def _numbers(words: list[str]) -> list[int]:
    """Values of a run of number words, split where English grammar starts a new number.

    Speech repeats itself ("five hundred five hundred milligrams", "ten ten"): a word that
    cannot extend the number so far starts the next one, so the run reads "500 500", not 50500.
    A year said in two halves ("nineteen ninety-five", "twenty eighteen") is one number.
    """
    out: list[int] = []
    total, current, last = 0, 0, ""

    def small(value: int) -> bool:
        """Can a word worth ``value`` (< 100) extend the number so far?"""
        if total == 0 and current == 0:
            return True
        if last in {"hundred", "thousand"}:
            return True
        return last in _TENS and value < 10

    for w in words:
        value = _UNITS.get(w, _TENS.get(w))
        if value is not None and not small(value):
            if last in {"nineteen", "twenty"} and total == 0 and value >= 10:
                current = current * 100 + value  # a year: "twenty eighteen"
                last = w
                continue
            out.append(total + current)
            total, current = 0, 0
        if w == "a":
            current = max(current, 1)
        elif value is not None:
            current += value
        elif w == "hundred":
            if current >= 100:
                # "five hundred five hundred": the second "five" began a new number.
                tail = current % 100
                out.append(total + current - tail)
                total, current = 0, tail
            current = max(current, 1) * 100
        elif w == "thousand":
            total += max(current, 1) * 1000
            current = 0
        last = w
    out.append(total + current)
    return out


def words_to_digits(text: str) -> str:
    """Replace runs of English number words with digits; other text is kept as is."""

    def repl(match: re.Match[str]) -> str:
        raw = match.group(0)
        tokens = [t.lower() for t in re.split(r"[\s-]+", raw) if t]
        # A point that starts a dose is the number's ("point five milligrams": 0.5 mg).
        decimal = _UNIT_AHEAD.match(match.string, match.end()) is not None
        # A lone "a" or "and" is an article or conjunction, not a number.
        kept = 0
        while kept < len(tokens) and tokens[kept] in {"a", "and", "point"}:
            digit_next = kept + 1 < len(tokens) and tokens[kept + 1] in _DIGITS
            if tokens[kept] == "point" and decimal and digit_next:
                break
            kept += 1
        tokens = tokens[kept:]
        while tokens and tokens[-1] in {"a", "and", "point"}:
            tokens = tokens[:-1]
        if not tokens:
            return raw
        value = _tokens_value(tokens)
        if value is None:
            return raw
        lead = raw[: len(raw) - len(raw.lstrip())]
        prefix = re.match(rf"^((?:a|and|point)[\s-]+){{{kept}}}", raw, re.IGNORECASE)
        suffix = re.search(r"([\s-]+(?:a|and|point))+$", raw, re.IGNORECASE)
        return (
            lead + (prefix.group(0) if prefix else "") + value + (suffix.group(0) if suffix else "")
        )

    text = _DECADES.sub(_decade, text)
    return _SPOKEN_DECIMAL.sub(r"\1.\2", _RUN.sub(repl, mark_spoken_points(text)))


# A range said by its decade: "sugars running in the one twenties" (120s), "in the nineties".
_DECADE_TENS = {"twenties": 2, "thirties": 3, "forties": 4, "fifties": 5, "sixties": 6,
                "seventies": 7, "eighties": 8, "nineties": 9}  # fmt: skip
_DECADES = re.compile(
    r"\b(?:(?P<hundreds>one|two) )?(?P<tens>" + "|".join(_DECADE_TENS) + r")\b", re.IGNORECASE
)


def _decade(m: re.Match[str]) -> str:
    hundreds = {"one": "1", "two": "2"}.get((m.group("hundreds") or "").lower(), "")
    return f"{hundreds}{_DECADE_TENS[m.group('tens').lower()]}0s"


# Transcripts write a spoken "point" as a full stop: "aldactone twelve . five milligrams", "you're
# on two . five of norvasc". Joined only before a dose unit or "of", so that a sentence ending in
# a number is left alone.
# "of", but not "one of them / of my friends": a count, not a dose.
_AFTER_POINT = rf"(?=\s*(?:{_POINT_UNIT}|of\b(?!\s+(?:them|those|these|us|it|my|which|what)\b)))"
_SPOKEN_DECIMAL = re.compile(rf"\b(\d+) \. (\d+){_AFTER_POINT}", re.IGNORECASE)
_POINT_LEFT = re.compile(
    r"\b(?:\d+|" + "|".join([*_UNITS, *_TENS, "hundred"]) + r")$", re.IGNORECASE
)
# After the point digits are said one by one: "zero . zero five percent" is 0.05.
_POINT_RIGHT = re.compile(
    rf"^(?:\d+|{_DIGIT_WORD}(?:\s+{_DIGIT_WORD})*)\b{_AFTER_POINT}", re.IGNORECASE
)


# The words a temperature reading follows (facts read the reading after them too).
TEMPERATURE_SAID = r"(?:temperature|temp|fever)"
# A temperature's tenth: "your temperature was ninety seven . seven", "temp of 98 . 6".
_TEMPERATURE_LEFT = re.compile(
    rf"\b{TEMPERATURE_SAID}(?:\s+(?:it|which|was|is|of|at|about|around|up|to|got|went|"
    rf"has|been))*\s+(?:\d+|{_WORD})(?:[\s-]+{_WORD})*$",
    re.IGNORECASE,
)
# ... followed by what follows a reading, not by a noun the digit counts ("a hundred . two days
# later" is not 100.2).
_TENTH_RIGHT = re.compile(
    rf"^(?:\d|{_DIGIT_WORD})(?=\s*(?:$|[.,?!;]|(?:and|degrees?|fahrenheit|celsius|so|which|"
    r"that|but|or|with|your|the|his|her|my|it|is|was|at|on|when|this|today|yesterday|last|"
    r"okay|alright|i|he|she)\b))",
    re.IGNORECASE,
)


def is_spoken_point(text: str, start: int, end: int) -> bool:
    """Is ``text[start:end]``, a full stop with spaces, a spoken decimal point ("two . five
    milligrams", "two . five of norvasc", "temperature was ninety seven . seven") rather than
    the end of a sentence?"""
    if text[start:end].strip() != "." or _POINT_LEFT.search(text, 0, start) is None:
        return False
    after = text[end:]
    return _POINT_RIGHT.match(after) is not None or (
        _TEMPERATURE_LEFT.search(text, 0, start) is not None
        and _TENTH_RIGHT.match(after) is not None
    )


def mark_spoken_points(text: str) -> str:
    """Write each spoken decimal point between number words as the word: "two . five of norvasc"
    -> "two point five of norvasc", "zero . zero five percent" -> "zero point zero five percent",
    so that the digits after it read one by one and tidying the punctuation keeps the number."""

    def repl(m: re.Match[str]) -> str:
        spoken = is_spoken_point(m.string, m.start(), m.end()) and m.string[m.start() - 1].isalpha()
        return " point " if spoken else m.group(0)

    return re.sub(r" \. ", repl, text)


def numbers_in(text: str) -> set[str]:
    """Numbers that appear in text, spoken or written, as canonical digit strings."""
    found = re.findall(r"\d+(?:\.\d+)?", words_to_digits(text).replace(",", ""))
    return {n.rstrip("0").rstrip(".") if "." in n else n for n in found}
