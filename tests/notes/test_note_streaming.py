"""The note reaches the physician section by section; work starts during the call; a re-draft
keeps the physician's edits. A scripted model stands in for the real one (tests/test_llm_notes.py
runs the real model through a real worker)."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import reverse

from consults.booking import services as booking_services
from consults.models import ClinicalNote, ConsentPurpose, VisitStatus
from consults.notes import services as clinical_notes
from consults.notes.llm import SECTIONS, LlmDrafter
from consults.room import services as room_services
from tests.test_clinical_notes import _transcribed_visit
from tests.test_permissions import login

SCRIPT = {
    "CHIEF COMPLAINT": "Cough and fever. [1]\n",
    "HISTORY OF PRESENT ILLNESS": (
        "The patient reports a cough and a fever for 3 days. [1]\n"
        "She takes lisinopril 20 mg daily. [5]\n"  # invented dose: dropped
    ),
    "PHYSICAL EXAMINATION AND RESULTS": "None.\n",
    "ASSESSMENT": "Cough with fever. [1]\n",
    "PLAN": "Start azithromycin 500 mg once daily for 5 days. [8]\n",
}


class CoughModel:
    name = "scripted"
    context_tokens = 8192

    def __init__(self) -> None:
        self.prefilled: list[str] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def prefill(self, *, messages, through) -> int:
        self.prefilled.append(through)
        return 1

    def complete(self, *, messages, grammar, max_tokens, deadline) -> str:
        title = messages[-1]["content"].rsplit("Write the ", 1)[1].split(" section", 1)[0]
        return SCRIPT[title]


@pytest.fixture
def pushes(monkeypatch):
    """Every socket push of the note service, with the note as saved at that moment."""
    seen = []

    def push(*, visit_id, payload, staff_only=False):
        note = ClinicalNote.objects.get(visit_id=visit_id)
        seen.append((payload, staff_only, note.status, dict(note.content.get("sections", {}))))

    monkeypatch.setattr(clinical_notes, "room_push", push)
    return seen


@pytest.fixture
def model(monkeypatch):
    scripted = CoughModel()
    drafter = LlmDrafter(generator=scripted)
    monkeypatch.setattr(clinical_notes, "_drafter", lambda: drafter)
    return scripted


def test_each_section_is_saved_then_announced_to_staff_only(
    patient, physician, model, pushes, monkeypatch
):
    from consults import hooks
    from triage.realtime import _patient_messages

    visit = _transcribed_visit(patient, physician)
    events = []
    monkeypatch.setattr(hooks, "visit_changed", lambda *, visit, event, **_: events.append(event))
    note = clinical_notes.note_draft(visit_id=visit.pk)
    # The review page (the visit's staff group) hears each section; a patient's socket hears
    # nothing of it, not even that their line moved.
    assert events.count("note_section") == len(note.content["sections"])
    assert events[-1] == "note_drafted"
    assert _patient_messages(visit, "note_section", None) == []
    sections = [(p, staff, status, saved) for p, staff, status, saved in pushes]
    announced = [p["section"] for p, *_ in sections if p["type"] == "note.section"]
    # The model's sections in note order, after the rules' structured sections.
    assert announced[-len(SECTIONS) :] == [s.key for s in SECTIONS]
    assert set(announced) == set(note.content["sections"])
    for payload, staff_only, status, saved in sections:
        # Nothing about the note reaches the patient's sockets; each pushed section is saved.
        assert staff_only is True
        if payload["type"] == "note.section":
            assert status == ClinicalNote.Status.DRAFTING
            assert payload["section"] in saved
    hpi_when_pushed = next(saved for p, *_, saved in sections if p.get("section") == "hpi")
    assert [i["text"] for i in hpi_when_pushed["hpi"]] == [
        "The patient reports a cough and a fever for 3 days."
    ]
    assert pushes[-1][0]["type"] == "note.drafted"
    assert note.status == ClinicalNote.Status.DRAFT
    assert "She takes lisinopril 20 mg daily." in {d["text"] for d in note.content["dropped"]}


def test_review_page_shows_written_and_pending_sections_while_drafting(
    client, patient, physician, monkeypatch
):
    visit = _transcribed_visit(patient, physician)
    pages = []

    def look(*, visit_id, payload, staff_only=False):
        if payload.get("section") == "hpi":
            url = reverse("consults:note_progress", args=[visit_id])
            pages.append(login(client, physician).get(url).content.decode())

    monkeypatch.setattr(clinical_notes, "room_push", look)
    monkeypatch.setattr(clinical_notes, "_drafter", lambda: LlmDrafter(generator=CoughModel()))
    clinical_notes.note_draft(visit_id=visit.pk)
    (page,) = pages
    assert 'data-section="hpi" data-state="done"' in page
    assert "The patient reports a cough and a fever for 3 days." in page
    assert 'data-section="plan" data-state="pending"' in page
    assert "being written" in page
    # Written sections are read here; the editable form comes once the draft is complete.
    assert "<input" not in page


def test_redraft_keeps_the_sections_the_physician_edited(patient, physician, model, pushes):
    visit = _transcribed_visit(patient, physician)
    note = clinical_notes.note_draft(visit_id=visit.pk)
    hpi = note.content["sections"]["hpi"]
    mine = "Three days of productive cough and fever to 38.5 C."
    note = clinical_notes.note_edit(
        note=note,
        physician=physician,
        edits={"hpi": [mine] + [""] * (len(hpi) - 1)},
        added={"plan": "Chest x-ray if not better in 48 hours."},
    )
    clinical_notes.note_request(visit=visit, redraft=True)
    note = clinical_notes.note_draft(visit_id=visit.pk)
    assert [i["text"] for i in note.content["sections"]["hpi"]] == [mine]
    plan = [i["text"] for i in note.content["sections"]["plan"]]
    assert "Chest x-ray if not better in 48 hours." in plan
    # Sections the physician did not touch are written again by the engine.
    assert [i["text"] for i in note.content["sections"]["chief_complaint"]] == ["Cough and fever."]
    assert any("Kept as you edited them" in n for n in note.content["notices"])


def test_during_the_call_the_model_reads_the_final_lines(
    patient, physician, model, monkeypatch, settings
):
    settings.NOTES_BACKEND = "llm"
    sent = []
    monkeypatch.setattr(clinical_notes, "send_on_commit", lambda task, *args: sent.append(args))
    cache.clear()
    visit = booking_services.visit_join_on_demand(patient=patient, reason="Cough")
    visit = room_services.visit_admit(visit=visit, physician=physician)
    # No consent to AI notes: the model reads nothing.
    assert clinical_notes.note_prepare_request(visit=visit) is False
    room_services.consent_record(
        visit=visit,
        patient=patient,
        choices={ConsentPurpose.RECORDING: True, ConsentPurpose.AI_NOTES: True},
    )
    assert visit.status == VisitStatus.IN_CONSULT
    assert clinical_notes.note_prepare_request(visit=visit) is True
    # At most once per NOTES_PREPARE_EVERY_S per visit.
    assert clinical_notes.note_prepare_request(visit=visit) is False
    assert sent == [(visit.pk,)]


def test_prepare_reads_the_transcript_so_far_and_nothing_after_the_call(patient, physician, model):
    visit = _transcribed_visit(patient, physician)
    # Ended: nothing to prepare.
    assert clinical_notes.note_prepare(visit_id=visit.pk) == 0
    type(visit).objects.filter(pk=visit.pk).update(status=VisitStatus.IN_CONSULT)
    assert clinical_notes.note_prepare(visit_id=visit.pk) == 1
    assert model.prefilled == [
        "[9] Doctor: If you get short of breath, go to the emergency department."
    ]


def test_rules_backend_does_no_work_during_the_call(patient, physician, settings):
    settings.NOTES_BACKEND = "rules"
    visit = booking_services.visit_join_on_demand(patient=patient, reason="Cough")
    visit = room_services.visit_admit(visit=visit, physician=physician)
    assert clinical_notes.note_prepare_request(visit=visit) is False
