"""End to end: the default backend with its real section model on a hand-written visit."""

from __future__ import annotations

import pytest

from consults.notes import draft_note, get_drafter, parse_transcript
from consults.notes.grounding import check_item
from consults.notes.types import NoteDrafter

VISIT = """\
[doctor] hi , what brings you in today ?
[patient] i've had a cough and a sore throat for about five days .
[doctor] any fever or chills ?
[patient] no .
[doctor] any shortness of breath ?
[patient] a little when i climb stairs .
[doctor] what medications are you taking ?
[patient] i take lisinopril ten milligrams once a day , and i used to take metformin .
[doctor] any allergies ?
[patient] i'm allergic to sulfa drugs , i get hives .
[patient] my blood pressure at home was 128 over 82 .
[patient] my mother had asthma .
[doctor] i think you have a viral upper respiratory infection .
[doctor] i'm going to start you on benzonatate 100 mg three times a day as needed for cough .
[doctor] if you get chest pain or trouble breathing , go to the emergency room .
[doctor] follow up in two weeks if it's not better .
"""


@pytest.fixture(scope="module")
def note():  # noqa: ANN201
    return draft_note(utterances=parse_transcript(text=VISIT))


def test_default_backend_implements_protocol() -> None:
    assert isinstance(get_drafter(), NoteDrafter)


def test_every_item_cites_lines_that_ground_it(note) -> None:  # noqa: ANN001
    lines = parse_transcript(text=VISIT)
    items = [i for items in note.sections.values() for i in items]
    assert items
    for item in items:
        assert check_item(item=item, utterances=lines) == [], item


def test_note_sections_hold_the_visit_facts(note) -> None:  # noqa: ANN001
    text = {k: " | ".join(i.text for i in v) for k, v in note.sections.items()}
    assert "Lisinopril 10 mg" in text["medications"]
    assert "Metformin" in text["medications"] and "historical" in text["medications"]
    assert "Sulfa drugs: hives" in text["allergies"]
    assert "Denies fever" in text["pertinent_negatives"]
    assert "shortness of breath" in text["pertinent_positives"]
    assert "128/82" in text["objective"]
    assert "asthma" in text["family_history"]
    assert "Benzonatate 100 mg" in text["plan"] and "started" in text["plan"]
    assert text["chief_complaint"]


def test_note_serialises_with_evidence(note) -> None:  # noqa: ANN001
    data = note.to_dict()
    assert data["engine_version"]
    assert all(i["evidence"] for items in data["sections"].values() for i in items)
