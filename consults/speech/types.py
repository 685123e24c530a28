"""Result dataclasses and the Transcriber interface of the transcription engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

TranscriptStatus = Literal["ok", "no_speech"]


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word with its times (seconds on the caller's timeline)."""

    start: float
    end: float
    text: str  # as Whisper spells it, with its leading space
    probability: float = 1.0  # the decoder's confidence in this word, 0..1


CorrectionKind = Literal["drug", "dose", "vital"]


@dataclass(frozen=True, slots=True)
class Correction:
    """One change made to what Whisper heard, with the evidence for it."""

    start: float  # seconds on the caller's timeline (the heard words' times)
    end: float
    heard: str  # the words as recognised
    corrected: str  # what the transcript now says
    kind: CorrectionKind
    confidence: float  # 0..1; at or above the calibrated bar, or confirmed by the audio check
    reason: str  # why, in words, e.g. "sounds like lisinopril (intake medicine)"
    at: int = 0  # where ``heard`` starts in the segment's heard text (characters)

    def as_dict(self) -> dict:
        """JSON-ready, as stored beside the transcript line."""
        return {
            "start": round(self.start, 2),
            "end": round(self.end, 2),
            "heard": self.heard,
            "corrected": self.corrected,
            "kind": self.kind,
            "confidence": round(self.confidence, 3),
            "reason": self.reason,
            "at": self.at,
        }


def apply_corrections(heard_text: str, corrections, *, skip: frozenset[int] = frozenset()) -> str:
    """``heard_text`` with each correction (dicts or Corrections) applied, but those at the
    indexes in ``skip`` (reverted by the physician)."""
    out, cursor = [], 0
    items = [c if isinstance(c, dict) else c.as_dict() for c in corrections]
    for i, c in sorted(enumerate(items), key=lambda pair: pair[1]["at"]):
        at, heard = int(c["at"]), str(c["heard"])
        if i in skip or at < cursor or heard_text[at : at + len(heard)] != heard:
            continue  # reverted, or evidence that does not fit the text: keep what was heard
        out.append(heard_text[cursor:at])
        out.append(str(c["corrected"]))
        cursor = at + len(heard)
    out.append(heard_text[cursor:])
    return "".join(out).strip()


@dataclass(frozen=True, slots=True)
class Segment:
    """One recognised stretch of speech; times are seconds on the caller's timeline."""

    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    words: tuple[Word, ...] = ()
    # Set by consults.speech.correct: the text as heard, and each change made to it.
    heard_text: str = ""
    corrections: tuple[Correction, ...] = ()


@dataclass(frozen=True, slots=True)
class Transcript:
    """The result of transcribing one clip or chunk."""

    segments: tuple[Segment, ...]
    language: str
    duration_s: float
    processing_s: float
    status: TranscriptStatus
    model: str = ""
    dropped: tuple[str, ...] = field(default=())

    @property
    def text(self) -> str:
        """The segments' text joined by single spaces."""
        return " ".join(s.text for s in self.segments).strip()

    @property
    def rtf(self) -> float:
        """Real-time factor: processing time over audio time (below 1 is faster than real time)."""
        return self.processing_s / self.duration_s if self.duration_s > 0 else 0.0

    def as_dict(self) -> dict:
        """A JSON-ready dict: text, segments (start, end, text), language, timings, status."""
        return {
            "text": self.text,
            "segments": [
                {"start": round(s.start, 2), "end": round(s.end, 2), "text": s.text}
                for s in self.segments
            ],
            "language": self.language,
            "duration_s": round(self.duration_s, 3),
            "processing_s": round(self.processing_s, 3),
            "status": self.status,
            "model": self.model,
        }


# (start_s, end_s, texts, names) -> the log-likelihood of each text for that stretch of audio,
# with ``names`` said to the decoder first; see FasterWhisperTranscriber.text_scorer.
TextScorer = Callable[[float, float, list[str], list[str]], list[float]]


@runtime_checkable
class Transcriber(Protocol):
    """A speech-to-text backend; instances are cached per process by `get_transcriber`."""

    def transcribe(self, *, audio: bytes, offset_s: float = 0.0) -> Transcript:
        """Decode encoded audio (wav, mp3, m4a, ogg, webm, flac) and transcribe it."""
        ...

    def transcribe_array(
        self, *, samples: np.ndarray, offset_s: float = 0.0, hotwords: str | None = None
    ) -> Transcript:
        """Transcribe float32 mono 16 kHz samples; `offset_s` shifts segment times; `hotwords`
        are words to listen for (``SpeechContext.hotwords()``), None for none."""
        ...
