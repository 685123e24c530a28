"""What the visit already knows, turned into decoding hints and a lexicon to correct towards.

Whisper can be nudged with a prompt: faster-whisper's ``hotwords`` are put before every window
(``initial_prompt`` only before the first one, and our windows are mostly one each). The hint
is the visit's intake (medicines, allergies, reason), the clinic formulary and the end of what
was already said, cut to a budget: a long prompt costs decoding time and is what Whisper echoes
when it hears nothing (faster-whisper #1356), which the VAD and the guards must still stop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

DEFAULT_FORMULARY = Path(__file__).resolve().parent / "data" / "formulary.txt"
# Drug names cost about one token per 2.5 characters: 540 characters stay under the 223 prompt
# tokens faster-whisper keeps (it cuts the rest, which would be the visit's last words).
DEFAULT_HINT_CHARS = 540
_PREVIOUS_CHARS = 120


class FormularyError(ValueError):
    """The formulary file cannot be read or holds no names."""


@dataclass(frozen=True, slots=True)
class SpeechContext:
    """The vocabulary of one visit: intake terms first, then the clinic's formulary."""

    terms: tuple[str, ...] = ()  # the patient's medicines and allergies from intake
    # The patient's own words for them (intake): hinted, never corrected towards.
    patient_words: tuple[str, ...] = ()
    reason: str = ""  # why the patient booked, in their words
    previous_text: str = ""  # the visit's earlier final transcript lines, oldest first
    formulary: tuple[str, ...] = ()  # the clinic's drug names, most prescribed first
    hint_chars: int = DEFAULT_HINT_CHARS
    extra: tuple[str, ...] = field(default=())  # other words worth hearing (allergens)

    @property
    def lexicon(self) -> tuple[str, ...]:
        """Every drug-like name to correct towards, without duplicates, intake first."""
        return _unique((*self.terms, *self.formulary, *self.extra))

    def hotwords(self) -> str | None:
        """The comma-separated hint for every decoding window, at most ``hint_chars`` long."""
        if self.hint_chars <= 0:
            return None
        # What this visit said last is the best hint, then its intake, then the formulary;
        # the words said last go last, where Whisper's prompt ends and the audio begins.
        tail = _last_words(self.previous_text, min(self.hint_chars // 3, _PREVIOUS_CHARS))
        reason = _last_words(self.reason, min(self.hint_chars // 6, 60))
        used = len(tail) + len(reason) + 4
        parts: list[str] = []
        for name in _unique((*self.terms, *self.patient_words, *self.formulary)):
            if used + len(name) + 2 > self.hint_chars:
                break
            parts.append(name)
            used += len(name) + 2
        text = ", ".join(p for p in (", ".join(parts), reason, tail) if p)
        return text or None


def _unique(names) -> tuple[str, ...]:
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        clean = " ".join(str(name).split()).strip(" ,.;")
        key = clean.lower()
        if clean and key not in seen:
            seen.add(key)
            out.append(clean)
    return tuple(out)


def _last_words(text: str, limit: int) -> str:
    """The end of ``text`` in whole words, at most ``limit`` characters."""
    if limit <= 0 or not text:
        return ""
    words = text.split()
    out: list[str] = []
    used = 0
    for word in reversed(words):
        if used + len(word) + 1 > limit:
            break
        out.append(word)
        used += len(word) + 1
    return " ".join(reversed(out))


def load_formulary(path: str | Path | None = None) -> tuple[str, ...]:
    """The names in a formulary file (one per line, ``#`` comments); the shipped one by default."""
    return _load(str(Path(path) if path else DEFAULT_FORMULARY))


@lru_cache(maxsize=8)
def _load(path: str) -> tuple[str, ...]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FormularyError(f"cannot read the formulary {path}: {exc}") from exc
    names = _unique(
        line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()
    )
    if not names:
        raise FormularyError(f"the formulary {path} lists no names")
    return names
