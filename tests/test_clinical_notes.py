"""The note pipeline in the platform: draft from the transcript, edit, sign, summary."""

import pytest
from django.urls import reverse

from consults.booking import services as booking_services
from consults.models import (
    AudioChunk,
    ChunkStatus,
    ClinicalNote,
    ConsentPurpose,
    Recording,
    TranscriptSegment,
)
from consults.notes import services as clinical_notes
from consults.room import services as room_services
from tests.test_permissions import login

DIALOGUE = [
    ("physician", "What brings you in today?"),
    ("patient", "I've had a cough and a fever for three days."),
    ("physician", "Any chest pain?"),
    ("patient", "No."),
    ("physician", "Are you taking any medications?"),
    ("patient", "I take lisinopril 10 mg once a day for my blood pressure."),
    ("physician", "Any allergies to medications?"),
    ("patient", "Yes, I'm allergic to penicillin, it gives me a rash."),
    ("physician", "I'll start you on azithromycin 500 mg once daily for five days."),
    ("physician", "If you get short of breath, go to the emergency department."),
]


def _transcribed_visit(patient, physician, *, consent=True):
    visit = booking_services.visit_join_on_demand(patient=patient, reason="Cough")
    visit = room_services.visit_admit(visit=visit, physician=physician)
    if consent:
        room_services.consent_record(
            visit=visit,
            patient=patient,
            choices={ConsentPurpose.RECORDING: True, ConsentPurpose.AI_NOTES: True},
        )
    recordings = {
        speaker: Recording.objects.create(visit=visit, speaker=speaker, user=user)
        for speaker, user in (("physician", physician), ("patient", patient))
    }
    for index, (speaker, text) in enumerate(DIALOGUE):
        chunk = AudioChunk.objects.create(
            recording=recordings[speaker],
            index=index,
            start_s=index * 5.0,
            path="x",
            content_type="audio/ogg",
            sha256="0" * 64,
            size=1,
            status=ChunkStatus.DONE,
        )
        TranscriptSegment.objects.create(
            visit=visit,
            chunk=chunk,
            speaker=speaker,
            start_s=index * 5.0,
            end_s=index * 5.0 + 4,
            text=text,
            avg_logprob=-0.2,
            no_speech_prob=0.01,
        )
    room_services.visit_end(visit=visit, actor=physician)
    return visit


@pytest.fixture
def drafted(patient, physician):
    visit = _transcribed_visit(patient, physician)
    return clinical_notes.note_draft(visit_id=visit.pk)


def _items(note, key):
    return note.content["sections"][key]


def test_draft_cites_lines_for_medications_and_allergies(drafted):
    assert drafted.status == ClinicalNote.Status.DRAFT and drafted.version == 1
    lines = drafted.content["lines"]
    meds = _items(drafted, "medications")
    assert any("lisinopril" in m["text"].lower() and "10 mg" in m["text"] for m in meds)
    for item in meds + _items(drafted, "allergies"):
        assert item["evidence"], item
        cited = " ".join(lines[i]["text"] for i in item["evidence"]).lower()
        first_word = item["text"].split()[0].lower().strip(",.:")
        assert first_word in cited
    assert any("penicillin" in a["text"].lower() for a in _items(drafted, "allergies"))


def test_bare_no_negates_only_the_question_asked(drafted):
    ros = " ".join(i["text"].lower() for i in _items(drafted, "review_of_systems"))
    denied = " ".join(part.split("denies", 1)[1] for part in ros.split(".") if "denies" in part)
    assert "chest pain" in denied
    assert "fever" not in denied and "cough" not in denied


def test_physician_edits_keep_evidence_and_mark_changes(drafted, physician):
    meds = [m["text"] for m in _items(drafted, "medications")]
    edited = [meds[0] + " (confirmed)"] + meds[1:]
    note = clinical_notes.note_edit(
        note=drafted,
        physician=physician,
        edits={"medications": edited},
        added={"plan": "Recheck in one week."},
    )
    first = _items(note, "medications")[0]
    assert first["origin"] == "physician" and first["evidence"]
    assert _items(note, "plan")[-1] == {
        "text": "Recheck in one week.",
        "evidence": [],
        "needs_review": False,
        "kind": "statement",
        "confidence": 1.0,
        "origin": "physician",
    }
    assert note.revisions.count() == 2


def test_signed_note_is_locked_and_summary_comes_from_it(drafted, physician):
    note = clinical_notes.note_sign(note=drafted, physician=physician)
    assert note.status == ClinicalNote.Status.SIGNED and note.signed_by == physician
    assert "When to get help" in note.after_visit_summary
    with pytest.raises(clinical_notes.NoteError, match="locked"):
        clinical_notes.note_edit(note=note, physician=physician, edits={}, added={"plan": "x"})
    assert clinical_notes.note_draft(visit_id=note.visit_id).version == note.version


def test_other_physician_cannot_sign(drafted, other_physician):
    with pytest.raises(clinical_notes.NoteError):
        clinical_notes.note_sign(note=drafted, physician=other_physician)


def test_no_draft_without_ai_notes_consent(patient, physician):
    visit = _transcribed_visit(patient, physician, consent=False)
    assert clinical_notes.note_request(visit=visit) is None
    assert clinical_notes.note_draft(visit_id=visit.pk) is None
    assert not ClinicalNote.objects.exists()


def test_note_page_and_summary_permissions(
    client, drafted, patient, other_patient, physician, other_physician
):
    visit_id = drafted.visit_id
    note_url = reverse("consults:note", args=[visit_id])
    summary_url = reverse("consults:summary", args=[visit_id])
    page = login(client, physician).get(note_url)
    assert page.status_code == 200 and b"lisinopril" in page.content.lower()
    # Each cited line can be played from its own chunk of audio.
    line = drafted.content["lines"][5]
    audio_url = reverse("consults:audio_chunk_file", args=[visit_id, line["chunk"]])
    assert f'src="{audio_url}#t={line["offset_s"]},{line["offset_end_s"]}"'.encode() in page.content
    assert login(client, other_physician).get(note_url).status_code == 404
    assert login(client, patient).get(note_url).status_code == 403
    # The patient sees nothing the AI wrote until the physician signs.
    unsigned = login(client, patient).get(summary_url)
    assert b"not signed" in unsigned.content and b"lisinopril" not in unsigned.content.lower()
    login(client, physician).post(
        reverse("consults:note_save", args=[visit_id]),
        {
            "sign": "1",
            **{f"item-{k}": [i["text"] for i in v] for k, v in drafted.content["sections"].items()},
        },
    )
    signed = login(client, patient).get(summary_url)
    assert b"When to get help" in signed.content
    assert login(client, other_patient).get(summary_url).status_code == 404


def test_stale_edit_is_refused_not_misapplied(drafted, physician):
    with pytest.raises(clinical_notes.NoteError, match="changed"):
        clinical_notes.note_edit(
            note=drafted, physician=physician, edits={"medications": []}, added={}
        )


def test_signed_note_exports_as_validated_fhir_bundle(client, drafted, physician, patient):
    from consults.notes.fhir import FhirExportError, note_to_fhir

    with pytest.raises(FhirExportError, match="signed"):
        note_to_fhir(note=drafted)
    note = clinical_notes.note_sign(note=drafted, physician=physician)
    response = login(client, physician).get(reverse("consults:note_fhir", args=[note.visit_id]))
    assert response.status_code == 200
    bundle = response.json()
    kinds = [entry["resource"]["resourceType"] for entry in bundle["entry"]]
    assert kinds[:4] == ["Composition", "Patient", "Practitioner", "Encounter"]
    assert "MedicationStatement" in kinds and "AllergyIntolerance" in kinds
    composition = bundle["entry"][0]["resource"]
    assert composition["status"] == "final" and len(composition["section"]) == 4
    from telehealth.models import AuditEvent

    assert AuditEvent.objects.filter(action="export", patient=patient).exists()
    assert (
        login(client, patient).get(reverse("consults:note_fhir", args=[note.visit_id])).status_code
        == 403
    )


def test_a_note_signed_before_the_review_of_systems_still_shows_its_symptom_sections(
    drafted, physician
):
    from consults.notes.fhir import note_to_fhir
    from consults.notes.selectors import note_sections_for_display

    sections = dict(drafted.content["sections"])
    sections.pop("review_of_systems", None)
    sections["pertinent_negatives"] = [
        {"text": "Denies chest pain", "evidence": [0], "needs_review": False}
    ]
    drafted.content = {**drafted.content, "sections": sections}
    drafted.save(update_fields=["content"])
    note = clinical_notes.note_sign(note=drafted, physician=physician)
    shown = {s["key"]: s for s in note_sections_for_display(note=note)}
    assert shown["pertinent_negatives"]["title"] == "Pertinent negatives"
    assert [i["text"] for i in shown["pertinent_negatives"]["items"]] == ["Denies chest pain"]
    subjective = note_to_fhir(note=note)["entry"][0]["resource"]["section"][0]
    assert "Pertinent negatives: Denies chest pain" in subjective["text"]["div"]


def test_invalid_bundle_is_refused():
    from consults.notes.fhir import FhirExportError, validate_bundle

    with pytest.raises(FhirExportError):
        # A Composition without its required type, date, author and title.
        validate_bundle(
            {
                "resourceType": "Bundle",
                "type": "document",
                "entry": [
                    {
                        "fullUrl": "urn:uuid:1",
                        "resource": {"resourceType": "Composition", "status": "final"},
                    }
                ],
            }
        )


@pytest.mark.worker
@pytest.mark.slow
def test_hang_up_drafts_the_note_in_a_real_worker(celery_worker_process, patient, physician):
    from tests.workers import wait_for

    visit = _transcribed_visit(patient, physician)  # ends the visit with the transcript complete
    note = wait_for(
        lambda: ClinicalNote.objects.filter(visit=visit, status=ClinicalNote.Status.DRAFT).first(),
        timeout=240,
    )
    assert any("penicillin" in a["text"].lower() for a in note.content["sections"]["allergies"])
    assert note.revisions.get().kind == "drafted"
