"""Nothing the AI produces reaches a patient before a physician has reviewed it.

Pages: the patient's visit page, its live fragment and photo list show no class, probability,
AI-derived urgency or its reason. Sockets: a patient's waiting socket hears only its own visit's
patient-safe events and "line moved"; a patient's consult-room socket never hears transcript,
red-flag or note events. After signing, the patient is told (live) that the summary is ready.
"""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.urls import reverse

from consults.booking import services as booking_services
from consults.models import ClinicalNote, ConsentPurpose
from consults.notes import services as clinical_notes
from consults.realtime import room_push
from consults.room import services as room_services
from telehealth.asgi import application
from tests.factories import PatientFactory, admitted_visit
from triage.models import Photo, PhotoAnalysis, PhotoConcern, UrgencyChange
from triage.realtime import queue_changed
from triage.services import visit_urgency_raise

AI_WORDS = ("melanoma", "97%", "0.97", "refer urgently", "very urgent", "photo triage")


def _analysed_melanoma(visit):
    """A photo the skin model called a probable melanoma, raising the visit's urgency."""
    concern = PhotoConcern.objects.create(patient=visit.patient, kind="skin", body_site="back")
    photo = Photo.objects.create(
        visit=visit,
        concern=concern,
        uploaded_by=visit.patient,
        file_path="photos/x.jpg",
        sha256="0",
        width=32,
        height=32,
        quality_score=0.9,
        status=Photo.Status.ANALYSED,
    )
    PhotoAnalysis.objects.create(
        photo=photo,
        model_version="m",
        can_assess=True,
        urgency="very_urgent",
        urgency_reason="Possible melanoma (probability 97%): refer urgently.",
        probabilities={"mel": 0.97, "nv": 0.03},
    )
    visit_urgency_raise(
        visit=visit,
        level="very_urgent",
        reason="Photo triage (back): Possible melanoma (probability 97%): refer urgently.",
        source=UrgencyChange.Source.PHOTO,
    )
    return photo


def _assert_no_model_output(html: str) -> None:
    text = html.lower()
    for word in AI_WORDS:
        assert word not in text, f"{word!r} reached the patient"


@pytest.mark.parametrize("status", ["checked_in", "in_consult", "completed"])
def test_patient_pages_carry_no_model_output_until_signed(client, patient, physician, status):
    visit = booking_services.visit_join_on_demand(patient=patient, reason="Mole on back")
    if status != "checked_in":
        visit = room_services.visit_admit(visit=visit, physician=physician)
    _analysed_melanoma(visit)
    if status == "completed":
        room_services.visit_end(visit=visit, actor=physician)
    client.force_login(patient)
    for name in ("consults:visit_detail", "consults:visit_place", "triage:photo_list"):
        response = client.get(reverse(name, args=[visit.pk]))
        assert response.status_code == 200
        _assert_no_model_output(response.content.decode())
    photos = client.get(reverse("triage:photo_list", args=[visit.pk])).content.decode()
    assert "your physician will review it" in photos


def test_staff_see_the_urgency_and_its_reason(client, patient, physician):
    visit = booking_services.visit_join_on_demand(patient=patient, reason="Mole on back")
    _analysed_melanoma(visit)
    client.force_login(physician)
    page = client.get(reverse("consults:visit_detail", args=[visit.pk])).content.decode()
    assert "Very urgent" in page and "Possible melanoma" in page


def test_completed_visit_links_the_summary_only_once_signed(client, patient, physician):
    visit = admitted_visit(patient, physician)
    room_services.visit_end(visit=visit, actor=physician)
    ClinicalNote.objects.create(visit=visit, status=ClinicalNote.Status.DRAFT, content={})
    client.force_login(patient)
    summary_url = reverse("consults:summary", args=[visit.pk])
    page = client.get(reverse("consults:visit_detail", args=[visit.pk])).content.decode()
    assert summary_url not in page
    assert "writing up the visit" in page
    note = ClinicalNote.objects.get(visit=visit)
    clinical_notes.note_sign(note=note, physician=physician)
    page = client.get(reverse("consults:visit_detail", args=[visit.pk])).content.decode()
    assert summary_url in page
    fragment = client.get(reverse("consults:visit_place", args=[visit.pk])).content.decode()
    assert summary_url in fragment and "summary is ready" in fragment


# --- Sockets ----------------------------------------------------------------------------------


async def _connect(path, user):
    communicator = WebsocketCommunicator(
        application, path, headers=[(b"origin", b"http://localhost")]
    )
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def _drain(communicator, quiet=0.5) -> list[dict]:
    """Every frame until the socket stays quiet for ``quiet`` seconds."""
    frames = []
    while not await communicator.receive_nothing(timeout=quiet):
        frames.append(await communicator.receive_json_from())
    return frames


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_waiting_socket_hears_no_ai_events_and_nothing_of_other_visits(
    patient, other_patient, physician
):
    mine = await sync_to_async(booking_services.visit_join_on_demand)(patient=patient, reason="a")
    theirs = await sync_to_async(booking_services.visit_join_on_demand)(
        patient=other_patient, reason="b"
    )
    patient_socket = await _connect(f"/ws/visits/{mine.pk}/", patient)
    staff_socket = await _connect(f"/ws/visits/{mine.pk}/", physician)
    for visit in (mine, theirs):
        for event in ("photos", "photo_analysed", "urgency"):
            await sync_to_async(queue_changed)(visit=visit, event=event)
    await sync_to_async(_analysed_melanoma)(theirs)
    patient_frames = await _drain(patient_socket)
    staff_frames = await _drain(staff_socket)
    heard = {frame.get("event") for frame in patient_frames}
    # Only a bare "line moved" (urgency reorders the line), never what moved it or whose.
    assert heard == {"line_moved"}
    assert all(set(frame) == {"type", "event"} for frame in patient_frames)
    assert {"photos", "photo_analysed", "urgency"} <= {f.get("event") for f in staff_frames}
    await patient_socket.disconnect()
    await staff_socket.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_patient_hears_admitted_and_summary_ready_on_their_own_visit(patient, physician):
    visit = await sync_to_async(booking_services.visit_join_on_demand)(patient=patient, reason="a")
    patient_socket = await _connect(f"/ws/visits/{visit.pk}/", patient)
    visit = await sync_to_async(room_services.visit_admit)(visit=visit, physician=physician)
    await sync_to_async(room_services.visit_end)(visit=visit, actor=physician)
    note = await sync_to_async(ClinicalNote.objects.create)(
        visit=visit, status=ClinicalNote.Status.DRAFT, content={}
    )
    await sync_to_async(clinical_notes.note_sign)(note=note, physician=physician)
    heard = [frame.get("event") for frame in await _drain(patient_socket)]
    assert "admitted" in heard and "ended" in heard and "summary_ready" in heard
    await patient_socket.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_room_pushes_of_ai_output_reach_the_physician_only(patient, physician):
    visit = await sync_to_async(admitted_visit)(patient, physician)
    patient_socket = await _connect(f"/ws/consults/{visit.pk}/", patient)
    doctor_socket = await _connect(f"/ws/consults/{visit.pk}/", physician)
    await _drain(patient_socket)
    await _drain(doctor_socket)
    for kind in ("transcript.updated", "alert", "note.drafted"):
        await sync_to_async(room_push)(visit_id=visit.pk, payload={"type": kind}, staff_only=True)
    await sync_to_async(room_push)(visit_id=visit.pk, payload={"type": "chat.new"})
    patient_heard = {frame["type"] for frame in await _drain(patient_socket)}
    doctor_heard = {frame["type"] for frame in await _drain(doctor_socket)}
    assert patient_heard == {"chat.new"}
    assert {"transcript.updated", "alert", "note.drafted", "chat.new"} <= doctor_heard
    await patient_socket.disconnect()
    await doctor_socket.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_red_flag_heard_in_the_call_is_not_pushed_to_the_patient(patient, physician):
    """The real path: a patient's transcribed line with a red flag raises urgency and alerts."""
    from consults.models import AudioChunk, Recording, TranscriptSegment
    from consults.transcripts import services as transcription

    visit = await sync_to_async(admitted_visit)(patient, physician)
    patient_socket = await _connect(f"/ws/consults/{visit.pk}/", patient)
    doctor_socket = await _connect(f"/ws/consults/{visit.pk}/", physician)
    await _drain(patient_socket)
    await _drain(doctor_socket)

    def transcribe_a_red_flag():
        recording = Recording.objects.create(visit=visit, speaker="patient", user=patient)
        chunk = AudioChunk.objects.create(
            recording=recording,
            index=0,
            start_s=0,
            path="a/x.webm",
            content_type="audio/webm",
            sha256="0",
            size=1,
        )
        row = TranscriptSegment.objects.create(
            chunk=chunk,
            visit=visit,
            speaker="patient",
            start_s=0,
            end_s=2,
            text="I have crushing chest pain and I can't breathe",
            avg_logprob=-0.1,
            no_speech_prob=0.0,
        )
        transcription._after_transcription(chunk=chunk, rows=[row])

    await sync_to_async(transcribe_a_red_flag)()
    patient_heard = {frame["type"] for frame in await _drain(patient_socket)}
    doctor_heard = {frame["type"] for frame in await _drain(doctor_socket)}
    assert "alert" in doctor_heard
    assert not patient_heard & {"alert", "transcript.updated"}
    await patient_socket.disconnect()
    await doctor_socket.disconnect()


# --- The physician's path ---------------------------------------------------------------------


def test_hang_up_lands_on_the_note_review_with_progress(client, patient, physician):
    visit = admitted_visit(patient, physician)
    client.force_login(physician)
    response = client.post(reverse("consults:end", args=[visit.pk]))
    assert response.status_code == 302
    assert response.url == reverse("consults:note", args=[visit.pk])
    page = client.get(response.url).content.decode()
    assert reverse("consults:note_progress", args=[visit.pk]) in page
    progress = client.get(reverse("consults:note_progress", args=[visit.pk])).content.decode()
    # No consent to AI notes was given in this visit: the physician is told, not left waiting.
    assert "did not consent" in progress


def test_progress_says_drafting_then_opens_the_draft(client, patient, physician):
    visit = admitted_visit(patient, physician)
    room_services.consent_record(
        visit=visit, patient=patient, choices={ConsentPurpose.AI_NOTES: True}
    )
    room_services.visit_end(visit=visit, actor=physician)
    clinical_notes.note_request(visit=visit)  # what the end's on_commit hook does
    client.force_login(physician)
    url = reverse("consults:note_progress", args=[visit.pk])
    note = ClinicalNote.objects.get(visit=visit)
    assert note.status == ClinicalNote.Status.DRAFTING
    assert "being written" in client.get(url).content.decode()
    ClinicalNote.objects.filter(pk=note.pk).update(status=ClinicalNote.Status.DRAFT)
    assert "data-auto-go" in client.get(url).content.decode()


def test_queue_lists_notes_to_sign_oldest_first_and_signing_offers_next(client, physician, patient):
    visits = []
    for name in ("First", "Second"):
        visit = admitted_visit(PatientFactory(first_name=name), physician)
        room_services.visit_end(visit=visit, actor=physician)
        ClinicalNote.objects.create(visit=visit, status=ClinicalNote.Status.DRAFT, content={})
        visits.append(visit)
    client.force_login(physician)
    queue = client.get(reverse("triage:queue")).content.decode()
    first = queue.index(reverse("consults:note", args=[visits[0].pk]))
    second = queue.index(reverse("consults:note", args=[visits[1].pk]))
    assert first < second
    response = client.post(reverse("consults:note_save", args=[visits[0].pk]), {"sign": "1"})
    page = client.get(response.url).content.decode()
    assert 'id="next-patient"' in page
    assert reverse("consults:note", args=[visits[1].pk]) in page
    partial = client.get(reverse("consults:notes_to_sign")).content.decode()
    assert reverse("consults:note", args=[visits[0].pk]) not in partial
    assert reverse("consults:note", args=[visits[1].pk]) in partial


def test_staff_visit_page_links_every_record(client, patient, physician):
    visit = admitted_visit(patient, physician)
    client.force_login(physician)
    page = client.get(reverse("consults:visit_detail", args=[visit.pk])).content.decode()
    for name in ("consults:transcript", "triage:photo_list", "consults:note"):
        assert reverse(name, args=[visit.pk]) in page


def test_staff_on_a_visit_in_consult_are_never_pulled_into_the_room(
    client, patient, physician, admin_user
):
    visit = admitted_visit(patient, physician)
    for user in (physician, admin_user):
        client.force_login(user)
        fragment = client.get(reverse("consults:visit_place", args=[visit.pk])).content.decode()
        assert "data-auto-join" not in fragment
        assert "In consult" in fragment
    client.force_login(patient)
    fragment = client.get(reverse("consults:visit_place", args=[visit.pk])).content.decode()
    assert "data-auto-join" in fragment
