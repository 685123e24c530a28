"""Spoken numbers, doses and drug names as consultations say them: repeated numbers, years in
halves, a dose before the name, a drug confirmed with "that's it", a drug given for allergies."""

from __future__ import annotations

import pytest

from consults.notes import parse_transcript
from consults.notes.facts import extract_facts, extract_medications
from consults.notes.meds import parse_dose, parse_dose_before
from consults.notes.numbers import words_to_digits


@pytest.mark.parametrize(
    ("spoken", "digits"),
    [
        # A repeated number is two numbers, not their sum or a concatenation.
        ("five hundred five hundred milligrams", "500 500 milligrams"),
        ("ten ten milligrams", "10 10 milligrams"),
        ("one hundred one hundred", "100 100"),
        # Ordinary compounds still read as one number.
        ("three hundred and twenty five", "325"),
        ("one thousand five hundred", "1500"),
        ("seven thousand two hundred", "7200"),
        ("twenty five milligrams", "25 milligrams"),
        ("twelve point five milligrams", "12.5 milligrams"),
        # Years said in halves, and blood pressure said in pairs.
        ("a heart attack in twenty eighteen", "a heart attack in 2018"),
        ("nineteen ninety five", "1995"),
        ("one twenty-eight over eighty-two", "128 over 82"),
        # A spoken "point" transcribed as a full stop, before a dose unit only.
        ("aldactone twelve . five milligrams daily", "aldactone 12.5 milligrams daily"),
        ("it was forty two . five days later", "it was 42 . 5 days later"),
    ],
)
def test_words_to_digits(spoken: str, digits: str) -> None:
    assert words_to_digits(spoken) == digits


def test_repeated_dose_reads_once() -> None:
    assert parse_dose("naprosyn five hundred five hundred milligrams twice a day") == "500 mg"


@pytest.mark.parametrize(
    ("before", "dose"),
    [
        ("you're on twenty milligrams of ", "20 mg"),
        ("i want to put you on fifty milligrams of ", "50 mg"),
        ("take 20 mg of the ", "20 mg"),
        ("i had twenty milligrams of pain and then ", None),
        ("you take your ", None),
    ],
)
def test_dose_said_before_the_name(before: str, dose: str | None) -> None:
    assert parse_dose_before(before) == dose


def test_extraction_reads_dose_before_the_name_and_after_it_first() -> None:
    utterances = parse_transcript(
        text=(
            "[doctor] i see you're on twenty milligrams of lisinopril for your blood pressure .\n"
            "[doctor] i want to put you on fifty milligrams of ultram every six hours .\n"
            "[patient] i take metformin five hundred milligrams twice a day .\n"
        )
    )
    doses = {m.name: m.dose for m in extract_medications(utterances=utterances, allergens=set())}
    assert doses == {"lisinopril": "20 mg", "ultram": "50 mg", "metformin": "500 mg"}


def test_drug_confirmed_by_thats_it_is_a_medication() -> None:
    utterances = parse_transcript(
        text=(
            "[doctor] are you taking any medications for that ?\n"
            "[patient] yeah , i am . um , begins with a d.\n"
            "[doctor] uh , digoxin ?\n"
            "[patient] that's it . yeah , that's it .\n"
        )
    )
    names = {m.name for m in extract_medications(utterances=utterances, allergens=set())}
    assert names == {"digoxin"}


def test_a_drug_given_for_allergies_is_a_medication_not_an_allergen() -> None:
    utterances = parse_transcript(
        text=(
            "[doctor] it looks like you might be having a little bit of allergies maybe we can "
            "try some singulair .\n"
            "[patient] i take claritin for my allergies .\n"
            "[patient] my allergies are penicillin , i get hives .\n"
        )
    )
    facts = extract_facts(utterances=utterances)
    assert {a.substance for a in facts.allergies} == {"penicillin"}
    assert {m.name for m in facts.medications} == {"singulair", "claritin"}
