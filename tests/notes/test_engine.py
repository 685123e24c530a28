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
    assert "Constitutional: Denies fever or chills." in text["review_of_systems"]
    assert (
        "Respiratory: Endorses cough (for about 5 days) and shortness of breath"
        in (text["review_of_systems"])
    )
    assert "128/82" in text["objective"]
    assert "asthma" in text["family_history"]
    assert "Benzonatate 100 mg" in text["plan"] and "started" in text["plan"]
    assert text["chief_complaint"]


def test_note_serialises_with_evidence(note) -> None:  # noqa: ANN001
    data = note.to_dict()
    assert data["engine_version"]
    assert all(i["evidence"] for items in data["sections"].values() for i in items)


def test_review_of_systems_groups_symptoms_by_system_and_places_a_pain_by_its_site() -> None:
    lines = parse_transcript(
        text="""\
[doctor] what happened ?
[patient] i slipped on the ice and now i have this right ankle pain .
[doctor] any numbness or tingling in your foot ?
[patient] no .
[doctor] any nausea ?
[patient] a little nausea , and some headaches .
"""
    )
    note = draft_note(utterances=lines)
    ros = [i.text for i in note.sections["review_of_systems"]]
    assert ros == [
        "Gastrointestinal: Endorses nausea.",
        "Musculoskeletal: Endorses right ankle pain.",
        "Neurological: Endorses headache. Denies numbness or tingling.",
    ]
    for item in note.sections["review_of_systems"]:
        assert check_item(item=item, utterances=lines) == [], item


def test_every_symptom_has_a_review_of_systems_heading() -> None:
    from consults.notes.lexicon import SYMPTOMS, SYSTEMS

    placed = {name for names in SYSTEMS.values() for name in names}
    assert set(SYMPTOMS) - placed == {"pain"}  # placed by its site, or under Other


def test_a_no_answers_the_end_of_an_unpunctuated_turn_not_every_symptom_in_it() -> None:
    from consults.notes.facts import extract_findings

    lines = parse_transcript(
        text="""\
[doctor] on exam of your right ankle there is ecchymosis over the lateral malleolus associated \
with swelling and there is tenderness to palpation of the soft tissue and no bony tenderness so \
your symptoms are consistent with a sprain have you sprained your ankle before
[patient] no i do n't think so
[doctor] any fever or chills since the fall
[patient] no
"""
    )
    denied = {f.name for f in extract_findings(utterances=lines) if f.negated}
    assert denied == {"fever", "chills"}


def test_a_yes_answers_the_last_of_questions_asked_together_a_no_all_of_them() -> None:
    from consults.notes.facts import extract_findings

    lines = parse_transcript(
        text="""\
[doctor] alright and any nausea vomiting or diarrhea or anything like that are you peeing a \
whole lot or anything like that
[patient] yeah i'm peeing like crazy
[doctor] any fever any chills
[patient] no
[doctor] do you have a cough or are you short of breath
[patient] yes
"""
    )
    found = {f.name: f.negated for f in extract_findings(utterances=lines)}
    assert not {"nausea", "vomiting", "diarrhea"} & set(found), found
    assert found["fever"] is True and found["chills"] is True
    assert found["cough"] is False


def test_a_denied_bare_pain_is_left_out_beside_a_pain_placed_by_its_site() -> None:
    from consults.notes.engine import review_of_systems
    from consults.notes.facts import extract_findings
    from consults.notes.types import Finding

    lines = parse_transcript(
        text=(
            "[patient] i was trying to get around her and i felt a pain in my foot .\n"
            "[doctor] okay and any other pain ?\n"
            "[patient] no .\n"
        )
    )
    found = extract_findings(utterances=lines)
    denied = Finding(name="pain", evidence=(2,), negated=True)  # "any other pain?" "no."
    items = review_of_systems(findings=[*found, denied], utterances=lines)
    assert all("Denies pain" not in i.text for i in items), [i.text for i in items]


def test_a_symptom_the_patient_reported_is_not_also_denied() -> None:
    from consults.notes.engine import review_of_systems
    from consults.notes.types import Finding

    lines = parse_transcript(text="[patient] it hurts .\n[patient] no .\n")
    reported = Finding(name="nausea", evidence=(0,), negated=False, duration="for 2 days")
    denied = Finding(name="nausea", evidence=(1,), negated=True)
    items = review_of_systems(findings=[reported, denied], utterances=lines)
    assert [i.text for i in items] == ["Gastrointestinal: Endorses nausea (for 2 days)."]
