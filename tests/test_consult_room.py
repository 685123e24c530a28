import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.urls import reverse

from consults import selectors
from consults.booking import services as booking_services
from consults.models import ConsentPurpose, RoomPresence, VisitStatus
from consults.realtime import room_patient_group, room_staff_group
from consults.room import services as room_services
from telehealth.asgi import application
from tests.test_permissions import login


def _admitted(patient, physician):
    visit = booking_services.visit_join_on_demand(patient=patient, reason="Rash")
    return room_services.visit_admit(visit=visit, physician=physician)


@pytest.fixture
def in_consult(patient, physician):
    return _admitted(patient, physician)


async def join(visit_id, user):
    communicator = WebsocketCommunicator(
        application, f"/ws/consults/{visit_id}/", headers=[(b"origin", b"http://localhost")]
    )
    communicator.scope["user"] = user
    connected, code = await communicator.connect()
    return communicator, connected, code


# --- Lobby and admission --------------------------------------------------------------------


def test_admit_assigns_on_demand_visit_to_admitting_physician(patient, physician):
    visit = _admitted(patient, physician)
    assert visit.status == VisitStatus.IN_CONSULT and visit.physician == physician
    assert visit.started_at is not None


def test_physician_cannot_admit_patient_waiting_for_someone_else(
    patient, physician, other_physician, slots
):
    visit = booking_services.visit_book(
        patient=patient, physician=physician, start=slots[0], reason="x"
    )
    visit.status = VisitStatus.CHECKED_IN
    visit.save()
    with pytest.raises(booking_services.BookingError, match="another physician"):
        room_services.visit_admit(visit=visit, physician=other_physician)


def test_cannot_admit_a_patient_who_is_not_waiting(patient, physician, slots):
    visit = booking_services.visit_book(
        patient=patient, physician=physician, start=slots[0], reason="x"
    )
    with pytest.raises(booking_services.BookingError, match="not waiting"):
        room_services.visit_admit(visit=visit, physician=physician)


def test_nobody_enters_the_room_before_admission(client, patient):
    visit = booking_services.visit_join_on_demand(patient=patient, reason="x")
    response = login(client, patient).get(reverse("consults:room", args=[visit.pk]))
    assert response.status_code == 404


def test_end_records_times_and_closes_the_room(client, physician, in_consult):
    response = login(client, physician).post(reverse("consults:end", args=[in_consult.pk]))
    assert response.status_code == 302
    in_consult.refresh_from_db()
    assert in_consult.status == VisitStatus.COMPLETED
    assert in_consult.ended_at >= in_consult.started_at


def test_patient_cannot_end_the_visit(client, patient, in_consult):
    response = login(client, patient).post(reverse("consults:end", args=[in_consult.pk]))
    assert response.status_code == 403


def test_the_room_passes_the_consult_start_for_the_call_timer(client, physician, in_consult):
    response = login(client, physician).get(reverse("consults:room", args=[in_consult.pk]))
    started = int(in_consult.started_at.timestamp())
    assert f'data-started-at="{started}"' in response.content.decode()


def test_end_visit_asks_for_confirmation_in_a_dialog(client, physician, patient, in_consult):
    url = reverse("consults:room", args=[in_consult.pk])
    page = login(client, physician).get(url).content.decode()
    # The toolbar button only opens the dialog; the dialog's form ends the visit.
    assert 'id="btn-end" aria-haspopup="dialog"' in page
    dialog = page[page.index('<dialog id="end-dialog"') : page.index("</dialog>")]
    assert reverse("consults:end", args=[in_consult.pk]) in dialog
    assert "Yes, end the visit" in dialog and "Keep the call going" in dialog
    page = login(client, patient).get(url).content.decode()
    assert "end-dialog" not in page
    assert reverse("consults:leave", args=[in_consult.pk]) in page


def test_chat_and_transcript_are_logs_and_chat_items_have_ids(client, patient, in_consult):
    login(client, patient)
    page = client.get(reverse("consults:room", args=[in_consult.pk])).content.decode()
    assert 'id="chat-log" class="chat-log" role="log"' in page
    client.post(reverse("consults:chat", args=[in_consult.pk]), {"text": "hello"})
    message = in_consult.chat_messages.get()
    fragment = client.get(reverse("consults:chat", args=[in_consult.pk])).content.decode()
    assert f'id="chat-message-{message.pk}"' in fragment


# --- Leaving the call (patient) ---------------------------------------------------------------


def test_patient_leaving_keeps_the_visit_open_and_offers_to_rejoin(client, patient, in_consult):
    room_services.presence_join(visit=in_consult, user=patient, channel_name="patient-socket")
    login(client, patient)
    place_url = reverse("consults:visit_place", args=[in_consult.pk])
    assert "data-auto-join" in client.get(place_url).content.decode()

    response = client.post(reverse("consults:leave", args=[in_consult.pk]))
    assert response["Location"] == reverse("consults:visit_detail", args=[in_consult.pk])
    in_consult.refresh_from_db()
    assert in_consult.status == VisitStatus.IN_CONSULT
    assert not RoomPresence.objects.filter(visit=in_consult, left_at__isnull=True).exists()
    # The visit page says so and offers to rejoin, instead of sending them straight back in.
    for url in (place_url, reverse("consults:visit_detail", args=[in_consult.pk])):
        page = client.get(url).content.decode()
        assert "You left the call." in page and "data-auto-join" not in page
        assert reverse("consults:room", args=[in_consult.pk]) in page
    # Back in the room: the visit page would take them in again.
    room_services.presence_join(visit=in_consult, user=patient, channel_name="patient-socket-2")
    assert "data-auto-join" in client.get(place_url).content.decode()


def test_a_patient_not_yet_in_the_call_is_taken_in_not_told_they_left(patient, in_consult):
    assert not selectors.patient_left_call(visit=in_consult)


def test_physician_cannot_leave_the_call_only_end_it(client, physician, in_consult):
    response = login(client, physician).post(reverse("consults:leave", args=[in_consult.pk]))
    assert response.status_code == 403
    with pytest.raises(booking_services.BookingError, match="physician ends"):
        room_services.visit_leave(visit=in_consult, user=physician)


def test_leaving_after_the_visit_ended_goes_to_the_visit(client, patient, physician, in_consult):
    room_services.visit_end(visit=in_consult, actor=physician)
    response = login(client, patient).post(reverse("consults:leave", args=[in_consult.pk]))
    assert response["Location"] == reverse("consults:visit_detail", args=[in_consult.pk])


# --- Consent ----------------------------------------------------------------------------------


def test_consent_is_stored_per_purpose_and_can_be_withdrawn(client, patient, in_consult):
    login(client, patient)
    url = reverse("consults:consent", args=[in_consult.pk])
    client.post(url, {"recording": "yes", "ai_notes": "yes", "ai_photos": "no"})
    assert selectors.consent_given(visit=in_consult, purpose=ConsentPurpose.RECORDING)
    client.post(url, {"recording": "no", "ai_notes": "yes", "ai_photos": "no"})
    state = selectors.consent_state(visit=in_consult)
    assert state == {"recording": False, "ai_notes": True, "ai_photos": False}
    assert in_consult.consents.filter(purpose="recording").count() == 2
    assert in_consult.consents.first().version == room_services.CONSENT_VERSION


def test_consent_form_requires_an_answer_for_each_purpose(client, patient, in_consult):
    response = login(client, patient).post(
        reverse("consults:consent", args=[in_consult.pk]), {"recording": "maybe"}
    )
    assert response.status_code == 200 and b'class="error"' in response.content
    assert not in_consult.consents.exists()


def test_only_the_patient_gives_consent(physician, in_consult):
    with pytest.raises(booking_services.BookingError):
        room_services.consent_record(
            visit=in_consult, patient=physician, choices={"recording": True}
        )


# --- Signaling socket -------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_offer_and_candidates_reach_only_the_other_side(patient, physician):
    visit = await sync_to_async(_admitted)(patient, physician)
    doctor, ok, _ = await join(visit.pk, physician)
    assert ok
    welcome = await doctor.receive_json_from()
    assert welcome["type"] == "welcome" and welcome["peers"] == []
    pat, ok, _ = await join(visit.pk, patient)
    assert (await pat.receive_json_from())["peers"] == ["physician"]
    await pat.send_json_to({"type": "hello", "session": "p1"})
    assert await doctor.receive_json_from() == {
        "type": "peer.joined",
        "role": "patient",
        "session": "p1",
    }
    offer = {"type": "signal", "session": "d1", "description": {"type": "offer", "sdp": "v=0"}}
    await doctor.send_json_to(offer)
    assert await pat.receive_json_from() == {**offer, "from": "physician"}
    candidate = {
        "candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
        "usernameFragment": "abc",
    }
    await pat.send_json_to({"type": "signal", "session": "p1", "candidate": candidate})
    relayed = await doctor.receive_json_from()
    assert relayed["candidate"] == candidate and relayed["from"] == "patient"
    assert await pat.receive_nothing(timeout=0.2)  # nothing echoed back to the sender
    await pat.disconnect()
    assert await doctor.receive_json_from() == {"type": "peer.left", "role": "patient"}
    await doctor.disconnect()
    assert not await sync_to_async(
        RoomPresence.objects.filter(visit=visit, left_at__isnull=True).exists
    )()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_relay_is_published_to_the_other_side_only(patient, physician):
    """A room is one group per side: what the patient sends is published to the staff group
    alone, so the patient's own process never receives (and drops) it back from the layer."""
    visit = await sync_to_async(_admitted)(patient, physician)
    layer = get_channel_layer()
    listeners = {}
    for side, group in (
        ("patient", room_patient_group(visit.pk)),
        ("staff", room_staff_group(visit.pk)),
    ):
        listeners[side] = await layer.new_channel()
        await layer.group_add(group, listeners[side])
    pat, ok, _ = await join(visit.pk, patient)
    assert ok and (await pat.receive_json_from())["type"] == "welcome"
    await pat.send_json_to({"type": "signal", "session": "p1", "candidate": None})
    heard = await asyncio.wait_for(layer.receive(listeners["staff"]), 5)
    assert heard["type"] == "room.relay" and heard["payload"]["from"] == "patient"
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await layer.receive(listeners["patient"])
    await pat.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_room_refuses_other_patient_other_physician_and_admin(
    patient, other_patient, physician, other_physician, admin_user
):
    visit = await sync_to_async(_admitted)(patient, physician)
    for intruder in (other_patient, other_physician, admin_user):
        _c, connected, code = await join(visit.pk, intruder)
        assert not connected and code == 4403


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_room_refuses_waiting_and_ended_visits(patient, physician):
    waiting = await sync_to_async(booking_services.visit_join_on_demand)(
        patient=patient, reason="x"
    )
    _c, connected, _ = await join(waiting.pk, patient)
    assert not connected
    admitted = await sync_to_async(room_services.visit_admit)(visit=waiting, physician=physician)
    await sync_to_async(room_services.visit_end)(visit=admitted, actor=physician)
    for user in (patient, physician):
        _c, connected, _ = await join(waiting.pk, user)
        assert not connected


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_ending_the_visit_tells_both_sides_and_closes(patient, physician):
    visit = await sync_to_async(_admitted)(patient, physician)
    doctor, _, _ = await join(visit.pk, physician)
    pat, _, _ = await join(visit.pk, patient)
    await doctor.receive_json_from()
    await pat.receive_json_from()
    await sync_to_async(room_services.visit_end)(visit=visit, actor=physician)
    for side in (doctor, pat):
        message = await side.receive_json_from()
        while message["type"] != "ended":
            message = await side.receive_json_from()
        assert (await side.receive_output())["type"] == "websocket.close"


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "frame",
    [
        {"type": "steal_records"},
        {"type": "signal", "session": "s"},
        {"type": "signal", "session": "s", "description": {"type": "pwn", "sdp": ""}},
        {"type": "signal", "session": "s", "description": {"type": "offer", "sdp": "x" * 200_000}},
        {"type": "signal", "session": "s", "candidate": {"candidate": 5}},
        {"type": "signal", "session": "s", "candidate": None, "description": None},
        {"type": "media", "audio": "yes"},
        {"type": "hello", "session": "x" * 65},
        {"type": "ping", "t": "now", "extra": 1},
        [1, 2, 3],
        "just a string",
    ],
)
async def test_malformed_frames_get_an_error_frame_and_are_not_relayed(patient, physician, frame):
    visit = await sync_to_async(_admitted)(patient, physician)
    doctor, _, _ = await join(visit.pk, physician)
    pat, _, _ = await join(visit.pk, patient)
    await doctor.receive_json_from()
    await pat.receive_json_from()
    await pat.send_json_to(frame)
    reply = await pat.receive_json_from()
    assert reply["type"] == "error"
    assert await doctor.receive_nothing(timeout=0.2)
    await pat.send_to(text_data="{broken")
    assert (await pat.receive_json_from())["type"] == "error"
    await pat.disconnect()
    await doctor.disconnect()


# --- Chat -------------------------------------------------------------------------------------


def test_chat_message_with_photo_attachment_is_private(
    client, patient, physician, other_patient, in_consult
):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 100)).save(buffer, "PNG")
    buffer.name = "rash.png"
    buffer.seek(0)
    response = login(client, patient).post(
        reverse("consults:chat", args=[in_consult.pk]), {"text": "Here", "attachment": buffer}
    )
    assert response.status_code == 201
    message = in_consult.chat_messages.get()
    assert message.attachment_type == "image/jpeg" and message.attachment_name == "rash.jpg"
    url = reverse("consults:chat_attachment", args=[in_consult.pk, message.pk])
    assert login(client, physician).get(url).status_code == 200
    assert login(client, other_patient).get(url).status_code == 404
    assert message.attachment_path not in url


@pytest.mark.parametrize(
    ("payload", "name"),
    [
        (b"MZ\x90\x00 not an image", "virus.exe"),
        (b"\x89PNG\r\n\x1a\ncorrupt", "x.png"),
        (b"", "empty.pdf"),
    ],
)
def test_chat_rejects_bad_attachments_with_clear_error(client, patient, in_consult, payload, name):
    import io

    upload = io.BytesIO(payload)
    upload.name = name
    response = login(client, patient).post(
        reverse("consults:chat", args=[in_consult.pk]), {"text": "", "attachment": upload}
    )
    assert response.status_code == 400 and response.json()["error"]
    assert not in_consult.chat_messages.exists()
