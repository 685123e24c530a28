"""Shared fixtures for the speech engine tests: the real tiny.en model and synthesized audio."""

from __future__ import annotations

import pytest

from consults.speech import get_transcriber
from consults.speech.faster_whisper_backend import FasterWhisperTranscriber
from tests.speech.audio_helpers import FIXTURES


@pytest.fixture(scope="session")
def tiny() -> FasterWhisperTranscriber:
    """The smallest real model, loaded once for the whole session."""
    transcriber = get_transcriber(model="tiny.en")
    transcriber.load()
    return transcriber


@pytest.fixture(scope="session")
def penicillin_ogg() -> bytes:
    """espeak-ng saying "I am allergic to penicillin and I have chest pain." as ogg/opus."""
    return (FIXTURES / "penicillin.ogg").read_bytes()
