"""Redis dies mid-call and comes back empty: the platform must carry on by itself.

Two uvicorn processes share a private, non-persistent redis-server, which the drill SIGKILLs
(every key, subscription and group is gone) and starts again on the same port. The pub/sub
channel layer keeps each process's subscriptions in the process and resubscribes when its
connection comes back, so sockets that were open before the outage work again afterwards.
"""

import asyncio
import json
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from consults.booking import services
from tests.asgi_servers import (
    http,
    open_consult,
    open_socket,
    recv_type,
    server_env,
    session_for,
    signal_frame,
    start_servers,
    stop_servers,
)
from tests.factories import admitted_visit

OFFER_SDP = "v=0\r\na=offer-from-physician\r\n"
ANSWER_SDP = "v=0\r\na=answer-from-patient\r\n"
RECOVERY_S = 30  # the bound: redis-py retries with backoff capped at 1 s, plus a busy CI machine


@pytest.fixture
def two_servers(forgetful_redis, transactional_db, tmp_path):
    servers = start_servers(2, server_env(forgetful_redis.url()), log_dir=tmp_path)
    yield servers
    stop_servers(servers)


async def until(attempt, *, timeout: float):
    """Call ``attempt`` until it returns something truthy; its last error if the time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = await attempt()
            if result:
                return result
        except (OSError, InvalidStatus, TimeoutError, ConnectionClosed):
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"not recovered within {timeout}s")
        await asyncio.sleep(0.2)


def test_call_survives_a_redis_restart_that_loses_every_key(
    two_servers, forgetful_redis, patient, other_patient, physician
):
    one, two = two_servers
    visit = admitted_visit(patient, physician)
    waiting = services.visit_join_on_demand(patient=other_patient, reason="Cough")
    doctor_session, patient_session = session_for(physician), session_for(patient)
    waiting_session = session_for(other_patient)

    async def scenario():
        doctor = await open_consult(one, visit.pk, doctor_session)
        patient_ws = await open_consult(two, visit.pk, patient_session)
        queue = await open_socket(two, "/ws/queue/", doctor_session)
        # A live page's liveness ping: answered through the channel layer.
        pinger = await open_socket(one, "/ws/queue/", doctor_session)
        await pinger.send(json.dumps({"type": "ping", "t": 1}))
        assert (await recv_type(pinger, "pong", RECOVERY_S))["t"] == 1
        await doctor.send(signal_frame("dr", "offer", OFFER_SDP))
        await recv_type(patient_ws, "signal", RECOVERY_S)

        forgetful_redis.stop(kill=True)

        # While Redis is down: the probe says so, pages still render, and a socket that needs
        # the layer is closed with "try again later" (1013), which the pages reconnect after.
        health = await asyncio.to_thread(http, one, "GET", "/healthz")
        assert health.status == 503
        checks = health.json()["checks"]
        assert checks["database"]["ok"] is True
        assert checks["channel_layer"]["ok"] is False and checks["broker"]["ok"] is False
        page = await asyncio.to_thread(http, two, "GET", "/visits/", session=patient_session)
        assert page.status == 200
        await doctor.send(signal_frame("dr", "offer", OFFER_SDP))
        with pytest.raises(ConnectionClosed):
            await recv_type(doctor, "signal", RECOVERY_S)
        assert doctor.close_code == 1013
        # An idle page finds out too, at its next ping: live.js then shows "Reconnecting…".
        await pinger.send(json.dumps({"type": "ping", "t": 2}))
        with pytest.raises(ConnectionClosed):
            await recv_type(pinger, "pong", RECOVERY_S)
        assert pinger.close_code == 1013
        with pytest.raises(InvalidStatus):  # a new socket is refused, not left hanging
            await open_socket(one, "/ws/queue/", doctor_session)

        forgetful_redis.start()  # same port, empty

        # The physician's page reconnects; the patient's socket on process two never closed.
        new_doctor = await until(
            lambda: open_consult(one, visit.pk, doctor_session), timeout=RECOVERY_S
        )

        async def offer_crosses():
            await new_doctor.send(signal_frame("dr", "offer", OFFER_SDP))
            return await recv_type(patient_ws, "signal", 1)

        received = await until(offer_crosses, timeout=RECOVERY_S)
        assert received["description"] == {"type": "offer", "sdp": OFFER_SDP}
        await patient_ws.send(signal_frame("pt", "answer", ANSWER_SDP))
        received = await recv_type(new_doctor, "signal", RECOVERY_S)
        assert received["description"] == {"type": "answer", "sdp": ANSWER_SDP}

        # Queue groups were resubscribed too: an event raised on one reaches the old socket on two.
        reply = await asyncio.to_thread(
            http, one, "POST", f"/visits/{waiting.pk}/cancel/", session=waiting_session
        )
        assert reply.status == 302
        assert (await recv_type(queue, "queue.changed", RECOVERY_S))["event"] == "cancelled"

        for server in (one, two):

            async def healthy(server=server):
                return (await asyncio.to_thread(http, server, "GET", "/healthz")).status == 200

            await until(healthy, timeout=RECOVERY_S)
        for ws in (new_doctor, patient_ws, queue):
            await ws.close()

    asyncio.run(scenario())
