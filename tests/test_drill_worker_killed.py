"""Fault drill on the production broker, RabbitMQ: the whole worker SIGKILLed while it holds a
live chunk, an upload (mid-way: its first window stored), a photo and a note draft.

RabbitMQ puts a consumer's unacknowledged messages back in their queue as soon as its
connection drops, so a worker started afterwards redoes each job at once, not after a
visibility timeout. Each must be redone once (no line stored twice, the upload resumed at its
second window, one analysis, one note version) within 60 s of the new worker being ready;
polled with a deadline of 120 s. A second drill closes a live worker's connection from the
broker's side mid-task (a RabbitMQ restart, a network cut): the work is redone once, quietly.
The figures are printed: ``pytest <this file> -s``.

Needs ``DRILL_AMQP_URL`` (a RabbitMQ the drill may add a vhost to; .ci/run sets it in its
PostgreSQL + Redis pass); skipped without it.
"""

import time

import pytest

from consults.models import (
    AudioChunk,
    ChunkStatus,
    ClinicalNote,
    NoteRevision,
    Recording,
    Speaker,
    TranscriptSegment,
)
from consults.room import services as visit_services
from consults.transcripts import services as transcription
from tests.test_drills_worker import (
    CHUNK,
    SKIN_PHOTOS,
    consult,
    finished_chunk,
    two_window_recording,
)
from tests.workers import kill_worker, start_worker, stop_worker, tasks_sent_to, wait_for
from triage.models import Photo, PhotoAnalysis, PhotoKind
from triage.photos import services as photo_services

pytestmark = [pytest.mark.worker, pytest.mark.slow]

# What the issue asks: each job redone within this long of a healthy worker being available.
REDONE_WITHIN_S = 60
DEADLINE_S = 120
# The live chunk starts this late in the consult, and the upload's second window after it:
# the drill's transcriber holds both, while the upload's first window runs and is stored.
HOLD_FROM_S = 20


def drill_env(vhost, calls, **more: str) -> dict[str, str]:
    return {
        "CELERY_BROKER_URL": vhost.url(),
        "SPEECH_MODEL": "tiny.en",
        "SPEECH_BACKEND": "tests.workers.HoldingTranscriber",
        "NOTES_BACKEND": "tests.workers.HoldingDrafter",
        "VISION_SKIN_BACKEND": "tests.workers.CountingSkinClassifier",
        "DRILL_CALLS": str(calls),
        "DRILL_HOLD_FROM_S": str(HOLD_FROM_S),
        **more,
    }


def call_counts(calls) -> dict[str, int]:
    """Runs per kind: held speech, speech before the hold (upload window 0), photo, note."""
    counts = {"speech": 0, "speech-early": 0, "photo": 0, "note": 0}
    for line in calls.read_text().split() if calls.exists() else []:
        kind = line.split(":")[0] if ":" in line else "photo"
        counts[kind] += 1
    return counts


def test_worker_killed_holding_chunk_upload_photo_and_note_each_redone_once_on_rabbitmq(
    transactional_db, private_vhost, tmp_path, patient, other_patient, physician, other_physician
):
    visit = consult(patient, physician)
    other_physician.serves_on_demand = True
    other_physician.save(update_fields=["serves_on_demand"])
    ended = consult(other_patient, other_physician, purposes=("recording", "ai_notes"))
    calls = tmp_path / "calls"
    env = drill_env(private_vhost, calls)
    with tasks_sent_to(private_vhost.url()):
        first = start_worker(
            tmp_path / "first.log",
            purge=False,
            concurrency=4,
            extra_env={**env, "DRILL_HOLD_S": "300"},
        )
        try:
            chunk = transcription.chunk_receive(
                visit=visit, user=patient, index=0, start_ms=60_000, data=CHUNK
            ).chunk
            upload = transcription.recording_upload(
                visit=visit,
                physician=physician,
                data=two_window_recording(),
                speaker=Speaker.PATIENT,
            ).chunks.get()
            (photo,), _ = photo_services.photos_submit(
                visit=visit,
                uploader=patient,
                kind=PhotoKind.SKIN,
                body_site="upper back",
                files=[("mole.jpg", SKIN_PHOTOS[0].read_bytes())],
            )
            # The call ends with nothing recorded: its transcript is complete, the note drafts.
            visit_services.visit_end(visit=ended, actor=other_physician)
            held = {"speech": 2, "speech-early": 1, "photo": 1, "note": 1}
            wait_for(lambda: call_counts(calls) == held, timeout=DEADLINE_S, interval=0.1)
            assert AudioChunk.objects.get(pk=upload.pk).windows_done == 1
            wait_for(lambda: private_vhost.messages("ml") == (0, 4), timeout=15)
            assert private_vhost.queue_type("ml") == "quorum"
        finally:
            killed_at = time.monotonic()
            kill_worker(first)
        # The dead worker's connection closed: RabbitMQ has put all four back already.
        wait_for(lambda: private_vhost.ready("ml") == 4, timeout=10, interval=0.02)
        requeued_s = time.monotonic() - killed_at
        assert not finished_chunk(chunk.pk) and not finished_chunk(upload.pk)
        assert Photo.objects.get(pk=photo.pk).status == Photo.Status.QUEUED
        assert ClinicalNote.objects.get(visit=ended).status == ClinicalNote.Status.DRAFTING

        second_log = tmp_path / "second.log"
        second = start_worker(second_log, purge=False, concurrency=4, extra_env=env)
        ready = time.monotonic()
        done_checks = {
            "chunk": lambda: finished_chunk(chunk.pk),
            "upload window": lambda: finished_chunk(upload.pk),
            "photo": lambda: Photo.objects.filter(
                pk=photo.pk, status=Photo.Status.ANALYSED
            ).exists(),
            "note draft": lambda: ClinicalNote.objects.filter(
                visit=ended, status=ClinicalNote.Status.DRAFT
            ).exists(),
        }
        redone: dict[str, float] = {}
        try:

            def all_redone() -> bool:
                for kind, check in done_checks.items():
                    if kind not in redone and check():
                        redone[kind] = round(time.monotonic() - ready, 1)
                return len(redone) == len(done_checks)

            wait_for(all_redone, timeout=DEADLINE_S, interval=0.1)
            wait_for(lambda: private_vhost.messages("ml") == (0, 0), timeout=30)
        finally:
            stop_worker(second)

    log_text = second_log.read_text()
    print(
        f"\ndrill 5 (whole worker SIGKILLed holding four ml tasks, RabbitMQ): requeued "
        f"{requeued_s:.2f} s after the kill; redone, seconds after the new worker was ready: "
        f"{redone}; runs {call_counts(calls)}"
    )
    assert all(s <= REDONE_WITHIN_S for s in redone.values()), redone
    # Redone once each: the killed run and the finished one.
    assert call_counts(calls) == {"speech": 4, "speech-early": 1, "photo": 2, "note": 2}, log_text
    for job in (chunk, upload):
        job = AudioChunk.objects.get(pk=job.pk)
        assert (job.status, job.attempts) == (ChunkStatus.DONE, 2), (job.status, log_text[-3000:])
        lines = TranscriptSegment.objects.filter(chunk=job)
        assert lines.count() == lines.values("start_s").distinct().count() >= 1
    # The upload resumed at its second window: one line per window, each stored once.
    starts = sorted(
        TranscriptSegment.objects.filter(chunk=upload).values_list("start_s", flat=True)
    )
    assert len(starts) == 2 and starts[0] < 10 and starts[1] > 25, starts
    assert Recording.objects.get(pk=upload.recording_id).progress == 100
    assert PhotoAnalysis.objects.filter(photo=photo).count() == 1
    note = ClinicalNote.objects.get(visit=ended)
    assert note.version == 1 and NoteRevision.objects.filter(note=note).count() == 1


def test_connection_dropped_mid_photo_analysis_is_redone_once_without_a_traceback(
    transactional_db, private_vhost, tmp_path, patient, physician
):
    # A RabbitMQ restart or a network cut: the worker lives on, its connection does not.
    # RabbitMQ requeues the message at once; the worker cancels the run it can no longer
    # acknowledge, reconnects, and analyses the photo again: once.
    visit = consult(patient, physician, purposes=("ai_photos",))
    calls = tmp_path / "calls"
    log = tmp_path / "worker.log"
    with tasks_sent_to(private_vhost.url()):
        worker = start_worker(
            log, purge=False, extra_env={**drill_env(private_vhost, calls), "DRILL_HOLD_S": "5"}
        )
        try:
            (photo,), _ = photo_services.photos_submit(
                visit=visit,
                uploader=patient,
                kind=PhotoKind.SKIN,
                body_site="left shin",
                files=[("mole.jpg", SKIN_PHOTOS[1].read_bytes())],
            )
            wait_for(lambda: call_counts(calls)["photo"] == 1, timeout=DEADLINE_S, interval=0.05)
            dropped = time.monotonic()
            assert private_vhost.drop_connections() >= 1
            wait_for(
                lambda: Photo.objects.filter(pk=photo.pk, status=Photo.Status.ANALYSED).exists(),
                timeout=DEADLINE_S,
            )
            redone_s = time.monotonic() - dropped
            wait_for(lambda: private_vhost.messages("ml") == (0, 0), timeout=30)
        finally:
            stop_worker(worker)

    log_text = log.read_text()
    print(f"\ndrill 6 (RabbitMQ dropped the worker's connection): analysed {redone_s:.1f} s later")
    assert call_counts(calls)["photo"] == 2, log_text[-3000:]
    assert PhotoAnalysis.objects.filter(photo=photo).count() == 1
    assert "Connection to broker lost" in log_text and "Traceback" not in log_text, log_text
