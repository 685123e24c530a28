"""GET /healthz: can this process reach what it needs? For load balancers and orchestrators.

Open to anyone, so it says only "ok" or the name of the error class: never a message, host,
path or credential, and no health data. ``HealthzMiddleware`` answers it before sessions and
authentication, so a probe carrying a session cookie gets the same JSON while the database is
down. The log says when a check starts failing and when it recovers, once each, not per probe.
"""

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from asgiref.sync import async_to_sync
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.urls import resolve
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


# Each check's last outcome in this process: None (ok) or the error class name.
_last_error: dict[str, str | None] = {}
_last_error_lock = threading.Lock()


def _note_outcome(name: str, error: str | None) -> None:
    """Log a check's change of state, once: failing (with the error class), or ok again.

    Never the exception's message or traceback: driver messages carry hosts and user names,
    and a load balancer probing every few seconds would repeat them all day.
    """
    with _last_error_lock:
        before = _last_error.get(name)
        _last_error[name] = error
    if error == before:
        return
    if error is None:
        log.info("health check %s ok again", name)
    else:
        log.warning("health check %s failing: %s", name, error)


def _run(name: str, check: Callable[[], None]) -> dict:
    try:
        check()
    except Exception as error:  # any failure means "not healthy", never a 500
        _note_outcome(name, type(error).__name__)
        return {"ok": False, "error": type(error).__name__}
    _note_outcome(name, None)
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
    response = JsonResponse(body, status=200 if healthy else 503)
    # Django logs every 4xx/5xx response ("Service Unavailable: /healthz"): per probe, it would
    # bury the one line per change of state above.
    response._has_been_logged = True
    return response


class HealthzMiddleware:
    """Answer ``/healthz`` before the session, authentication and outage middlewares run.

    The probe needs none of them, and with the database down a session cookie would otherwise
    turn its JSON into the HTML outage page. Placed after the security-header middlewares.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if request.path_info == "/healthz":
            request.resolver_match = resolve(request.path_info)  # the access log's route name
            return healthz(request)
        return self.get_response(request)
