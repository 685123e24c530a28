"""The real note model end to end: a short real dialogue, hung up, becomes a note drafted by
the model in a real Celery worker, whose every sentence cites its lines."""

import pytest

from consults.models import ClinicalNote
from consults.notes.grounding import GENERATED
from consults.notes.meds import find_drug_spans
from tests.test_clinical_notes import DIALOGUE, _transcribed_visit


@pytest.mark.slow
@pytest.mark.worker
def test_hang_up_drafts_a_model_note_in_a_real_worker(
    transactional_db, tmp_path, patient, physician
):
    from tests.workers import start_worker, stop_worker, wait_for

    # One worker process loads the model once (about 2 s) and drafts the note: about 1-2 min
    # on 2 cores, most of it the model reading the transcript and writing five sections.
    worker = start_worker(
        tmp_path / "worker.log",
        # Under the drafting task's 240 s limit, but generous for a busy CI machine.
        extra_env={"NOTES_BACKEND": "llm", "NOTES_LLM_TIMEOUT_S": "210"},
    )
    try:
        visit = _transcribed_visit(patient, physician)
        note = wait_for(
            lambda: ClinicalNote.objects.filter(
                visit=visit, status=ClinicalNote.Status.DRAFT
            ).first(),
            timeout=300,
        )
    finally:
        stop_worker(worker)
    content = note.content
    assert note.engine_version.startswith("llm-"), content.get("notices")
    # The model wrote it, not the rules; on a machine so busy that the model ran out of time,
    # the last sections are the rules' and the note says which (never silently).
    late = [n for n in content["notices"] if "did not finish in time" in n]
    assert content["notices"] == late, content["notices"]
    generated = [
        item
        for items in content["sections"].values()
        for item in items
        if item["kind"] == GENERATED
    ]
    assert content["sections"]["chief_complaint"]
    assert any(item["kind"] == GENERATED for item in content["sections"]["hpi"])
    assert generated and all(item["evidence"] for item in generated)
    assert all(0 <= n < len(DIALOGUE) for item in generated for n in item["evidence"])
    assert content["dropped_count"] == len(content["dropped"])
    # No drug the visit did not name; the structured facts stay the rules' own.
    said = " ".join(text for _, text in DIALOGUE).lower()
    for item in generated:
        for _, start, end in find_drug_spans(item["text"]):
            assert item["text"][start:end].lower() in said
    assert any("penicillin" in a["text"].lower() for a in content["sections"]["allergies"])
    assert {m["name"] for m in content["facts"]["medications"]} == {"lisinopril", "azithromycin"}


def test_review_page_shows_dropped_sentences_and_the_fallback_notice(
    client, monkeypatch, patient, physician
):
    from django.urls import reverse

    from consults.notes import services as clinical_notes
    from consults.notes.llm import LlmDrafter
    from tests.notes.test_llm_drafter import ScriptedModel
    from tests.test_permissions import login

    visit = _transcribed_visit(patient, physician)
    # A scripted model about a knee, on a visit about a cough: grounding drops what it invents.
    monkeypatch.setattr(clinical_notes, "_drafter", lambda: LlmDrafter(generator=ScriptedModel()))
    note = clinical_notes.note_draft(visit_id=visit.pk)
    dropped = note.content["dropped"]
    assert note.content["dropped_count"] == len(dropped) > 0
    assert all(d["reasons"] for d in dropped)
    page = login(client, physician).get(reverse("consults:note", args=[visit.pk])).content
    assert b"Left out by the grounding check" in page
    assert f"<del>{dropped[0]['text']}</del>".encode() in page

    failing = LlmDrafter(generator=ScriptedModel(fail=TimeoutError("note model deadline passed")))
    monkeypatch.setattr(clinical_notes, "_drafter", lambda: failing)
    note = clinical_notes.note_draft(visit_id=visit.pk)
    assert note.engine_version.startswith("grounded-rules")
    page = login(client, physician).get(reverse("consults:note", args=[visit.pk])).content
    assert b"the rules engine drafted it instead" in page
