"""GET /healthz: 200 when the database, broker and channel layer answer, a clean 503 otherwise."""

import asyncio
import logging
import threading
from unittest import mock

import pytest
from channels.layers import get_channel_layer
from django.db import OperationalError
from django.db.backends.utils import CursorWrapper
from django.db.utils import ConnectionHandler
from kombu import Connection

from telehealth import health
from telehealth.celery import app as celery_app

BROKEN_DATABASE = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "telehealth",
        "USER": "clinic",
        "PASSWORD": "hunter2-db-password",
        "HOST": "127.0.0.1",
        "PORT": "1",  # nothing listens there: refused at once
        "OPTIONS": {"connect_timeout": 2},
    }
}


def test_healthy_system_answers_200_with_every_check_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"] == {
        "database": {"ok": True},
        "broker": {"ok": True},
        "channel_layer": {"ok": True},
    }
    assert set(body["models"]) == {"speech", "vision_skin"}


def test_broken_database_url_gives_a_clean_503_without_details(client):
    with mock.patch("telehealth.health.connections", ConnectionHandler(BROKEN_DATABASE)):
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == {"ok": False, "error": "OperationalError"}
    assert body["checks"]["broker"]["ok"] and body["checks"]["channel_layer"]["ok"]
    for secret in (b"hunter2", b"127.0.0.1", b"clinic", b"5432"):
        assert secret not in response.content


def test_unreachable_broker_gives_503_without_the_broker_url(client):
    def broken(**kwargs):
        return Connection("redis://:hunter2-redis@127.0.0.1:1/0", connect_timeout=1)

    with mock.patch.object(celery_app, "connection_for_write", broken):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["ok"] is False
    assert b"hunter2" not in response.content and b"redis://" not in response.content


def test_missing_channel_layer_gives_503(client, settings):
    settings.CHANNEL_LAYERS = {}
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["channel_layer"] == {"ok": False, "error": "KeyError"}


def test_probe_passes_while_a_socket_is_receiving_on_the_shared_layer(client):
    # Consumers on the server's loop are always receiving on the shared layer; the probe must
    # pass meanwhile (channels_redis' key-based layer refused a second loop's receive()).
    layer = get_channel_layer()
    loop = asyncio.new_event_loop()
    channel = loop.run_until_complete(layer.new_channel())
    pending = loop.create_task(layer.receive(channel))
    thread = threading.Thread(target=loop.run_until_complete, args=(pending,), daemon=True)
    thread.start()
    # Once the loop runs a later callback, the receive() has started and is waiting.
    asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(timeout=10)
    try:
        response = client.get("/healthz")
        assert response.status_code == 200, response.content
    finally:
        asyncio.run_coroutine_threadsafe(layer.send(channel, {"type": "done"}), loop)
        thread.join(timeout=10)
        loop.close()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"SPEECH_BACKEND": "", "VISION_SKIN_BACKEND": ""}, ("not configured", "not configured")),
        ({"SPEECH_MODEL": "base", "VISION_SKIN_MODEL": ""}, ("configured", "configured")),
        ({"SPEECH_MODEL": "{missing}", "VISION_SKIN_MODEL": "{present}"}, ("missing", "present")),
    ],
)
def test_model_readiness_is_reported_but_never_fails_the_probe(
    client, settings, tmp_path, overrides, expected
):
    present = tmp_path / "skin.onnx"
    present.write_bytes(b"onnx")
    paths = {"missing": str(tmp_path / "nope" / "model.bin"), "present": str(present)}
    for name, value in overrides.items():
        setattr(settings, name, value.format(**paths))
    response = client.get("/healthz")
    assert response.status_code == 200
    models = response.json()["models"]
    assert (models["speech"], models["vision_skin"]) == expected
    assert str(tmp_path).encode() not in response.content


def test_healthz_needs_no_login_and_accepts_only_get(client):
    assert client.get("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405


@pytest.fixture(autouse=True)
def _fresh_health_state():
    health._last_error.clear()
    yield
    health._last_error.clear()


def database_down():
    """Every query fails the way a dropped PostgreSQL does, with a message naming the server."""
    error = OperationalError('connection to server at "db.internal" failed: password hunter2')
    return mock.patch.object(CursorWrapper, "execute", side_effect=error)


def test_healthz_answers_json_with_a_session_cookie_while_the_database_is_down(client, patient):
    client.force_login(patient)
    with database_down():
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["checks"]["database"] == {"ok": False, "error": "OperationalError"}
    assert b"hunter2" not in response.content and b"db.internal" not in response.content
    # Signed in all along: the probe never touched the session.
    assert client.get("/healthz").status_code == 200
    assert "_auth_user_id" in client.session


def test_health_logs_one_line_per_change_of_state_without_driver_messages(client, caplog):
    caplog.set_level(logging.INFO)
    with database_down():
        for _ in range(3):
            assert client.get("/healthz").status_code == 503
    for _ in range(2):
        assert client.get("/healthz").status_code == 200
    lines = [
        (r.name, r.getMessage())
        for r in caplog.records
        if r.name in ("telehealth.health", "django.request")
    ]
    assert lines == [
        ("telehealth.health", "health check database failing: OperationalError"),
        ("telehealth.health", "health check database ok again"),
    ]
    assert not any(r.exc_info for r in caplog.records)
    assert "hunter2" not in caplog.text and "db.internal" not in caplog.text
