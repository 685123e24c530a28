"""Lexicon post-correction: the matcher, the bar, the evidence, and the number normaliser."""

from __future__ import annotations

import pytest

from consults.speech.correct import (
    DEFAULT_THRESHOLD,
    SOUNDS_LIKE_CONFIDENCE,
    best_match,
    correct_segment,
    match_score,
    normalise_numbers,
    spoken_number,
)
from consults.speech.types import apply_corrections
from consults.speech.vocabulary import load_formulary
from tests.speech.audio_helpers import recognised

FORMULARY = load_formulary()


@pytest.mark.parametrize(
    ("heard", "name"),
    [
        ("met foreman", "metformin"),
        ("a torva statin", "atorvastatin"),
        ("amlo dipine", "amlodipine"),
        ("sir traline", "sertraline"),
        ("gaba pentin", "gabapentin"),
    ],
)
def test_matcher_finds_the_drug_a_garble_sounds_like(heard: str, name: str) -> None:
    match = best_match(heard, FORMULARY)
    assert match is not None
    assert match[0] == name
    assert match[1] >= DEFAULT_THRESHOLD


@pytest.mark.parametrize("heard", ["the pain", "morning", "tablets", "blood pressure", "Lisa"])
def test_matcher_scores_ordinary_words_below_the_bar(heard: str) -> None:
    match = best_match(heard, FORMULARY)
    assert match is not None
    assert match[1] < DEFAULT_THRESHOLD, match


def test_match_score_is_symmetric_in_case_and_spacing() -> None:
    assert match_score("Met Foreman", "metformin") == match_score("metforeman", "METFORMIN")
    assert match_score("ab", "metformin") == 0.0


def test_unsure_garble_before_a_dose_is_corrected_with_its_evidence() -> None:
    heard = recognised(
        ("Start", 0.95), ("met", 0.41), ("foreman", 0.35), ("500", 0.9), ("mg.", 0.9)
    )

    fixed = correct_segment(heard, lexicon=FORMULARY)

    assert fixed.text == "Start metformin 500 mg."
    assert fixed.heard_text == "Start met foreman 500 mg."
    (drug,) = fixed.corrections
    assert (drug.heard, drug.corrected, drug.kind) == ("met foreman", "metformin", "drug")
    assert (drug.start, drug.end) == (1.0, 2.8)
    assert drug.confidence >= DEFAULT_THRESHOLD
    assert "sounds like metformin" in drug.reason


def test_a_correction_below_the_bar_is_not_applied() -> None:
    heard = recognised(("Lisa", 0.3))  # an unsure word, alone
    # With no bar at all the matcher would turn "Lisa" into some drug, with this confidence:
    (guess,) = correct_segment(heard, lexicon=FORMULARY, threshold=0.0).corrections
    assert guess.kind == "drug"
    assert guess.confidence < DEFAULT_THRESHOLD

    assert correct_segment(heard, lexicon=FORMULARY) == heard
    above = correct_segment(heard, lexicon=FORMULARY, threshold=guess.confidence + 0.001)
    assert "Lisa" in above.text
    assert guess not in above.corrections
    # The bar decides: at the guess's own confidence it is applied.
    at_bar = correct_segment(heard, lexicon=FORMULARY, threshold=guess.confidence)
    assert guess in at_bar.corrections
    assert "Lisa" not in at_bar.text


def test_confident_words_with_no_cue_are_left_alone() -> None:
    heard = recognised(("Metal", 0.99), ("foreman", 0.99), ("works", 0.99), ("here", 0.99))
    assert correct_segment(heard, lexicon=FORMULARY) == heard


def test_a_near_exact_drug_garble_is_corrected_even_without_a_cue() -> None:
    heard = recognised(
        ("she", 0.99), ("had", 0.99), ("noxycycline", 0.95), ("for", 0.99), ("it", 0.9)
    )
    fixed = correct_segment(heard, lexicon=FORMULARY)
    assert fixed.text == "she had doxycycline for it"


def test_a_name_already_in_the_lexicon_is_not_touched() -> None:
    heard = recognised(("taking", 0.9), ("lisinopril", 0.4), ("daily", 0.9))
    assert correct_segment(heard, lexicon=FORMULARY, numbers=False) == heard


def test_intake_medicines_win_a_close_call() -> None:
    heard = recognised(("on", 0.9), ("predni", 0.3), ("zone", 0.3))
    fixed = correct_segment(heard, lexicon=FORMULARY, preferred=("prednisone",))
    assert fixed.corrections[0].corrected == "prednisone"
    assert "intake" in fixed.corrections[0].reason


@pytest.mark.parametrize(
    ("spoken", "value"),
    [
        ("one twenty eight", 128),
        ("one hundred and forty", 140),
        ("eighty-two", 82),
        ("ten", 10),
        ("two hundred and fifty", 250),
        ("400", 400),
        ("2.5", 2.5),
        ("200, and 50", 250),
        ("two three", None),
        ("many", None),
        # After the point digits are said one by one; a leading point is under one.
        ("two point five", 2.5),
        ("point five", 0.5),
        ("zero point zero five", 0.05),
        ("point", None),
        ("one point twenty", None),
    ],
)
def test_spoken_numbers(spoken: str, value: float | None) -> None:
    assert spoken_number(spoken) == value


@pytest.mark.parametrize(
    ("text", "form", "kind"),
    [
        ("it was one twenty eight over eighty two today", "128/82 mmHg", "vital"),
        ("it was 128 over 82 today", "128/82 mmHg", "vital"),
        ("it was 1.28 over 82 today", "128/82 mmHg", "vital"),
        ("it was 1.18.76, we should", "118/76 mmHg", "vital"),  # Whisper's dotted reading
        ("increase it to 500 mlg", "500 mg", "dose"),
        ("it was one forty over ninety millimeters of mercury", "140/90 mmHg", "vital"),
        ("take ten milligrams daily", "10 mg", "dose"),
        ("take 400mg daily", "400 mg", "dose"),
        ("fifty micrograms of it", "50 mcg", "dose"),
        ("two hundred and fifty milligrams", "250 mg", "dose"),
        # "point five milligrams" is 0.5 mg, never "point 5 mg" read as five.
        ("take point five milligrams of ativan", "0.5 mg", "dose"),
        ("twelve point five milligrams daily", "12.5 mg", "dose"),
        # Whisper writes the hundreds and the tens of "two hundred and fifty" apart.
        ("prescribe losartan, 200, and 50 mg twice a day", "250 mg", "dose"),
    ],
)
def test_doses_and_vitals_in_clinical_form(text: str, form: str, kind: str) -> None:
    ((start, end, found, found_kind),) = normalise_numbers(text)
    assert (found, found_kind) == (form, kind)
    assert text[start:end].strip() == text[start:end]


@pytest.mark.parametrize(
    "text",
    [
        "one of them said two over there",
        "10 mg",
        "he is 40 over there",
        "nine over ten",
        "200 and 50 people came",
        "version 1.18.76.2 of the app",
        # "one hundred milligrams" heard as "1.100": 1.1 mg would be a hundredth of the dose.
        "take gabapentin 1.100 milligrams at night",
        "take 4.0 mg of it",
    ],
)
def test_ordinary_numbers_are_left_alone(text: str) -> None:
    assert normalise_numbers(text) == []


def test_normalised_dose_keeps_the_spoken_form_and_the_word_times() -> None:
    heard = recognised(("take", 0.9), ("ten", 0.9), ("milligrams", 0.9), ("daily", 0.9))

    fixed = correct_segment(heard, lexicon=FORMULARY)

    assert fixed.text == "take 10 mg daily"
    (dose,) = fixed.corrections
    assert (dose.heard, dose.corrected, dose.kind) == ("ten milligrams", "10 mg", "dose")
    assert (dose.start, dose.end) == (1.0, 2.8)


def test_reverting_one_correction_restores_its_heard_words_and_keeps_the_others() -> None:
    heard = recognised(
        ("Start", 0.95), ("met", 0.41), ("foreman", 0.35), ("ten", 0.9), ("milligrams.", 0.9)
    )
    fixed = correct_segment(heard, lexicon=FORMULARY)
    assert fixed.text == "Start metformin 10 mg."
    drug = next(i for i, c in enumerate(fixed.corrections) if c.kind == "drug")
    stored = [c.as_dict() for c in fixed.corrections]  # as the transcript keeps them

    assert apply_corrections(fixed.heard_text, stored) == fixed.text
    assert apply_corrections(fixed.heard_text, stored, skip=frozenset({drug})) == (
        "Start met foreman 10 mg."
    )
    everything = frozenset(range(len(stored)))
    assert apply_corrections(fixed.heard_text, stored, skip=everything) == fixed.heard_text


def test_evidence_that_no_longer_fits_the_text_is_ignored() -> None:
    stale = [{"at": 6, "heard": "met foreman", "corrected": "metformin"}]
    assert apply_corrections("Start something else", stale) == "Start something else"


def test_tens_heard_as_words_before_a_unit_become_a_dose_with_their_evidence() -> None:
    # "forty milligrams" as Whisper base wrote it on a synthesized voice.
    heard = recognised(("taking", 0.9), ("for", 0.8), ("the", 0.7), ("milligrams", 0.9))

    fixed = correct_segment(heard, lexicon=FORMULARY)

    assert fixed.text == "taking 40 mg"
    (dose,) = fixed.corrections
    assert (dose.heard, dose.corrected, dose.kind) == ("for the milligrams", "40 mg", "dose")
    assert dose.confidence == SOUNDS_LIKE_CONFIDENCE < 1.0
    assert "sounds like 40" in dose.reason
    # Not a guess worth making above its own confidence, nor without a unit after it.
    bar = SOUNDS_LIKE_CONFIDENCE + 0.01
    assert correct_segment(heard, lexicon=FORMULARY, threshold=bar) == heard
    waiting = recognised(("waited", 0.9), ("for", 0.9), ("the", 0.9), ("doctor", 0.9))
    assert correct_segment(waiting, lexicon=FORMULARY) == waiting


@pytest.mark.parametrize("dose", [(), (("4.0", 0.7),), (("ten", 0.9), ("milligrams", 0.9))])
def test_a_word_between_two_names_of_one_family_is_left_as_heard(dose) -> None:
    # "acitalopram" (said: escitalopram) fits citalopram a little better; a dose after it must
    # not tip a coin flip between two drugs whose doses differ twofold.
    heard = recognised(("stop", 0.9), ("the", 0.9), ("acitalopram", 0.1), *dose)

    fixed = correct_segment(heard, lexicon=FORMULARY, numbers=False)

    assert not [c for c in fixed.corrections if c.kind == "drug"]
    assert "acitalopram" in fixed.text


def test_a_word_run_into_a_name_is_split_off() -> None:
    heard = recognised(("i", 0.9), ("will", 0.9), ("addrosuvastatin", 0.3), ("tonight", 0.9))

    fixed = correct_segment(heard, lexicon=FORMULARY, numbers=False)

    assert fixed.text == "i will add rosuvastatin tonight", fixed.corrections


def test_the_front_of_a_longer_name_is_not_taken_for_a_word_run_into_it() -> None:
    # "desitalopram" (said: escitalopram) was corrected to "de citalopram": the letters cut
    # off were the front of the other name of the family.
    heard = recognised(("stop", 0.9), ("the", 0.9), ("desitalopram", 0.3), ("for", 0.9))

    fixed = correct_segment(heard, lexicon=FORMULARY, numbers=False)

    assert "citalopram" not in fixed.text.replace("desitalopram", ""), fixed.corrections


def test_a_garble_far_closer_to_one_family_name_is_still_corrected() -> None:
    heard = recognised(("take", 0.9), ("esomeprazol", 0.2), ("forty", 0.9), ("milligrams", 0.9))

    fixed = correct_segment(heard, lexicon=FORMULARY)

    assert "esomeprazole" in fixed.text, fixed.corrections


@pytest.mark.parametrize(
    ("words", "text"),
    [
        (("blood", "pressure", "today", "is", "128.82,", "we", "should"), "128/82 mmHg,"),
        (("BP", "was", "141.93", "at", "home"), "141/93 mmHg"),
    ],
)
def test_a_pressure_written_as_one_decimal_after_blood_pressure(words, text) -> None:
    heard = recognised(*((w, 0.9) for w in words))

    fixed = correct_segment(heard, lexicon=FORMULARY)

    assert text in fixed.text
    (vital,) = fixed.corrections
    assert vital.kind == "vital" and vital.confidence < 1.0
    assert "right after 'blood pressure'" in vital.reason


@pytest.mark.parametrize(
    "words",
    [
        ("the", "temperature", "was", "98.6"),  # no pressure cue
        ("blood", "pressure", "fine,", "dose", "12.5"),  # not a reading
        ("version", "120.80", "of", "the", "app"),
        # Far from the cue: a lab value, not the reading.
        (
            "blood",
            "pressure",
            "is",
            "fine,",
            "and",
            "the",
            "lab",
            "result",
            "from",
            "last",
            "week",
            "came",
            "back",
            "at",
            "128.82",
        ),
    ],
)
def test_other_decimals_are_left_alone(words) -> None:
    heard = recognised(*((w, 0.9) for w in words))
    assert correct_segment(heard, lexicon=FORMULARY) == heard
