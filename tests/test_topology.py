"""Two ASGI processes, one Redis: what a patient and a physician on different machines rely on.

Each room's physician is served by one uvicorn process and the patient by the other, so every
relay must cross processes through the Redis channel layer (a private redis-server per test).
"""

import asyncio

import pytest

from consults.booking import services
from consults.models import VisitStatus
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
from tests.factories import PatientFactory, PhysicianFactory, admitted_visit

STEP_S = 10  # generous per message: the machine running CI may be busy


@pytest.fixture
def two_servers(private_redis, transactional_db, tmp_path):
    servers = start_servers(2, server_env(private_redis.url()), log_dir=tmp_path)
    yield servers
    stop_servers(servers)


OFFER_SDP = "v=0\r\na=offer-from-physician\r\n"
ANSWER_SDP = "v=0\r\na=answer-from-patient\r\n"


def test_offer_answer_and_queue_events_cross_between_two_processes(
    two_servers, patient, other_patient, physician
):
    one, two = two_servers
    visit = admitted_visit(patient, physician)
    bystander = admitted_visit(PatientFactory(), PhysicianFactory(serves_on_demand=True))
    waiting = services.visit_join_on_demand(patient=other_patient, reason="Cough")
    sessions = {
        user.pk: session_for(user)
        for user in (patient, other_patient, physician, bystander.patient)
    }

    async def scenario():
        doctor = await open_consult(one, visit.pk, sessions[physician.pk])
        patient_ws = await open_consult(two, visit.pk, sessions[patient.pk])
        other_room = await open_consult(two, bystander.pk, sessions[bystander.patient_id])
        # The physician serves the on-demand queue: their queue page listens on process two.
        queue = await open_socket(two, "/ws/queue/", sessions[physician.pk])

        await doctor.send(signal_frame("dr", "offer", OFFER_SDP))
        received = await recv_type(patient_ws, "signal", STEP_S)
        assert received["from"] == "physician"
        assert received["description"] == {"type": "offer", "sdp": OFFER_SDP}

        await patient_ws.send(signal_frame("pt", "answer", ANSWER_SDP))
        received = await recv_type(doctor, "signal", STEP_S)
        assert received["from"] == "patient"
        assert received["description"] == {"type": "answer", "sdp": ANSWER_SDP}

        # The waiting patient cancels through process one; the queue socket on two hears it.
        reply = await asyncio.to_thread(
            http, one, "POST", f"/visits/{waiting.pk}/cancel/", session=sessions[other_patient.pk]
        )
        assert reply.status == 302, reply.body[:500]
        event = await recv_type(queue, "queue.changed", STEP_S)
        assert event["event"] == "cancelled"

        # Groups keep rooms apart across processes: the other room on process two heard nothing.
        with pytest.raises(TimeoutError):
            await recv_type(other_room, "signal", 0.5)
        for ws in (doctor, patient_ws, other_room, queue):
            await ws.close()

    asyncio.run(scenario())
    waiting.refresh_from_db()
    assert waiting.status == VisitStatus.CANCELLED
