"""End to end: a live chunk goes through HTTP, a real Celery worker and the real tiny.en model."""

import time
from pathlib import Path

import pytest
from django.urls import reverse

from consults.booking import services as booking_services
from consults.models import AudioChunk, ChunkStatus, TranscriptSegment
from consults.room import services as room_services
from consults.transcripts import selectors as transcript_selectors
from tests.test_permissions import login
from tests.test_transcription import CORRUPT_WAV, post_chunk
from tests.workers import start_worker, stop_worker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow]

CHUNK = (Path(__file__).parent / "fixtures" / "audio" / "chest_pain.webm").read_bytes()


@pytest.fixture
def tiny_worker(transactional_db, tmp_path):
    """A real worker on the default and ml queues, transcribing with the smallest model."""
    log = tmp_path / "worker.log"
    process = start_worker(log, extra_env={"SPEECH_MODEL": "tiny.en"})
    yield log
    stop_worker(process)


def _finished(chunk_id: int) -> AudioChunk | None:
    chunk = AudioChunk.objects.get(pk=chunk_id)
    return chunk if chunk.status not in (ChunkStatus.RECEIVED, ChunkStatus.TRANSCRIBING) else None


def test_live_chunk_is_transcribed_by_a_worker_and_raises_a_red_flag(
    client, patient, physician, tiny_worker
):
    visit = room_services.visit_admit(
        visit=booking_services.visit_join_on_demand(patient=patient, reason="Cough"),
        physician=physician,
    )
    room_services.consent_record(
        visit=visit, patient=patient, choices={"recording": True, "ai_notes": True}
    )
    login(client, patient)

    sent = time.monotonic()
    assert post_chunk(client, visit, index=0, start_ms=20_000, data=CHUNK).status_code == 201
    assert post_chunk(client, visit, index=1, start_ms=25_000, data=CORRUPT_WAV).status_code == 201
    good = AudioChunk.objects.get(index=0)
    done = wait_for(lambda: _finished(good.pk), timeout=240, interval=0.25)
    latency = time.monotonic() - sent  # includes the worker's one-off model load
    assert done.status == ChunkStatus.DONE, tiny_worker.read_text()[-3000:]
    text = " ".join(TranscriptSegment.objects.values_list("text", flat=True)).lower()
    assert "penicillin" in text and "chest pain" in text
    first = TranscriptSegment.objects.order_by("start_s").first()
    assert first.speaker == "patient" and 19.9 <= first.start_s < 26

    # The red-flag phrase raised the visit's urgency through triage (just after the segments).
    def raised():
        visit.refresh_from_db()
        return visit.urgency == "very_urgent"

    wait_for(raised, timeout=30)
    assert "chest pain" in visit.urgency_reason.lower()

    # The corrupt chunk failed alone, with its reason, and was not retried.
    bad = wait_for(lambda: _finished(AudioChunk.objects.get(index=1).pk), timeout=60)
    assert bad.status == ChunkStatus.FAILED and bad.failure_reason and bad.attempts == 1

    # A chunk still in flight at hang-up finishes; then the transcript is complete.
    assert post_chunk(client, visit, index=2, start_ms=30_000, data=CHUNK).status_code == 201
    room_services.visit_end(visit=visit, actor=physician)
    ended = time.monotonic()
    visit.refresh_from_db()
    wait_for(
        lambda: transcript_selectors.transcript_status(visit=visit)["state"] == "complete",
        timeout=120,
    )
    hang_up = time.monotonic() - ended
    assert TranscriptSegment.objects.filter(chunk__index=2).exists()

    page = login(client, physician).get(reverse("consults:transcript", args=[visit.pk]))
    assert b"penicillin" in page.content and b"complete" in page.content
    print(f"\nupload -> segment (cold worker): {latency:.1f}s; hang-up -> complete: {hang_up:.1f}s")
