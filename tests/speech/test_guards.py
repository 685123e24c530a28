"""Hallucination guards, without a model."""

from __future__ import annotations

import pytest

from consults.speech.guards import GuardOptions, filter_segments, has_repetition_loop
from consults.speech.types import Segment
from tests.speech.audio_helpers import FIXTURES


def seg(text: str, *, logprob: float = -0.2, no_speech: float = 0.05) -> Segment:
    return Segment(start=0.0, end=1.0, text=text, avg_logprob=logprob, no_speech_prob=no_speech)


def test_repetition_loop_is_detected_for_words_and_phrases() -> None:
    assert has_repetition_loop("the the the the the")
    assert has_repetition_loop("I feel sick. I feel sick. I feel sick. I feel sick.")
    assert not has_repetition_loop("I have had a headache for three days and it is worse at night")


def test_untrusted_segments_are_dropped_and_reported() -> None:
    options = GuardOptions()
    segments = [
        seg("I have chest pain."),
        seg("Thank you for watching.", logprob=-0.9, no_speech=0.8),
        seg("Mm mm mm mm mm mm", logprob=-0.3),
        seg("garbled", logprob=-1.6),
        seg("..."),
    ]

    kept, dropped = filter_segments(segments, options=options)

    assert [s.text for s in kept] == ["I have chest pain."]
    assert [d.split(":")[0] for d in dropped] == ["no_speech", "repetition", "low_logprob", "empty"]


def test_same_sentence_three_times_in_a_row_keeps_two() -> None:
    kept, dropped = filter_segments([seg("Okay.")] * 3, options=GuardOptions())
    assert len(kept) == 2
    assert dropped == ["repeated_segment: Okay."]


def timed(text: str, start: float, end: float) -> Segment:
    return Segment(start=start, end=end, text=text, avg_logprob=-0.33, no_speech_prob=0.62)


def test_a_sentence_in_a_fraction_of_a_second_is_invented() -> None:
    # Seen at the end of a clip with the fitted encoder window: faster than anyone speaks.
    speech = timed("I am allergic to codeine, it gives me a rash.", 0.1, 4.5)
    invented = timed("I'm going to get a car.", 4.5, 4.74)
    last_word = timed("instead.", 5.24, 5.34)  # one real word may be short

    kept, dropped = filter_segments([speech, invented, last_word], options=GuardOptions())

    assert kept == [speech, last_word]
    assert dropped == ["too_fast: I'm going to get a car."]


def test_collapsed_timestamps_alone_drop_nothing() -> None:
    said = timed("I have had this rash for two weeks.", 3.0, 3.0)
    assert filter_segments([said], options=GuardOptions()) == ([said], [])


def test_a_loop_of_a_long_phrase_is_dropped() -> None:
    loop = "And so we can see that " + "the system is in a way that " * 30
    assert not has_repetition_loop(loop)  # seven words: longer than the n-gram check looks
    kept, dropped = filter_segments([seg(loop)], options=GuardOptions())
    assert kept == []
    assert dropped[0].startswith("repetition:")


def test_ordinary_speech_compresses_like_speech() -> None:
    text = (
        "I have had a headache for three days, worse at night and better with rest; no fever, "
        "no chills, and the ibuprofen I took did not help much."
    )
    said = timed(text, 0.0, 9.0)
    assert filter_segments([said], options=GuardOptions())[0] == [said]


@pytest.mark.slow
def test_the_real_model_adds_nothing_after_the_last_word() -> None:
    # Whisper base, as the worker runs it, on a clip it ends with an invented loop (README).
    from consults.speech import get_transcriber
    from consults.speech.audio import decode_audio
    from consults.speech.vocabulary import SpeechContext, load_formulary

    samples = decode_audio((FIXTURES / "mouthwash.flac").read_bytes())
    base = get_transcriber(model="base", language="en", encoder_window="fit")
    hint = SpeechContext(formulary=load_formulary(), reason="cough").hotwords()

    transcript = base.transcribe_array(samples=samples, hotwords=hint)

    assert "mouthwash" in transcript.text
    assert len(transcript.text.split()) <= 12, transcript.text
    assert all(s.start < 3.0 for s in transcript.segments), transcript.segments
