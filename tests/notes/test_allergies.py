"""Allergies as patients and doctors actually say them (shapes seen in MTS-Dialog)."""

from __future__ import annotations

import pytest

from consults.notes import parse_transcript
from consults.notes.facts import extract_allergies
from consults.notes.grounding import check_item
from consults.notes.types import NoteItem


def _read(text: str) -> tuple[dict[str, str | None], tuple[int, ...], list]:
    lines = parse_transcript(text=text)
    allergies, none_lines = extract_allergies(utterances=lines)
    for a in allergies:  # every allergy is grounded in the lines it cites
        assert check_item(item=NoteItem(a.substance, list(a.evidence)), utterances=lines) == []
    return {a.substance: a.reaction for a in allergies}, none_lines, allergies


@pytest.mark.parametrize(
    ("dialogue", "substances"),
    [
        (
            "Doctor: Any drug allergies?\nPatient: Ah yes, I am allergic to... what's the name "
            "of the drug? It's called Napro-\nDoctor: Naprosyn?\nPatient: Yes, Naprosyn.",
            {"naprosyn"},
        ),
        (
            "Doctor: And are you allergic to any drugs?\nPatient: Oh yes, I am allergic to what "
            "you call Cipro-\nDoctor: Ciprofloxacin?\nPatient: Yes! And also, Asprin but that "
            "coated one, what is called?\nDoctor: Oh, you mean enteric coated Aspirin?\n"
            "Patient: Yes, yes, that one!",
            {"ciprofloxacin", "aspirin"},
        ),
        (
            "Doctor: Any known allergies?\nPatient: Oh yes, I cannot take Sulfa drugs.",
            {"sulfa drugs"},
        ),
        (
            "Doctor: Have you ever had an allergic reaction to drugs you've taken in the past?\n"
            "Patient: More than once. I've reacted poorly to sulfa drugs, penicillin, and some "
            "mycins.",
            {"sulfa drugs", "penicillin"},
        ),
        (
            "Doctor: Is patient allergic to any medication?\nGuest_clinician: Yes, he is "
            "allergic to quite a few medicines.\nDoctor: Okay, so he is allergic to Lamisil. "
            "Oh, he is allergic to Bactrim too.\nGuest_clinician: Yeah, and Dilatrate and "
            "cyclobenzaprine.",
            {"lamisil", "bactrim", "dilatrate", "cyclobenzaprine"},
        ),
    ],
)
def test_allergies_told_in_pieces_are_read(dialogue: str, substances: set[str]) -> None:
    found, none_lines, _ = _read(dialogue)
    assert substances <= set(found)
    assert none_lines == ()


def test_a_reaction_asked_about_a_drug_makes_it_an_allergy_with_its_reaction() -> None:
    found, _, _ = _read(
        "Doctor: What happens when you take Sulfa drugs?\n"
        "Patient: Oh man, I get a really ugly looking rash."
    )
    assert found == {"sulfa drugs": "rash"}


def test_no_other_allergy_besides_one_is_that_one_not_none() -> None:
    found, none_lines, allergies = _read(
        "Doctor: Any other allergies besides Penicillin?\nPatient: Um no."
    )
    assert set(found) == {"penicillin"} and none_lines == ()
    assert allergies[0].evidence == (0,)


@pytest.mark.parametrize(
    "dialogue",
    [
        "Doctor: Ever reacted poorly to any medications taken in the past?\n"
        "Patient: Hm I don't think so. No reactions so far.",
        "Doctor: How about allergies to medications?\nPatient: Nope.",
        "Doctor: And you are not allergic to anything right?\nPatient: That's right.",
        "Doctor: Have you had any adverse reactions to medications you've taken in the past?\n"
        "Patient: No, thankfully.",
        "Doctor: Any medication intolerances?\nPatient: No.",
        "Doctor: How about allergies?\nPatient: I don't know of any.",
    ],
)
def test_no_known_allergies_said_in_other_words(dialogue: str) -> None:
    found, none_lines, _ = _read(dialogue)
    assert found == {} and none_lines


def test_a_drug_named_back_is_not_an_allergy_without_an_allergy_told_first() -> None:
    found, _, _ = _read(
        "Doctor: Any allergies?\nPatient: No.\nDoctor: Are you taking lisinopril?\nPatient: Yes."
    )
    assert found == {}


def test_a_line_going_on_about_something_else_adds_no_allergy() -> None:
    found, _, _ = _read(
        "Doctor: Any allergies?\nPatient: I'm allergic to penicillin.\n"
        "Patient: And I take metformin every morning."
    )
    assert found == {"penicillin": None}
