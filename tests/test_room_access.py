"""Who may stay on a socket: access is checked at connect and again while the call runs."""

import socket
import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import override_settings
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from consults import selectors
from consults.booking import services
from consults.models import RoomPresence
from telehealth.asgi import application
from telehealth.consumers import connect_limiter, frame_limiter
from telehealth.models import User
from tests.asgi_servers import server_env, session_for, start_servers, stop_servers
from tests.factories import admitted_visit

CLOSE_FORBIDDEN = 4403
CLOSE_SECOND_FACTOR = 4401
CLOSE_TOO_MANY = 4429


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    yield
    # A drained bucket must not leak into the next test's user.
    frame_limiter.clear()
    connect_limiter.clear()


async def join(visit_id, user):
    communicator = WebsocketCommunicator(
        application, f"/ws/consults/{visit_id}/", headers=[(b"origin", b"http://localhost")]
    )
    communicator.scope["user"] = user
    connected, code = await communicator.connect()
    return communicator, connected, code


async def join_with_session(path, session_key):
    """A socket signed in the way a browser is: by its session cookie."""
    communicator = WebsocketCommunicator(
        application,
        path,
        headers=[
            (b"origin", b"http://localhost"),
            (b"cookie", f"sessionid={session_key}".encode()),
        ],
    )
    connected, code = await communicator.connect()
    return communicator, connected, code


async def closed_with(communicator, timeout: float = 1) -> int | None:
    """The close code once the server closes the socket; other frames are skipped."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            output = await communicator.receive_output(timeout=left)
        except TimeoutError:
            return None
        if output["type"] == "websocket.close":
            return output.get("code")
    return None


# --- Reassigned, ended or deactivated: cut off during the call ----------------------------------


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_reassigned_physician_is_cut_off_within_a_second(
    patient, physician, other_physician, admin_user
):
    visit = await sync_to_async(admitted_visit)(patient, physician)
    doctor, ok, _ = await join(visit.pk, physician)
    assert ok
    pat, ok, _ = await join(visit.pk, patient)
    assert ok
    await doctor.receive_json_from()
    await pat.receive_json_from()
    await sync_to_async(services.visit_reassign)(
        visit=visit, actor=admin_user, physician=other_physician
    )
    assert await closed_with(doctor, timeout=1) == CLOSE_FORBIDDEN
    # The patient stays, and hears nothing meant for the physician's old socket.
    await pat.send_json_to({"type": "ping", "t": 1})
    assert (await pat.receive_json_from())["type"] == "pong"
    newcomer, ok, _ = await join(visit.pk, other_physician)
    assert ok
    await newcomer.disconnect()
    await pat.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_deactivated_physician_is_cut_off_by_the_periodic_recheck(patient, physician):
    visit = await sync_to_async(admitted_visit)(patient, physician)
    with override_settings(ROOM_ACCESS_RECHECK_S=0.2):
        doctor, ok, _ = await join(visit.pk, physician)
        assert ok
        await doctor.receive_json_from()
        # No service pushed anything: only the periodic re-check can notice.
        await sync_to_async(User.objects.filter(pk=physician.pk).update)(is_active=False)
        assert await closed_with(doctor, timeout=3) == CLOSE_FORBIDDEN


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_revoked_socket_leaves_presence(patient, physician, other_physician, admin_user):
    visit = await sync_to_async(admitted_visit)(patient, physician)
    doctor, _, _ = await join(visit.pk, physician)
    await doctor.receive_json_from()
    await sync_to_async(services.visit_reassign)(
        visit=visit, actor=admin_user, physician=other_physician
    )
    assert await closed_with(doctor) == CLOSE_FORBIDDEN
    await doctor.disconnect()
    assert not await sync_to_async(
        RoomPresence.objects.filter(user=physician, left_at__isnull=True).exists
    )()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_reassigned_physician_loses_the_visit_page_socket(
    patient, physician, other_physician, admin_user, slots
):
    visit = await sync_to_async(services.visit_book)(
        patient=patient, physician=physician, start=slots[0], reason="Rash"
    )
    communicator = WebsocketCommunicator(
        application, f"/ws/visits/{visit.pk}/", headers=[(b"origin", b"http://localhost")]
    )
    communicator.scope["user"] = physician
    assert (await communicator.connect())[0]
    await sync_to_async(services.visit_reassign)(
        visit=visit, actor=admin_user, physician=other_physician
    )
    assert await closed_with(communicator, timeout=1) == CLOSE_FORBIDDEN


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@override_settings(ROOM_ACCESS_RECHECK_S=0.2)
async def test_signing_out_elsewhere_closes_the_room_socket(patient, physician):
    from django.contrib.sessions.models import Session

    visit = await sync_to_async(admitted_visit)(patient, physician)
    session = await sync_to_async(session_for)(patient)
    pat, connected, _ = await join_with_session(f"/ws/consults/{visit.pk}/", session)
    assert connected
    await pat.receive_json_from()
    await sync_to_async(Session.objects.filter(session_key=session).delete)()  # signed out
    assert await closed_with(pat, timeout=3) == CLOSE_FORBIDDEN


# --- The second factor ------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@override_settings(STAFF_TWO_FACTOR_REQUIRED=True)
async def test_physician_without_second_factor_cannot_open_any_socket(patient, physician):
    visit = await sync_to_async(admitted_visit)(patient, physician)
    session = await sync_to_async(session_for)(physician)
    for path in (f"/ws/consults/{visit.pk}/", "/ws/queue/", f"/ws/visits/{visit.pk}/"):
        _c, connected, code = await join_with_session(path, session)
        assert not connected and code == CLOSE_SECOND_FACTOR, path
    # The patient is never asked.
    pat, connected, _ = await join_with_session(
        f"/ws/consults/{visit.pk}/", await sync_to_async(session_for)(patient)
    )
    assert connected
    await pat.disconnect()


def _verified_session(user) -> str:
    from django.contrib.sessions.backends.db import SessionStore

    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    key = session_for(user)
    store = SessionStore(session_key=key)
    store[DEVICE_ID_SESSION_KEY] = device.persistent_id
    store.save()
    return key


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@override_settings(STAFF_TWO_FACTOR_REQUIRED=True)
async def test_physician_past_the_second_factor_joins_the_room(patient, physician):
    visit = await sync_to_async(admitted_visit)(patient, physician)
    session = await sync_to_async(_verified_session)(physician)
    doctor, connected, _ = await join_with_session(f"/ws/consults/{visit.pk}/", session)
    assert connected
    assert (await doctor.receive_json_from())["type"] == "welcome"
    await doctor.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@override_settings(STAFF_TWO_FACTOR_REQUIRED=True)
async def test_unconfirmed_device_in_the_session_does_not_count(patient, physician):
    visit = await sync_to_async(admitted_visit)(patient, physician)
    session = await sync_to_async(_verified_session)(physician)
    await sync_to_async(TOTPDevice.objects.filter(user=physician).update)(confirmed=False)
    _c, connected, code = await join_with_session(f"/ws/consults/{visit.pk}/", session)
    assert not connected and code == CLOSE_SECOND_FACTOR


# --- Rate limits ------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@override_settings(SOCKET_FRAME_RATE=5, SOCKET_FRAME_BURST=10)
async def test_a_flood_of_frames_is_closed_with_too_many(patient, physician):
    visit = await sync_to_async(admitted_visit)(patient, physician)
    doctor, _, _ = await join(visit.pk, physician)
    pat, _, _ = await join(visit.pk, patient)
    await doctor.receive_json_from()
    await pat.receive_json_from()
    for n in range(50):
        await pat.send_json_to({"type": "ping", "t": n})
    assert await closed_with(pat, timeout=2) == CLOSE_TOO_MANY
    await doctor.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@override_settings(SOCKET_CONNECTS_PER_MINUTE=3)
async def test_too_many_connects_are_refused_with_too_many(patient, physician):
    visit = await sync_to_async(admitted_visit)(patient, physician)
    for _ in range(3):
        pat, connected, _ = await join(visit.pk, patient)
        assert connected
        await pat.disconnect()
    _c, connected, code = await join(visit.pk, patient)
    assert not connected and code == CLOSE_TOO_MANY


# --- Presence without a clean disconnect ----------------------------------------------------


def _drop_right_after_handshake(port: int, session: str, visit_id: int) -> None:
    """Send the upgrade request and reset the connection without reading the answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    request = (
        f"GET /ws/consults/{visit_id}/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Origin: http://127.0.0.1:{port}\r\nCookie: sessionid={session}\r\n\r\n"
    )
    sock.sendall(request.encode())
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


@pytest.mark.django_db(transaction=True)
def test_dropped_handshake_leaves_no_presence_after_the_ttl(patient, physician, tmp_path):
    visit = admitted_visit(patient, physician)
    env = {**server_env(None), "ROOM_PRESENCE_TTL": "2"}
    servers = start_servers(1, env, log_dir=tmp_path)
    try:
        session = session_for(patient)
        _drop_right_after_handshake(servers[0].port, session, visit.pk)
        deadline = time.monotonic() + 20
        while not RoomPresence.objects.filter(visit=visit).exists():
            assert time.monotonic() < deadline, "the socket never reached the room"
            time.sleep(0.05)
        with override_settings(ROOM_PRESENCE_TTL=2):
            while selectors.room_roles_present(visit=visit):
                assert time.monotonic() < deadline, servers[0].log()
                time.sleep(0.1)
    finally:
        stop_servers(servers)


def test_sockets_that_connect_together_do_not_recheck_together():
    from consults.room.consumers import recheck_waits

    every = 20.0
    firsts = []
    for _ in range(200):
        waits = recheck_waits(every)
        firsts.append(next(waits))
        later = [next(waits) for _ in range(5)]
        assert all(0.8 * every <= wait <= every for wait in later)  # presence stays fresh
    assert all(0.1 * every <= wait <= every for wait in firsts)
    # 200 sockets opened at once spread their first re-check over most of the period.
    assert max(firsts) - min(firsts) > 0.6 * every
