"""Fault drill: Redis goes down and comes back while a worker runs and chunks keep arriving.

The worker and this process (the web side) keep running throughout, as in production. A chunk
that arrives while Redis is down is saved and answered 201 (its task message cannot be sent);
the worker reconnects by itself once Redis is back and takes new work; the lost-work sweeper
re-sends the chunk whose message was never sent. Nothing is lost, nothing is transcribed twice.
"""

import io
from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from consults.models import AudioChunk, ChunkStatus, TranscriptSegment
from telehealth.lost_work import lost_work_resend
from tests.test_drills_worker import CHUNK, consult, finished_chunk, worker_env
from tests.test_permissions import login
from tests.workers import start_worker, stop_worker, tasks_sent_to, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def post_chunk(client, visit, index: int):
    audio = io.BytesIO(CHUNK)
    audio.name = f"chunk-{index}.webm"
    return client.post(
        reverse("consults:audio_chunk", args=[visit.pk]),
        {"audio": audio, "index": index, "start_ms": index * 5000},
    )


def _all_returned(log_text: str) -> bool:
    """Every task the worker received has succeeded (Celery's own log lines)."""
    received = log_text.count("] received")
    return received > 0 and received == log_text.count("] succeeded in")


def test_chunks_survive_redis_going_down_under_a_running_worker(
    transactional_db, private_redis, tmp_path, client, patient, physician
):
    visit = consult(patient, physician, purposes=("recording", "ai_notes"))
    login(client, patient)
    log = tmp_path / "worker.log"
    with tasks_sent_to(private_redis.url()):
        worker = start_worker(log, purge=False, extra_env=worker_env(private_redis))
        try:
            assert post_chunk(client, visit, 0).status_code == 201
            first = AudioChunk.objects.get(index=0)
            assert wait_for(lambda: finished_chunk(first.pk), timeout=120).status == "done"
            # The chunk is done in the database before Celery writes the task's result to
            # Redis: stop Redis only once every task received so far has returned, or that
            # write fails (a traceback in the log that this drill is not about).
            wait_for(lambda: _all_returned(log.read_text()), timeout=60)

            private_redis.stop(kill=True)
            # The web side answers and keeps the audio, though the task cannot be sent.
            response = post_chunk(client, visit, 1)
            assert response.status_code == 201, response.content
            during = AudioChunk.objects.get(index=1)
            assert during.status == ChunkStatus.RECEIVED

            private_redis.start()  # same port, its append-only file intact
            # No reset anywhere: this process's producer and the worker reconnect by themselves.
            assert post_chunk(client, visit, 2).status_code == 201
            after = AudioChunk.objects.get(index=2)
            assert wait_for(lambda: finished_chunk(after.pk), timeout=120).status == "done"
            assert AudioChunk.objects.get(pk=during.pk).status == ChunkStatus.RECEIVED

            # The sweeper's next run (LOST_WORK_AFTER later) re-sends the one never sent.
            later = timezone.now() + timedelta(seconds=settings.LOST_WORK_AFTER + 60)
            assert lost_work_resend(now=later)["chunks"] == [during.pk]
            assert wait_for(lambda: finished_chunk(during.pk), timeout=120).status == "done"
        finally:
            stop_worker(worker)

    chunks = AudioChunk.objects.order_by("index")
    lines = {c.index: TranscriptSegment.objects.filter(chunk=c).count() for c in chunks}
    attempts = {c.index: c.attempts for c in chunks}
    print(f"\ndrill 4 (Redis down under a running worker): lines per chunk {lines}, {attempts=}")
    assert all(c.status == ChunkStatus.DONE for c in chunks)
    assert attempts == {0: 1, 1: 1, 2: 1}  # each transcribed once
    assert set(lines.values()) == {lines[0]} and lines[0] >= 1  # same audio, same lines, once
    log_text = log.read_text()
    assert "Connection to broker lost" in log_text
    # One line per cause: no traceback, no line per reconnect attempt (telehealth/celery.py).
    assert "Traceback" not in log_text and log_text.count("Cannot connect to") <= 1, log_text
