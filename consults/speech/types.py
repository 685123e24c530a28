"""Result dataclasses and the Transcriber interface of the transcription engine."""

from __future__ import annotations

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


@dataclass(frozen=True, slots=True)
class Segment:
    """One recognised stretch of speech; times are seconds on the caller's timeline."""

    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    words: tuple[Word, ...] = ()


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


@runtime_checkable
class Transcriber(Protocol):
    """A speech-to-text backend; instances are cached per process by `get_transcriber`."""

    def transcribe(self, *, audio: bytes, offset_s: float = 0.0) -> Transcript:
        """Decode encoded audio (wav, mp3, m4a, ogg, webm, flac) and transcribe it."""
        ...

    def transcribe_array(self, *, samples: np.ndarray, offset_s: float = 0.0) -> Transcript:
        """Transcribe float32 mono 16 kHz samples; `offset_s` shifts segment times."""
        ...
