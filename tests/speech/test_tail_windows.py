"""Tail windows: the second or so left after a window's last word is decoded without the hint.

With word timestamps on, faster-whisper seeks to the last word's end and decodes what is left
as another window. Given the formulary hint, such a tail of padding came back as drug names
nobody said ("biopropion, venlafaxine, venlafaxine, amitriptyline"), and the temperature
fallback spent seconds of CPU sampling it. The orchestration is tested here with the parent
class stubbed; the real model runs in the tests below it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from consults.speech import decode_audio
from consults.speech.faster_whisper_backend import TAIL_FRAMES, TAIL_MAX_TOKENS, _model_class
from consults.speech.vocabulary import SpeechContext, load_formulary

SOT_PREV, SOT, EN, TRANSCRIBE = 50361, 50258, 50259, 50359
HINT = [SOT_PREV, 11, 12, 13]
START = [SOT, EN, TRANSCRIBE]


@dataclasses.dataclass(frozen=True)
class Options:  # the fields of faster-whisper's TranscriptionOptions that a tail changes
    beam_size: int = 5
    best_of: int = 5
    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4)
    max_new_tokens: int | None = None


class Tokenizer:
    sot = SOT


def features(content_frames: int) -> np.ndarray:
    window = np.zeros((80, 3000), dtype=np.float32)
    window[:, :content_frames] = -1.5
    return window


encoded: list[int] = []  # the frames each window's encoder was given


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch):
    """Run windows through the model class; returns the (prompt, options) each decode got."""
    from faster_whisper import WhisperModel

    calls: list[tuple[list[int], Options]] = []
    encoded.clear()
    monkeypatch.setattr(WhisperModel, "encode", lambda self, f: encoded.append(f.shape[-1]))
    monkeypatch.setattr(
        WhisperModel,
        "generate_with_fallback",
        lambda self, enc, prompt, tok, options: calls.append((prompt, options)),
    )
    monkeypatch.setattr(WhisperModel, "transcribe", lambda self, *a, **k: None)

    def run(contents: list[int], *, plain_tails: bool = True) -> list[tuple[list[int], Options]]:
        cls = _model_class(fit=True, plain_tails=plain_tails)
        model = cls.__new__(cls)  # no weights: the parent's methods are stubbed
        model.transcribe(np.zeros(16_000, np.float32))  # a new call: the window count resets
        for content in contents:
            model.encode(features(content))
            model.generate_with_fallback(None, HINT + START, Tokenizer(), Options())
        return calls

    return run


def test_a_short_tail_is_decoded_without_the_hint_greedily_and_once(decoded) -> None:
    (first, first_options), (tail, tail_options) = decoded([600, TAIL_FRAMES - 1])
    assert first == HINT + START and first_options == Options()
    assert tail == START
    # No hint before it, so no 15 s floor: the tail plus 2 s of padding, at least 5 s.
    assert encoded == [1500, 500]
    assert (tail_options.beam_size, tail_options.best_of, tail_options.temperatures) == (
        1,
        1,
        [0.0],
    )
    assert tail_options.max_new_tokens == TAIL_MAX_TOKENS  # a few words, never a loop


def test_a_short_first_window_keeps_the_hint(decoded) -> None:
    # "Metformin." said alone is a short utterance, not a tail: the hint is what names it.
    ((prompt, options),) = decoded([80])
    assert prompt == HINT + START and options == Options()


def test_a_long_later_window_keeps_the_hint(decoded) -> None:
    # Audio longer than 30 s has several real windows; only a short leftover is a tail.
    calls = decoded([3000, TAIL_FRAMES + 500])
    assert [prompt for prompt, _ in calls] == [HINT + START, HINT + START]


def test_hinted_tails_can_be_kept_for_comparison(decoded) -> None:
    calls = decoded([600, 40], plain_tails=False)
    assert [prompt for prompt, _ in calls] == [HINT + START, HINT + START]


def test_a_language_detection_pass_is_not_taken_for_a_window(decoded, monkeypatch) -> None:
    # With no language set, faster-whisper encodes the audio to detect it before the first
    # window: a short first window after that is still the first, and keeps the hint.
    from faster_whisper import WhisperModel

    cls = _model_class(fit=True, plain_tails=True)
    model = cls.__new__(cls)
    model.transcribe(np.zeros(16_000, np.float32))
    model.encode(features(80))  # detect_language's pass
    model.encode(features(80))  # the first window
    calls: list[list[int]] = []
    monkeypatch.setattr(
        WhisperModel,
        "generate_with_fallback",
        lambda self, enc, prompt, tok, options: calls.append(prompt),
    )
    model.generate_with_fallback(None, HINT + START, Tokenizer(), Options())
    assert calls == [HINT + START]


def test_each_transcription_counts_its_windows_afresh(decoded) -> None:
    decoded([600, 40])
    calls = decoded([60])  # a new transcription whose only window is short: not a tail
    assert calls[-1][0] == HINT + START


def test_the_real_model_names_no_drug_it_did_not_hear(tiny, penicillin_ogg: bytes) -> None:
    formulary = load_formulary()
    hint = SpeechContext(formulary=formulary).hotwords()
    transcript = tiny.transcribe_array(samples=decode_audio(penicillin_ogg), hotwords=hint)
    text = transcript.text.lower()
    assert "penicillin" in text, text
    assert not [n for n in formulary if n.lower() in text and n.lower() != "penicillin"], text
