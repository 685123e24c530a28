"""Spoken numbers, doses and drug names as consultations say them: repeated numbers, years in
halves, a dose before the name, a drug confirmed with "that's it", a drug given for allergies."""

from __future__ import annotations

import pytest

from consults.notes import parse_transcript
from consults.notes.context import sentences
from consults.notes.engine import GroundedDrafter
from consults.notes.facts import extract_facts, extract_medications
from consults.notes.meds import parse_dose, parse_dose_before, parse_unitless_dose_before
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
        ("you're on two . five of norvasc", "you're on 2.5 of norvasc"),
        ("i have two . one of my friends", "i have 2 . 1 of my friends"),
        # After the point the digits are said one by one.
        ("clobetasol zero . zero five percent", "clobetasol 0.05 percent"),
        # A dose that starts at the point is under one, not ten times more.
        ("take point five milligrams of ativan", "take 0.5 milligrams of ativan"),
        ("at that point two days later", "at that point 2 days later"),
        # Halves.
        ("two and a half milligrams", "2.5 milligrams"),
        ("one and a half tablets", "1.5 tablets"),
        ("take half a tablet", "take half a tablet"),
        # A range said by its decade.
        ("sugars running in the one twenties", "sugars running in the 120s"),
        ("oxygen in the nineties", "oxygen in the 90s"),
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


@pytest.mark.parametrize(
    ("text", "split"),
    [
        # A spoken point before a unit or "of" ends no sentence; elsewhere a full stop does.
        ("you're on two . five of norvasc . okay", ["you're on two . five of norvasc", "okay"]),
        ("aldactone twelve . five milligrams", ["aldactone twelve . five milligrams"]),
        ("i have two . one of them is older", ["i have two", "one of them is older"]),
        ("it was forty two . five days later", ["it was forty two", "five days later"]),
        ("i am fine . one of my friends", ["i am fine", "one of my friends"]),
    ],
)
def test_spoken_point_is_not_a_sentence_end(text: str, split: list[str]) -> None:
    assert sentences(text) == split


@pytest.mark.parametrize(
    ("before", "drug", "dose"),
    [
        ("you're on five hundred of ", "metformin", "500 mg"),
        ("you're on two . five of ", "norvasc", "2.5 mg"),
        ("she takes twenty of her ", "lantus insulin", "20 units"),
        # A small whole number is a count of tablets, not a dose.
        ("i took two of the ", "tylenol", None),
        ("you take your ", "metformin", None),
    ],
)
def test_unitless_dose_before_the_name(before: str, drug: str, dose: str | None) -> None:
    assert parse_unitless_dose_before(before, drug=drug) == dose


def test_a_dose_without_its_unit_is_read_and_marked_for_the_physician() -> None:
    utterances = parse_transcript(
        text=(
            "[doctor] you're on five hundred of metformin and two . five of norvasc .\n"
            "[patient] yes .\n"
            "[doctor] and you take lisinopril ten milligrams daily .\n"
        )
    )
    meds = {m.name: m for m in extract_medications(utterances=utterances, allergens=set())}
    assert {n: (m.dose, m.unit_assumed) for n, m in meds.items()} == {
        "metformin": ("500 mg", True),
        "norvasc": ("2.5 mg", True),
        "lisinopril": ("10 mg", False),
    }
    items = GroundedDrafter(use_model=False).draft(utterances=utterances).sections["medications"]
    items += GroundedDrafter(use_model=False).draft(utterances=utterances).sections["plan"]
    by_drug = {i.text.split()[0]: i for i in items if i.kind == "medication"}
    assert "500 mg (unit not said)" in by_drug["Metformin"].text
    assert by_drug["Metformin"].needs_review and not by_drug["Lisinopril"].needs_review


def test_a_sentence_with_a_spoken_point_keeps_its_number_through_tidying() -> None:
    utterances = parse_transcript(
        text=(
            "[doctor] i want to add aldactone twelve . five milligrams daily and keep you on "
            "two . five of norvasc , and then you'll need to get labs next week .\n"
        )
    )
    note = GroundedDrafter(use_model=False).draft(utterances=utterances)
    plan = " ".join(i.text for i in note.sections["plan"] if i.kind == "narrative")
    assert "twelve point five milligrams" in plan and "two point five of norvasc" in plan
    assert not note.dropped


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


@pytest.mark.parametrize(
    ("said", "temperature"),
    [
        ("your temperature was ninety seven . seven and that is all normal", "97.7"),
        ("temperature is ninety eight . two your pulse is seventy two", "98.2"),
        ("my wife checked my temperature it was about ninety nine point seven", "99.7"),
        ("my temperature was a hundred . two days later it broke", "100"),
        ("temperature was ninety eight . two of my friends had it too", "98"),
    ],
)
def test_a_temperature_keeps_the_tenth_said_after_a_full_stop(said: str, temperature: str) -> None:
    from consults.notes.facts import extract_vitals
    from consults.notes.grounding import check_item
    from consults.notes.types import NoteItem, Utterance

    lines = [Utterance(0, "doctor", said)]
    vitals = [v for v in extract_vitals(utterances=lines) if v.kind == "temperature"]
    assert [v.value for v in vitals] == [temperature]
    item = NoteItem(f"Temperature {temperature} F", [0])
    assert check_item(item=item, utterances=lines) == []


def test_blood_sugars_said_by_their_decade_are_a_range_not_one_reading() -> None:
    facts = extract_facts(
        utterances=parse_transcript(
            text="[doctor] good your blood sugars are running in the one twenties .\n"
        )
    )
    assert [(v.kind, v.value) for v in facts.vitals] == [("blood_glucose", "120s")]
