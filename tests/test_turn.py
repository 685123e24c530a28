"""TURN for networks that block peer-to-peer: short-lived credentials that a real coturn accepts."""

import base64
import hashlib
import hmac

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from consults.room.ice import ice_servers_for, turn_credential
from telehealth.asgi import application
from tests.factories import admitted_visit
from tests.turn import allocate, start_turnserver


@pytest.fixture
def turnserver(tmp_path):
    server = start_turnserver(tmp_path)
    yield server
    server.stop()


def test_credential_is_coturns_rest_scheme():
    credential = turn_credential(secret="s3cret", user_id=42, ttl=600, now=1_000_000)
    assert credential["username"] == "1000600:42"
    digest = hmac.new(b"s3cret", b"1000600:42", hashlib.sha1).digest()
    assert credential["credential"] == base64.b64encode(digest).decode()


@override_settings(
    WEBRTC_ICE_SERVERS=[{"urls": "stun:stun.example.org:3478"}],
    TURN_URLS=["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"],
    TURN_SECRET="s3cret",  # noqa: S106 - a test value
    TURN_TTL=300,
)
def test_ice_servers_add_turn_with_a_credential_per_user():
    stun, turn = ice_servers_for(user_id=7)
    assert stun == {"urls": "stun:stun.example.org:3478"}
    assert turn["urls"] == [
        "turn:turn.example.org:3478?transport=udp",
        "turns:turn.example.org:5349",
    ]
    assert turn["username"].endswith(":7") and turn["credential"]
    assert ice_servers_for(user_id=8)[1]["credential"] != turn["credential"]


@override_settings(TURN_URLS=["turn:turn.example.org:3478"], TURN_SECRET="")
def test_no_turn_without_a_secret():
    assert ice_servers_for(user_id=7) == []


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@override_settings(TURN_URLS=["turn:turn.example.org:3478"], TURN_SECRET="s3cret")  # noqa: S106
async def test_the_welcome_frame_carries_the_turn_credential(patient, physician):
    visit = await sync_to_async(admitted_visit)(patient, physician)
    communicator = WebsocketCommunicator(
        application, f"/ws/consults/{visit.pk}/", headers=[(b"origin", b"http://localhost")]
    )
    communicator.scope["user"] = patient
    assert (await communicator.connect())[0]
    welcome = await communicator.receive_json_from()
    (turn,) = welcome["iceServers"]
    assert turn["username"].endswith(f":{patient.pk}")
    assert welcome["iceTransportPolicy"] == "all"
    await communicator.disconnect()


def test_real_coturn_grants_a_relay_for_the_minted_credential(turnserver):
    credential = turn_credential(secret=turnserver.secret, user_id=7, ttl=600)
    assert (
        allocate(
            turnserver.port, username=credential["username"], password=credential["credential"]
        )
        == 0
    )


def test_real_coturn_refuses_an_expired_or_forged_credential(turnserver):
    expired = turn_credential(secret=turnserver.secret, user_id=7, ttl=-60)
    assert (
        allocate(turnserver.port, username=expired["username"], password=expired["credential"])
        == 401
    )
    forged = turn_credential(secret="not-the-secret", user_id=7, ttl=600)  # noqa: S106
    assert (
        allocate(turnserver.port, username=forged["username"], password=forged["credential"]) == 401
    )
