"""The audio check: a name that sounds only a little like what was heard, settled by the audio.

Orchestration with a stand-in scorer first (which lines are scored, with which names, and the
margin that decides); then the real scorer on real speech with the real model.
"""

from __future__ import annotations

import pytest

from consults.speech import decode_audio
from consults.speech.correct import (
    ACOUSTIC_MARGIN,
    ACOUSTIC_MIN_MATCH,
    DEFAULT_THRESHOLD,
    correct_segment,
    match_score,
    ranked_matches,
    times_likelier,
)
from consults.speech.vocabulary import load_formulary
from tests.speech.audio_helpers import recognised

FORMULARY = load_formulary()


class Scorer:
    """Gives each line a log-likelihood: ``gains`` over the line as heard, by the word in it."""

    def __init__(self, gains: dict[str, float]) -> None:
        self.gains = gains
        self.calls: list[tuple[float, float, list[str], list[str]]] = []

    def __call__(self, start_s, end_s, texts, names):
        self.calls.append((start_s, end_s, texts, names))
        heard, *lines = texts
        return [-20.0] + [
            -20.0 + max((g for w, g in self.gains.items() if w in line), default=-5.0)
            for line in lines
        ]


# "cloppetodil" (said: clopidogrel) sounds like clopidogrel only 0.60: below the bar.
CLOPPETODIL = recognised(("please", 0.3), ("take", 0.99), ("cloppetodil", 0.24), ("40", 0.9))


def test_a_name_the_audio_favours_by_the_margin_is_put_in_with_its_evidence() -> None:
    scorer = Scorer({"clopidogrel": ACOUSTIC_MARGIN + 0.5})

    fixed = correct_segment(CLOPPETODIL, lexicon=FORMULARY, scorer=scorer, numbers=False)

    assert fixed.text == "please take clopidogrel 40"
    (fix,) = fixed.corrections
    assert (fix.heard, fix.corrected, fix.kind) == ("cloppetodil", "clopidogrel", "drug")
    assert (fix.start, fix.end) == (2.0, 2.8)
    assert fix.confidence < DEFAULT_THRESHOLD  # the sound alone would not have done it
    assert "recording fits clopidogrel better than the words heard" in fix.reason
    assert "about 90 times likelier" in fix.reason  # e^4.5, in words
    # One check for the span, on the segment's stretch of audio, with its closest names.
    ((start, end, texts, names),) = scorer.calls
    assert (start, end) == (0.0, 4.0)
    assert texts[0] == "please take cloppetodil 40"
    assert "clopidogrel" in names and len(names) >= 3
    assert "please take clopidogrel 40" in texts


def test_a_name_the_audio_favours_by_less_than_the_margin_is_not_put_in() -> None:
    scorer = Scorer({"clopidogrel": ACOUSTIC_MARGIN - 0.5})

    fixed = correct_segment(CLOPPETODIL, lexicon=FORMULARY, scorer=scorer, numbers=False)

    assert fixed == CLOPPETODIL
    assert scorer.calls  # it was checked, and the audio did not settle it


def test_words_the_decoder_was_sure_of_are_not_checked() -> None:
    sure = recognised(("please", 0.9), ("take", 0.99), ("cloppetodil", 0.95), ("40", 0.9))
    scorer = Scorer({"clopidogrel": 50.0})

    assert correct_segment(sure, lexicon=FORMULARY, scorer=scorer, numbers=False) == sure
    assert scorer.calls == []


def test_a_word_like_no_drug_at_all_is_not_checked() -> None:
    heard = recognised(("we", 0.9), ("went", 0.3), ("home", 0.9))
    scorer = Scorer({})

    assert correct_segment(heard, lexicon=FORMULARY, scorer=scorer) == heard
    assert scorer.calls == []


@pytest.mark.parametrize("gains", [{"escitalopram": 9.0, "citalopram": 8.0}, {"citalopram": 12.0}])
def test_a_name_with_a_family_member_is_never_put_in_by_the_audio(gains) -> None:
    # On the bench "it telepram" (said: escitalopram) fitted citalopram best, by +7.9.
    heard = recognised(("stop", 0.9), ("the", 0.9), ("esitalopam", 0.2))
    scorer = Scorer(gains)

    fixed = correct_segment(heard, lexicon=FORMULARY, scorer=scorer, numbers=False)

    assert scorer.calls and fixed == heard


@pytest.mark.slow
def test_the_real_scorer_prefers_the_words_that_were_said(penicillin_ogg: bytes) -> None:
    # Whisper base, forced to read each line against the same audio.
    from consults.speech import get_transcriber

    base = get_transcriber(model="base", language="en", encoder_window="fit")
    samples = decode_audio(penicillin_ogg)
    score = base.text_scorer(samples=samples)
    said, garbled, other = score(
        0.0,
        samples.size / 16_000,
        [
            "I am allergic to penicillin and I have chest pain.",
            "I am allergic to pencil in and I have chest pain.",
            "I am allergic to amoxicillin and I have chest pain.",
        ],
        ["penicillin", "amoxicillin"],
    )
    assert said - garbled >= ACOUSTIC_MARGIN, (said, garbled)
    assert said - other >= ACOUSTIC_MARGIN, (said, other)


def test_a_failing_audio_check_leaves_the_lexical_corrections(caplog) -> None:
    heard = recognised(
        ("take", 0.99), ("cloppetodil", 0.24), ("and", 0.9), ("lisinoprill", 0.3), ("10", 0.9)
    )

    def broken(start_s, end_s, texts, names):
        raise RuntimeError("encoder out of memory; said: " + texts[0])

    fixed = correct_segment(heard, lexicon=FORMULARY, scorer=broken, numbers=False)

    assert fixed.text == "take cloppetodil and lisinopril 10"  # the lexicon's fix, no more
    assert [c.corrected for c in fixed.corrections] == ["lisinopril"]
    assert "audio check failed (RuntimeError)" in caplog.text
    assert "cloppetodil" not in caplog.text  # never the words of the line


@pytest.mark.parametrize(
    ("log_ratio", "words"),
    [(4.0, "about 55"), (10.5, "about 36,000"), (13.0, "about 440,000"), (17.3, "over a million")],
)
def test_the_audio_evidence_is_told_as_how_many_times_likelier(log_ratio, words) -> None:
    assert times_likelier(log_ratio) == words


class OverScorer:
    """Finds a line saying "over" ``gain`` likelier than the line as heard."""

    def __init__(self, gain: float) -> None:
        self.gain, self.calls = gain, []

    def __call__(self, start_s, end_s, texts, names):
        self.calls.append(texts)
        return [-20.0] + [-20.0 + (self.gain if " over " in t else -3.0) for t in texts[1:]]


PRESSURE_OR = recognised(
    ("blood", 0.9), ("pressure", 0.99), ("was", 0.9), ("160", 0.6), ("or", 0.4), ("100,", 0.9)
)


def test_over_heard_as_or_in_a_pressure_is_put_back_when_the_audio_says_so() -> None:
    scorer = OverScorer(ACOUSTIC_MARGIN + 1)

    fixed = correct_segment(PRESSURE_OR, lexicon=FORMULARY, scorer=scorer)

    assert fixed.text == "blood pressure was 160/100 mmHg,"
    (vital,) = fixed.corrections
    assert (vital.heard, vital.kind) == ("160 or 100", "vital")
    assert "'over' heard as 'or'" in vital.reason and "times likelier" in vital.reason
    assert scorer.calls == [["blood pressure was 160 or 100,", "blood pressure was 160 over 100,"]]


def test_or_stays_when_the_audio_does_not_say_over() -> None:
    scorer = OverScorer(ACOUSTIC_MARGIN - 1)
    assert correct_segment(PRESSURE_OR, lexicon=FORMULARY, scorer=scorer) == PRESSURE_OR


@pytest.mark.parametrize(
    "words",
    [
        ("we", "saw", "160", "or", "100", "people"),  # no pressure cue: never checked
        ("blood", "pressure", "130", "or", "120"),  # two guesses at one number
        ("blood", "pressure", "2", "or", "3", "times"),
    ],
)
def test_other_ors_are_not_checked(words) -> None:
    heard = recognised(*((w, 0.5) for w in words))
    scorer = OverScorer(50.0)
    assert correct_segment(heard, lexicon=FORMULARY, scorer=scorer) == heard
    assert not any(" over " in t for texts in scorer.calls for t in texts)


def test_two_names_the_audio_cannot_tell_apart_are_both_left_out() -> None:
    # "teacomprosol" (said: omeprazole) fitted metoprolol by +11.8, esomeprazole by +11.5.
    runner_up = ranked_matches("cloppetodil", FORMULARY, top=3)[1][0]
    scorer = Scorer({"clopidogrel": 11.8, runner_up: 11.5})

    fixed = correct_segment(CLOPPETODIL, lexicon=FORMULARY, scorer=scorer, numbers=False)

    assert fixed == CLOPPETODIL
    assert any(runner_up in line for line in scorer.calls[0][2])


def test_a_name_that_spells_too_far_from_the_words_heard_is_not_put_in() -> None:
    # "tetronine" (said: codeine) fitted sertraline by +8.5; it spells like it at 0.53.
    heard = recognised(("allergic", 0.9), ("to", 0.9), ("tetronine", 0.22), ("it", 0.95))
    ranked = [name for name, _ in ranked_matches("tetronine", FORMULARY, top=3)]
    far = next(n for n in ranked if match_score("tetronine", n) < ACOUSTIC_MIN_MATCH)
    scorer = Scorer({far: 20.0})

    fixed = correct_segment(heard, lexicon=FORMULARY, scorer=scorer, numbers=False)

    assert scorer.calls and fixed == heard


# "behusts" (said: "allergic to peanuts"): peanuts is on the intake and spells like it at 0.41,
# under the match a span needs for other names.
BEHUSTS = recognised(("allergic", 0.94), ("to", 1.0), ("behusts.", 0.24))
LEXICON_WITH_INTAKE = ("peanuts", *FORMULARY)


def test_an_intake_name_is_tried_from_a_looser_spelling_match() -> None:
    scorer = Scorer({"peanuts": 9.4})

    fixed = correct_segment(
        BEHUSTS, lexicon=LEXICON_WITH_INTAKE, preferred=("peanuts",), scorer=scorer
    )

    assert fixed.text == "allergic to peanuts."
    assert "peanuts" in scorer.calls[0][3]


def test_a_loose_match_to_a_name_not_on_the_intake_is_not_tried() -> None:
    scorer = Scorer({"peanuts": 9.4})

    fixed = correct_segment(BEHUSTS, lexicon=LEXICON_WITH_INTAKE, scorer=scorer)

    assert fixed == BEHUSTS and scorer.calls == []


def test_an_intake_name_the_audio_fits_is_a_rival_the_winner_must_beat() -> None:
    # "or master tin" (said: atorvastatin, on the intake): olmesartan must beat it, not only
    # the garble.
    heard = recognised(("taking", 0.9), ("or", 0.3), ("master", 0.2), ("tin", 0.2))
    intake = ("atorvastatin",)
    scorer = Scorer({"olmesartan": 6.0, "atorvastatin": 10.8})

    fixed = correct_segment(
        heard, lexicon=FORMULARY, preferred=intake, scorer=scorer, numbers=False
    )

    assert fixed.text == "taking atorvastatin", fixed.corrections
    assert any("olmesartan" in line for call in scorer.calls for line in call[2])
