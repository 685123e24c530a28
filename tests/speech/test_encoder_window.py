"""The fitted encoder window: the encoder sees a window's speech, not always 30 s of it padded."""

from __future__ import annotations

import numpy as np
import pytest

from consults.speech import decode_audio, get_transcriber
from consults.speech.faster_whisper_backend import FasterWhisperTranscriber, fitted_frames
from tests.speech.audio_helpers import noises

N_MELS = 80


def window(content_frames: int, *, total: int = 3000, batch: bool = False) -> np.ndarray:
    """A Whisper window as faster-whisper pads it: log-mel frames, then exact zeros."""
    features = np.zeros((N_MELS, total), dtype=np.float32)
    # Real log-mel frames are never all zero; quiet ones normalise to about -1.5.
    features[:, :content_frames] = -1.5 + np.random.default_rng(3).random((N_MELS, content_frames))
    return features[None] if batch else features


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (676, 1500),  # a 6.8 s utterance: the 15 s floor
        (0, 1500),  # nothing but padding
        (1450, 1700),  # 14.5 s + 2 s of padding, rounded up to whole seconds
        (2450, 2700),
        (2950, 3000),  # never beyond the window
        (3000, 3000),
    ],
)
def test_the_window_is_cut_to_the_speech_plus_padding(content: int, expected: int) -> None:
    assert fitted_frames(window(content)) == expected
    assert fitted_frames(window(content, batch=True)) == expected


def test_a_zero_inside_speech_is_not_taken_for_padding() -> None:
    features = window(2000)
    features[:, 500:900] = 0.0  # a gap in the middle is not the end of the window
    assert fitted_frames(features) == 2200


def test_an_unknown_window_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="encoder_window"):
        FasterWhisperTranscriber(model="tiny.en", encoder_window="short")


@pytest.fixture(scope="module")
def fitted_tiny() -> FasterWhisperTranscriber:
    transcriber = get_transcriber(model="tiny.en", encoder_window="fit")
    transcriber.load()
    return transcriber


class _EncodeSpy:
    """Stands in for the CTranslate2 model and records the frames each encode is given."""

    def __init__(self, model) -> None:
        self._model = model
        self.frames: list[int] = []

    def encode(self, features, **kwargs):
        self.frames.append(features.shape[-1])
        return self._model.encode(features, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._model, name)


def test_a_short_utterance_is_encoded_in_a_short_window_and_heard_right(
    fitted_tiny: FasterWhisperTranscriber, penicillin_ogg: bytes
) -> None:
    whisper = fitted_tiny.load()
    spy = _EncodeSpy(whisper.model)
    whisper.model = spy
    try:
        transcript = fitted_tiny.transcribe_array(samples=decode_audio(penicillin_ogg))
    finally:
        whisper.model = spy._model

    assert spy.frames and max(spy.frames) == 1500, spy.frames  # 15 s, not 30 s
    text = transcript.text.lower()
    assert all(word in text for word in ("allergic", "penicillin", "pain")), text
    words = [w for s in transcript.segments for w in s.words]
    assert words and all(0 <= w.start <= w.end <= transcript.duration_s + 0.5 for w in words)


@pytest.mark.parametrize("kind", list(noises()))
def test_silence_and_noise_give_no_text_with_the_fitted_window(
    fitted_tiny: FasterWhisperTranscriber, kind: str
) -> None:
    transcript = fitted_tiny.transcribe_array(samples=noises()[kind])
    assert transcript.text == "", transcript.text
