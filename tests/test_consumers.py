import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from consults.booking import services
from telehealth.asgi import application

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def connect(path, user):
    communicator = WebsocketCommunicator(
        application, path, headers=[(b"origin", b"http://localhost")]
    )
    communicator.scope["user"] = user
    connected, code = await communicator.connect()
    return communicator, connected, code


@pytest.fixture
def anon():
    from django.contrib.auth.models import AnonymousUser

    return AnonymousUser()


async def test_physician_queue_hears_new_check_in(physician, patient):
    communicator, connected, _ = await connect("/ws/queue/", physician)
    assert connected
    await sync_to_async(services.visit_join_on_demand)(patient=patient, reason="Fever")
    message = await communicator.receive_json_from(timeout=3)
    # Only the event travels over the socket; no health data.
    assert message["type"] == "queue.changed"
    assert message["event"] in {"urgency", "checked_in"}
    assert "Fever" not in str(message)
    await communicator.disconnect()


async def test_patient_cannot_join_staff_queue(patient):
    _communicator, connected, code = await connect("/ws/queue/", patient)
    assert not connected and code == 4403


async def test_anonymous_cannot_join_any_socket(anon):
    _c, connected, _ = await connect("/ws/queue/", anon)
    assert not connected


async def test_patient_cannot_follow_someone_elses_visit(patient, other_patient):
    visit = await sync_to_async(services.visit_join_on_demand)(patient=patient, reason="x")
    _c, connected, code = await connect(f"/ws/visits/{visit.pk}/", other_patient)
    assert not connected and code == 4403


async def test_patient_hears_queue_change_ahead_of_them(patient, other_patient, physician):
    visit = await sync_to_async(services.visit_join_on_demand)(patient=patient, reason="x")
    communicator, connected, _ = await connect(f"/ws/visits/{visit.pk}/", patient)
    assert connected
    await sync_to_async(services.visit_join_on_demand)(
        patient=other_patient, reason="y", red_flags=["breathing"]
    )
    message = await communicator.receive_json_from(timeout=3)
    assert message["type"] == "queue.changed"
    await communicator.disconnect()


async def test_ping_is_answered_and_unknown_messages_rejected(physician):
    communicator, connected, _ = await connect("/ws/queue/", physician)
    await communicator.send_json_to({"type": "ping", "t": 5})
    assert await communicator.receive_json_from() == {"type": "pong", "t": 5}
    await communicator.send_json_to({"type": "steal", "visit": 1})
    assert (await communicator.receive_json_from())["type"] == "error"
    await communicator.send_to(text_data="{not json")
    assert (await communicator.receive_json_from())["type"] == "error"
    await communicator.send_to(text_data="x" * 5000)
    assert (await communicator.receive_json_from())["type"] == "error"
    await communicator.disconnect()


def test_the_asgi_process_keeps_start_up_objects_out_of_full_collections():
    """What start-up built (Django, the app) is frozen: a full collection no longer walks it,
    which paused every socket of the process for 55-110 ms (docs/signaling.md)."""
    import gc

    assert application is not None
    assert gc.get_freeze_count() > 10_000
