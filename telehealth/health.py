"""GET /healthz: can this process reach what it needs? For load balancers and orchestrators.

Open to anyone, so it says only "ok" or the name of the error class: never a message, host,
path or credential, and no health data.
"""

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from asgiref.sync import async_to_sync
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from telehealth.celery import app as celery_app

log = logging.getLogger(__name__)

TIMEOUT_S = 2.0


def check_database() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_broker() -> None:
    with celery_app.connection_for_write(connect_timeout=TIMEOUT_S) as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, timeout=TIMEOUT_S)


async def _layer_round_trip() -> None:
    # This process's own layer: with the Redis pub/sub layer that is the subscriber connection
    # the sockets depend on, so the probe fails exactly when their relays would.
    layer = channel_layers[DEFAULT_CHANNEL_LAYER]
    channel = await layer.new_channel("healthz.")
    arrived = asyncio.get_running_loop().create_future()

    async def listen() -> None:
        while True:
            try:
                message = await layer.receive(channel)
            except Exception as error:
                if not arrived.done():
                    arrived.set_exception(error)
                raise
            if not arrived.done():
                arrived.set_result(message)

    listener = asyncio.ensure_future(listen())
    try:
        await layer.send(channel, {"type": "healthz.ping"})
        message = await arrived
    finally:
        # Channels tells a layer a channel is finished by cancelling its receive(): the pub/sub
        # layer then unsubscribes it, so probes leave nothing behind.
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
    if message.get("type") != "healthz.ping":
        raise RuntimeError("channel layer returned a different message")


def check_channel_layer() -> None:
    async def bounded() -> None:
        await asyncio.wait_for(_layer_round_trip(), TIMEOUT_S)

    async_to_sync(bounded)()


CRITICAL_CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "broker": check_broker,
    "channel_layer": check_channel_layer,
}


def _run(name: str, check: Callable[[], None]) -> dict:
    try:
        check()
    except Exception as error:  # any failure means "not healthy", never a 500
        # The log (operators only) gets the detail; the response gets the class name only.
        log.warning("health check %s failed", name, exc_info=True)
        return {"ok": False, "error": type(error).__name__}
    return {"ok": True}


def _model_status(backend: str, location: str) -> str:
    """``not configured``, ``configured`` (a named model the worker resolves), or file presence."""
    if not backend:
        return "not configured"
    if not location or ("/" not in location and not location.endswith((".onnx", ".bin"))):
        return "configured"
    return "present" if Path(location).exists() else "missing"


def model_readiness() -> dict:
    """Whether the ML models configured in settings are there; informational, never critical.

    Inference runs in ``ml`` workers, which may live on other machines, so a missing file here
    does not make this process unhealthy; nothing heavy (torch, onnxruntime) is imported.
    """
    return {
        "speech": _model_status(
            getattr(settings, "SPEECH_BACKEND", ""), getattr(settings, "SPEECH_MODEL", "")
        ),
        "vision_skin": _model_status(
            getattr(settings, "VISION_SKIN_BACKEND", ""), getattr(settings, "VISION_SKIN_MODEL", "")
        ),
    }


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database, broker and channel layer all answer; 503 otherwise."""
    checks = {name: _run(name, check) for name, check in CRITICAL_CHECKS.items()}
    healthy = all(result["ok"] for result in checks.values())
    body = {
        "status": "ok" if healthy else "unavailable",
        "checks": checks,
        "models": model_readiness(),
    }
    return JsonResponse(body, status=200 if healthy else 503)
