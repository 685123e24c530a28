"""Transcription engine for consult audio: plain Python, no Django; backends load lazily."""

from consults.speech.audio import (
    SAMPLE_RATE,
    CorruptAudio,
    UnsupportedAudio,
    decode_audio,
    sniff_audio,
)
from consults.speech.factory import DEFAULT_BACKEND, clear_transcribers, get_transcriber
from consults.speech.types import Segment, Transcriber, Transcript, TranscriptStatus
from consults.speech.weights import MODELS, ModelUnavailable

__all__ = [
    "DEFAULT_BACKEND",
    "MODELS",
    "SAMPLE_RATE",
    "CorruptAudio",
    "ModelUnavailable",
    "Segment",
    "Transcriber",
    "Transcript",
    "TranscriptStatus",
    "UnsupportedAudio",
    "clear_transcribers",
    "decode_audio",
    "get_transcriber",
    "sniff_audio",
]
