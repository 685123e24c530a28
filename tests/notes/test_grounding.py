"""The grounding check rejects items whose claims are not in their cited lines."""

from __future__ import annotations

from consults.notes.grounding import check_item, ground_note
from consults.notes.transcript import parse_transcript
from consults.notes.types import DraftNote, Medication, NoteFacts, NoteItem

LINES = parse_transcript(
    text=(
        "[doctor] what medicines are you on ?\n"
        "[patient] lisinopril twenty milligrams a day .\n"
        "[doctor] any allergies ?\n"
        "[patient] penicillin gives me hives .\n"
        "[patient] my blood pressure was 128 over 82 .\n"
    )
)


def test_item_without_evidence_is_rejected() -> None:
    assert check_item(item=NoteItem("Lisinopril 20 mg daily", []), utterances=LINES)


def test_item_citing_missing_line_is_rejected() -> None:
    assert check_item(item=NoteItem("Lisinopril 20 mg", [42]), utterances=LINES)


def test_spoken_dose_grounds_written_dose() -> None:
    assert check_item(item=NoteItem("Lisinopril 20 mg daily", [1]), utterances=LINES) == []


def test_wrong_dose_is_rejected() -> None:
    problems = check_item(item=NoteItem("Lisinopril 40 mg daily", [1]), utterances=LINES)
    assert any("40" in p for p in problems)


def test_medication_not_in_cited_line_is_rejected() -> None:
    problems = check_item(item=NoteItem("Metformin 20 mg", [1]), utterances=LINES)
    assert any("metformin" in p for p in problems)


def test_allergen_must_be_in_cited_line() -> None:
    assert check_item(item=NoteItem("Penicillin: hives", [3]), utterances=LINES) == []
    assert check_item(item=NoteItem("Sulfa: hives", [3]), utterances=LINES)


def test_vital_numbers_must_be_in_cited_line() -> None:
    assert check_item(item=NoteItem("BP 128/82", [4]), utterances=LINES) == []
    assert check_item(item=NoteItem("BP 138/82", [4]), utterances=LINES)


def test_ground_note_drops_ungrounded_items_and_facts() -> None:
    note = DraftNote(
        sections={
            "medications": [
                NoteItem("Lisinopril 20 mg daily", [1]),
                NoteItem("Warfarin 5 mg", [1]),
            ]
        },
        facts=NoteFacts(
            medications=[
                Medication("lisinopril", (1,), "20 mg"),
                Medication("warfarin", (), "5 mg"),
            ]
        ),
        engine_version="test",
    )
    grounded, problems = ground_note(note=note, utterances=LINES)
    assert [i.text for i in grounded.sections["medications"]] == ["Lisinopril 20 mg daily"]
    assert [m.name for m in grounded.facts.medications] == ["lisinopril"]
    assert {p.item for p in problems} == {"Warfarin 5 mg", "warfarin 5 mg"}
    assert any(p.reason == "cites no transcript line" for p in problems)
