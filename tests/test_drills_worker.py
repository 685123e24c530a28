"""Fault drills: a real Celery worker and a private Redis broker, killed and restarted mid-work.

Each drill fails if its guarantee breaks (docs/deploy.md, "Broker durability and lost work"):

1. the pool child dies mid-transcription: the message is redelivered, the chunk is done once;
2. the whole worker dies mid photo analysis: a worker started afterwards gets the message once
   the visibility timeout has passed, and there is one analysis;
3. Redis restarts with work queued and no worker running: (a) with its append-only file nothing
   is lost; (b) without it the messages are gone and the lost-work sweeper re-sends them.

Every drill has its own redis-server (tests/services.py), never the machine's. The figures
(submitted, completed, lost, duplicated) are printed: ``pytest tests/test_drills_worker.py -s``.
"""

import io
import wave
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from consults.booking import services as booking_services
from consults.models import AudioChunk, ChunkStatus, Recording, Speaker, TranscriptSegment
from consults.room import services as room_services
from consults.transcripts import services as transcription
from telehealth import tasks as core_tasks
from telehealth.lost_work import lost_work_resend
from tests.services import PrivateRedis
from tests.workers import (
    kill_pids,
    kill_worker,
    reset_connections,
    start_worker,
    stop_worker,
    tasks_sent_to,
    wait_for,
    worker_children,
)
from triage.models import Photo, PhotoAnalysis, PhotoKind, UrgencyChange
from triage.photos import services as photo_services

pytestmark = [pytest.mark.worker, pytest.mark.slow]

FIXTURES = Path(__file__).parent / "fixtures"
CHUNK = (FIXTURES / "audio" / "chest_pain.webm").read_bytes()
SKIN_PHOTOS = [FIXTURES / "vision" / name for name in ("ham_mel.jpg", "ham_nv.jpg", "ham_bcc.jpg")]
# Short for a drill, yet longer than the photo analysis takes, as it must be in production.
VISIBILITY_TIMEOUT = 6
UNFINISHED = (ChunkStatus.RECEIVED, ChunkStatus.TRANSCRIBING)


def two_window_recording() -> bytes:
    """The chest-pain sentence at 0 s and again at 30 s: an upload of two 30-second windows.

    Silence between (the voice-activity filter skips it): the same words over and over in one
    window make Whisper fall back again and again and drop them as a hallucination.
    """
    with wave.open(str(FIXTURES / "audio" / "chest_pain.wav")) as source:
        params, speech = source.getparams(), source.readframes(source.getnframes())
    silence = b"\0" * (params.sampwidth * params.framerate * 30 - len(speech))
    out = io.BytesIO()
    with wave.open(out, "wb") as target:
        target.setparams(params)
        target.writeframes(speech + silence + speech)
    return out.getvalue()


def worker_env(redis: PrivateRedis, **more: str) -> dict[str, str]:
    """The worker's environment: the drill's broker (and channel layer), the smallest models."""
    return {
        "REDIS_URL": redis.url(),
        "SPEECH_MODEL": "tiny.en",
        "VISION_SKIN_BACKEND": "tests.workers.CountingSkinClassifier",
        **more,
    }


def consult(patient, physician, purposes=("recording", "ai_notes", "ai_photos")):
    visit = room_services.visit_admit(
        visit=booking_services.visit_join_on_demand(patient=patient, reason="Chest pain, mole"),
        physician=physician,
    )
    room_services.consent_record(
        visit=visit, patient=patient, choices=dict.fromkeys(purposes, True)
    )
    return visit


def finished_chunk(chunk_id: int) -> AudioChunk | None:
    return AudioChunk.objects.filter(pk=chunk_id).exclude(status__in=UNFINISHED).first()


def held_messages(redis: PrivateRedis) -> int:
    """Task messages the broker still holds anywhere: waiting in a queue or taken by a worker."""
    return redis.waiting("ml") + redis.waiting("default") + redis.unacked()


def test_pool_child_killed_mid_transcription_is_redelivered_and_done_once(
    transactional_db, private_redis, tmp_path, patient, physician
):
    visit = consult(patient, physician, purposes=("recording", "ai_notes"))
    log = tmp_path / "worker.log"
    with tasks_sent_to(private_redis.url()):
        worker = start_worker(log, purge=False, extra_env=worker_env(private_redis))
        try:
            recording = transcription.recording_upload(
                visit=visit,
                physician=physician,
                data=two_window_recording(),
                speaker=Speaker.PATIENT,
            )
            chunk = recording.chunks.get()
            # Mid-transcription: the first 30-second window is done, the second is not.
            wait_for(
                lambda: 0 < Recording.objects.get(pk=recording.pk).progress < 100,
                timeout=180,
                interval=0.05,
            )
            before = AudioChunk.objects.get(pk=chunk.pk)
            children = worker_children(worker)
            kill_pids(children)
            assert before.status == ChunkStatus.TRANSCRIBING and before.attempts == 1
            done = wait_for(lambda: finished_chunk(chunk.pk), timeout=180)
            wait_for(lambda: held_messages(private_redis) == 0, timeout=30)
        finally:
            stop_worker(worker)

    log_text = log.read_text()
    assert len(children) == 1 and "WorkerLostError" in log_text, log_text[-3000:]
    # Redelivered once and done once: one more claim, the lines of exactly one run.
    assert done.status == ChunkStatus.DONE and done.attempts == 2, log_text[-3000:]
    recording.refresh_from_db()
    assert recording.status == Recording.Status.DONE and recording.progress == 100
    lines = list(TranscriptSegment.objects.filter(visit=visit).order_by("start_s"))
    # One line per window, each stored once.
    starts = [line.start_s for line in lines]
    assert len(starts) == 2 and starts[0] < 10 and starts[1] > 25, starts
    assert "penicillin" in " ".join(line.text for line in lines).lower()
    print(
        f"\ndrill 1 (pool child SIGKILLed mid-transcription): submitted=1 completed=1 lost=0 "
        f"duplicated=0 deliveries={done.attempts} lines={len(lines)}"
    )


def test_worker_killed_mid_photo_analysis_is_redelivered_to_a_new_worker_once(
    transactional_db, private_redis, tmp_path, patient, physician
):
    visit = consult(patient, physician, purposes=("ai_photos",))
    calls = tmp_path / "classifier-calls"
    env = worker_env(
        private_redis,
        CELERY_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT),
        DRILL_CALLS=str(calls),
    )
    with tasks_sent_to(private_redis.url(), visibility_timeout=VISIBILITY_TIMEOUT):
        first = start_worker(
            tmp_path / "first.log", purge=False, extra_env={**env, "DRILL_HOLD_S": "300"}
        )
        try:
            (photo,), _ = photo_services.photos_submit(
                visit=visit,
                uploader=patient,
                kind=PhotoKind.SKIN,
                body_site="upper back",
                files=[("mole.jpg", SKIN_PHOTOS[0].read_bytes())],
            )
            wait_for(lambda: calls.exists() and calls.read_text(), timeout=120, interval=0.05)
        finally:
            kill_worker(first)
        # The dead worker took the message and never acknowledged it: the broker still holds
        # it, and nothing was written.
        assert held_messages(private_redis) == 1
        assert Photo.objects.get(pk=photo.pk).status == Photo.Status.QUEUED
        assert not PhotoAnalysis.objects.filter(photo=photo).exists()

        # A worker restores such a message when it starts, once the visibility timeout passed.
        wait_for(
            lambda: private_redis.unacked_expired(VISIBILITY_TIMEOUT),
            timeout=VISIBILITY_TIMEOUT + 10,
        )
        second_log = tmp_path / "second.log"
        second = start_worker(second_log, purge=False, extra_env=env)
        try:
            wait_for(
                lambda: Photo.objects.filter(pk=photo.pk, status=Photo.Status.ANALYSED).exists(),
                timeout=120,
            )
            wait_for(lambda: held_messages(private_redis) == 0, timeout=30)
        finally:
            stop_worker(second)

    runs = calls.read_text().split()
    assert len(runs) == 2 and runs[0] != runs[1], second_log.read_text()[-3000:]
    assert PhotoAnalysis.objects.filter(photo=photo).count() == 1
    assert UrgencyChange.objects.filter(visit=visit, source=UrgencyChange.Source.PHOTO).count() == 1
    print(
        "\ndrill 2 (whole worker SIGKILLed mid photo analysis): submitted=1 completed=1 lost=0 "
        f"duplicated=0 runs={len(runs)} (the killed one and the redelivered one)"
    )


# --- Drill 3: Redis restarts while work is queued and no worker runs --------------------------


def submit_work(visit, patient) -> tuple[list[int], list[int]]:
    """Two live audio chunks and three skin photos: five ml tasks. Returns their row ids."""
    chunks = [
        transcription.chunk_receive(
            visit=visit, user=patient, index=index, start_ms=index * 10_000, data=CHUNK
        ).chunk.pk
        for index in range(2)
    ]
    photos, rejected = photo_services.photos_submit(
        visit=visit,
        uploader=patient,
        kind=PhotoKind.SKIN,
        body_site="left forearm",
        files=[(path.name, path.read_bytes()) for path in SKIN_PHOTOS],
    )
    assert not rejected
    return chunks, [photo.pk for photo in photos]


def completed(chunks: list[int], photos: list[int]) -> int:
    done = AudioChunk.objects.filter(pk__in=chunks, status=ChunkStatus.DONE).count()
    return done + Photo.objects.filter(pk__in=photos, status=Photo.Status.ANALYSED).count()


def figures(chunks: list[int], photos: list[int], calls: Path) -> dict[str, int]:
    """Jobs submitted, completed, lost and run more than once (chunk claims, classifier calls)."""
    submitted = len(chunks) + len(photos)
    done = completed(chunks, photos)
    claims = sum(AudioChunk.objects.filter(pk__in=chunks).values_list("attempts", flat=True))
    runs = len(calls.read_text().split()) if calls.exists() else 0
    stored_twice = (
        TranscriptSegment.objects.filter(chunk_id__in=chunks).count()
        - TranscriptSegment.objects.filter(chunk_id__in=chunks)
        .values("chunk_id", "start_s")
        .distinct()
        .count()
    )
    return {
        "submitted": submitted,
        "completed": done,
        "lost": submitted - done,
        "duplicated": (claims - len(chunks)) + (runs - len(photos)) + stored_twice,
    }


def run_until_done(redis: PrivateRedis, log: Path, env: dict, chunks, photos, *, sweep=False):
    worker = start_worker(log, purge=False, extra_env=env)
    try:
        if sweep:
            # What beat sends every five minutes, sent now.
            core_tasks.lost_work_resend.delay()
        wait_for(lambda: completed(chunks, photos) == len(chunks) + len(photos), timeout=180)
        # Nothing left that could still run a second time.
        wait_for(lambda: held_messages(redis) == 0, timeout=30)
    finally:
        stop_worker(worker)


def test_persistent_redis_restart_keeps_queued_work(
    transactional_db, private_redis, tmp_path, patient, physician
):
    visit = consult(patient, physician)
    calls = tmp_path / "classifier-calls"
    with tasks_sent_to(private_redis.url()):
        chunks, photos = submit_work(visit, patient)
        assert private_redis.waiting("ml") == 5
        private_redis.restart(kill=True)  # a crash: the append-only file is all it has
        reset_connections()
        assert private_redis.waiting("ml") == 5
        # The sweeper sees messages still waiting and re-sends nothing, however stale the work.
        later = timezone.now() + timedelta(hours=1)
        assert lost_work_resend(now=later) == {"chunks": [], "notes": [], "photos": []}
        run_until_done(
            private_redis,
            tmp_path / "worker.log",
            worker_env(private_redis, DRILL_CALLS=str(calls)),
            chunks,
            photos,
        )
    result = figures(chunks, photos, calls)
    print(f"\ndrill 3a (persistent Redis SIGKILLed and restarted): {result}")
    assert result == {"submitted": 5, "completed": 5, "lost": 0, "duplicated": 0}


def test_forgetful_redis_restart_loses_messages_and_the_sweeper_resends_them(
    transactional_db, forgetful_redis, tmp_path, patient, physician
):
    visit = consult(patient, physician)
    calls = tmp_path / "classifier-calls"
    with tasks_sent_to(forgetful_redis.url()):
        chunks, photos = submit_work(visit, patient)
        assert forgetful_redis.waiting("ml") == 5
        forgetful_redis.restart(kill=True)
        reset_connections()
        assert held_messages(forgetful_redis) == 0, "the messages are gone"
        run_until_done(
            forgetful_redis,
            tmp_path / "worker.log",
            worker_env(forgetful_redis, DRILL_CALLS=str(calls), LOST_WORK_AFTER="0"),
            chunks,
            photos,
            sweep=True,
        )
    result = figures(chunks, photos, calls)
    print(f"\ndrill 3b (Redis without persistence restarted, sweeper re-sends): {result}")
    assert result == {"submitted": 5, "completed": 5, "lost": 0, "duplicated": 0}
