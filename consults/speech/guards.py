"""Rules that keep Whisper's invented text (silence hallucinations, loops) out of transcripts."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from consults.speech.types import Segment


@dataclass(frozen=True, slots=True)
class GuardOptions:
    """Thresholds for dropping segments; defaults follow Whisper's own fallback rules."""

    # Whisper treats a window as silence when no_speech_prob is high AND the text is unsure.
    no_speech_prob: float = 0.6
    no_speech_logprob: float = -0.5
    # Below this mean token log-probability the text is mostly guesswork.
    min_avg_logprob: float = -1.0
    # An n-gram (1..max_ngram words) repeated this many times in a row is a decoding loop.
    max_ngram: int = 6
    loop_repeats: int = 4
    # A loop of longer phrases: Whisper's own test of a failed decode, the text's zlib
    # compression ratio ("the system is in a way that" 30 times over compresses 15-fold).
    max_compression_ratio: float = 2.4
    # Faster than anyone speaks: a sentence put in a fraction of a second of audio, which is
    # how Whisper invents text at the very end of a clip ("I'm going to get out of here." in
    # 0.38 s, 18 words a second; real speech on the bench, its fastest voices included,
    # stayed under 4). A single word ("instead.") may be short; four or more may not.
    max_words_per_second: float = 12.0
    rate_min_words: int = 4
    # Peak level under which a clip is treated as silence without running the model.
    silence_peak: float = 1e-3


_WORD = re.compile(r"[\w']+")


def is_silent(samples: np.ndarray, *, peak: float) -> bool:
    """True when the clip is empty or never rises above `peak` (digital silence)."""
    return samples.size == 0 or float(np.max(np.abs(samples))) < peak


def has_repetition_loop(text: str, *, max_ngram: int = 6, repeats: int = 4) -> bool:
    """True when some run of 1..max_ngram words repeats `repeats` times back to back."""
    words = [w.lower() for w in _WORD.findall(text)]
    for n in range(1, max_ngram + 1):
        span = n * repeats
        for i in range(len(words) - span + 1):
            gram = words[i : i + n]
            if all(words[i + k * n : i + (k + 1) * n] == gram for k in range(1, repeats)):
                return True
    return False


def drop_reason(segment: Segment, *, options: GuardOptions) -> str | None:
    """Why `segment` should be dropped, or None to keep it."""
    if not segment.text.strip() or not _WORD.search(segment.text):
        return "empty"
    if (
        segment.no_speech_prob > options.no_speech_prob
        and segment.avg_logprob < options.no_speech_logprob
    ):
        return "no_speech"
    if segment.avg_logprob < options.min_avg_logprob:
        return "low_logprob"
    # Whisper's own measure, the one faster-whisper's fallback uses on whole windows.
    from faster_whisper.transcribe import get_compression_ratio

    if (
        has_repetition_loop(segment.text, max_ngram=options.max_ngram, repeats=options.loop_repeats)
        or get_compression_ratio(segment.text) > options.max_compression_ratio
    ):
        return "repetition"
    # Timestamps that collapsed (no duration) tell nothing about how fast it was said.
    words = len(_WORD.findall(segment.text))
    duration = segment.end - segment.start
    if (
        words >= options.rate_min_words
        and duration > 0
        and words / duration > options.max_words_per_second
    ):
        return "too_fast"
    return None


def filter_segments(
    segments: list[Segment], *, options: GuardOptions
) -> tuple[list[Segment], list[str]]:
    """Keep trustworthy segments; return them and one "reason: text" note per dropped one."""
    kept: list[Segment] = []
    dropped: list[str] = []
    for segment in segments:
        reason = drop_reason(segment, options=options)
        # The same sentence three times in a row across segments is a loop too.
        if reason is None and _repeats_previous(kept, segment):
            reason = "repeated_segment"
        if reason is None:
            kept.append(segment)
        else:
            dropped.append(f"{reason}: {segment.text.strip()}")
    return kept, dropped


def _repeats_previous(kept: list[Segment], segment: Segment) -> bool:
    if len(kept) < 2:
        return False
    norm = _normalise(segment.text)
    return _normalise(kept[-1].text) == norm and _normalise(kept[-2].text) == norm


def _normalise(text: str) -> str:
    return " ".join(w.lower() for w in _WORD.findall(text))
