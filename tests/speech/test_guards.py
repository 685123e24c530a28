"""Hallucination guards, without a model."""

from __future__ import annotations

from consults.speech.guards import GuardOptions, filter_segments, has_repetition_loop
from consults.speech.types import Segment


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
