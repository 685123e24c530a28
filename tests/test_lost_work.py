"""The lost-work sweeper: what it re-sends, what it leaves alone, and why re-sending is safe.

Their messages go to a private Redis (tests/services.py), read back from the queue itself.
The drills in tests/test_drills_worker.py run them against a real worker after a broker loss.
"""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from consults.booking import services as booking_services
from consults.booking import tasks as consult_tasks
from consults.models import (
    AudioChunk,
    ChunkStatus,
    ClinicalNote,
    Recording,
    Speaker,
    TranscriptSegment,
    Visit,
    VisitStatus,
)
from consults.notes import tasks as note_tasks
from consults.notes.services import note_request
from consults.room import services as room_services
from consults.speech.factory import clear_transcribers
from consults.speech.types import Segment
from consults.transcripts import services as transcription
from consults.transcripts import tasks as transcript_tasks
from telehealth.celery import app
from telehealth.lost_work import RESEND_WITHIN, lost_work_resend, queue_waiting
from telehealth.private_media import private_save
from telehealth.settings.base import filesystem_broker_options
from tests.test_transcription import wav_bytes
from tests.workers import tasks_sent_to
from triage.models import Photo, PhotoConcern, PhotoKind
from triage.photos import services as photo_services
from triage.photos import tasks as triage_tasks

NOW = timezone.now()
STALE = NOW - timedelta(seconds=settings.LOST_WORK_AFTER + 60)
FRESH = NOW - timedelta(seconds=settings.LOST_WORK_AFTER - 60)
# Claimed, but the broker's own redelivery (after the visibility timeout) is still due.
CLAIMED_RECENTLY = NOW - timedelta(
    seconds=settings.LOST_WORK_AFTER + settings.BROKER_VISIBILITY_TIMEOUT - 60
)
CLAIMED_LONG_AGO = NOW - timedelta(
    seconds=settings.LOST_WORK_AFTER + settings.BROKER_VISIBILITY_TIMEOUT + 60
)
TOO_OLD = NOW - RESEND_WITHIN - timedelta(minutes=1)


@pytest.fixture
def broker(transactional_db, private_redis):
    """Tasks go to a private Redis; autocommit, so on-commit sends happen at once as in a worker."""
    with tasks_sent_to(private_redis.url()):
        yield private_redis


@pytest.fixture
def visit(patient, physician):
    visit = room_services.visit_admit(
        visit=booking_services.visit_join_on_demand(patient=patient, reason="Rash"),
        physician=physician,
    )
    room_services.consent_record(
        visit=visit,
        patient=patient,
        choices={"recording": True, "ai_notes": True, "ai_photos": True},
    )
    return visit


def make_chunk(visit, *, status, created_at, index, transcribed_at=None) -> AudioChunk:
    recording, _ = Recording.objects.get_or_create(
        visit=visit, speaker=Speaker.PATIENT, source=Recording.Source.LIVE, user=visit.patient
    )
    chunk = AudioChunk.objects.create(
        recording=recording,
        index=index,
        start_s=index * 5.0,
        path=f"audio/none-{index}.webm",
        content_type="audio/webm",
        sha256="0" * 64,
        size=1,
        status=status,
    )
    # auto_now_add ignores a given value: set the time afterwards.
    AudioChunk.objects.filter(pk=chunk.pk).update(
        created_at=created_at, transcribed_at=transcribed_at
    )
    return chunk


def make_photo(visit, *, status, created_at) -> Photo:
    concern = PhotoConcern.objects.create(
        patient=visit.patient, kind=PhotoKind.SKIN, body_site="arm"
    )
    photo = Photo.objects.create(
        visit=visit,
        concern=concern,
        uploaded_by=visit.patient,
        file_path="photos/none.jpg",
        sha256="0" * 64,
        width=1,
        height=1,
        quality_score=1.0,
        status=status,
    )
    Photo.objects.filter(pk=photo.pk).update(created_at=created_at)
    return photo


def test_sweeper_resends_chunks_that_waited_too_long_and_leaves_the_rest(visit, broker):
    lost = make_chunk(visit, status=ChunkStatus.RECEIVED, created_at=STALE, index=0)
    abandoned = make_chunk(
        visit, status=ChunkStatus.TRANSCRIBING, created_at=CLAIMED_LONG_AGO, index=1
    )
    left_alone = [
        make_chunk(visit, status=ChunkStatus.RECEIVED, created_at=FRESH, index=2),
        make_chunk(visit, status=ChunkStatus.TRANSCRIBING, created_at=CLAIMED_RECENTLY, index=3),
        make_chunk(visit, status=ChunkStatus.RECEIVED, created_at=TOO_OLD, index=4),
        make_chunk(visit, status=ChunkStatus.DONE, created_at=STALE, index=5),
        make_chunk(visit, status=ChunkStatus.STORED, created_at=STALE, index=6),
        make_chunk(visit, status=ChunkStatus.FAILED, created_at=STALE, index=7),
    ]

    resent = lost_work_resend(now=NOW)

    assert resent == {"chunks": [abandoned.pk, lost.pk], "notes": [], "photos": []}
    assert broker.queued_tasks("ml") == [
        ("consults.tasks.transcribe_chunk", [abandoned.pk]),
        ("consults.tasks.transcribe_chunk", [lost.pk]),
    ]
    assert all(chunk.pk not in resent["chunks"] for chunk in left_alone)


def test_an_uploaded_recording_is_resent_to_its_own_task(visit, physician, broker):
    recording = Recording.objects.create(
        visit=visit, speaker=Speaker.PATIENT, user=physician, source=Recording.Source.UPLOAD
    )
    chunk = AudioChunk.objects.create(
        recording=recording,
        index=0,
        start_s=0,
        path="audio/upload.wav",
        content_type="audio/wav",
        sha256="0" * 64,
        size=1,
    )
    AudioChunk.objects.filter(pk=chunk.pk).update(created_at=STALE)
    assert lost_work_resend(now=NOW)["chunks"] == [chunk.pk]
    assert broker.queued_tasks("ml") == [("consults.tasks.transcribe_upload", [chunk.pk])]


def test_sweeper_resends_photos_still_queued_and_leaves_the_rest(visit, broker):
    lost = make_photo(visit, status=Photo.Status.QUEUED, created_at=STALE)
    for status, created_at in [
        (Photo.Status.QUEUED, FRESH),
        (Photo.Status.QUEUED, TOO_OLD),
        (Photo.Status.ANALYSED, STALE),
        (Photo.Status.STORED, STALE),
        (Photo.Status.FAILED, STALE),
    ]:
        make_photo(visit, status=status, created_at=created_at)

    assert lost_work_resend(now=NOW) == {"chunks": [], "notes": [], "photos": [lost.pk]}
    assert broker.queued_tasks("ml") == [("triage.tasks.analyse_photo", [lost.pk])]


def test_sweeper_resends_nothing_while_the_ml_queue_holds_messages(visit, broker):
    chunk = make_chunk(visit, status=ChunkStatus.RECEIVED, created_at=STALE, index=0)
    photo = make_photo(visit, status=Photo.Status.QUEUED, created_at=STALE)
    # Their messages may merely be waiting behind this one: a re-send could double them.
    transcript_tasks.transcribe_chunk.delay(chunk.pk)

    assert lost_work_resend(now=NOW) == {"chunks": [], "notes": [], "photos": []}
    assert broker.queued_tasks("ml") == [("consults.tasks.transcribe_chunk", [chunk.pk])]
    # Once the queue has drained, the next sweep re-sends both.
    with broker.client() as client:
        client.delete("ml")
    assert lost_work_resend(now=NOW) == {"chunks": [chunk.pk], "notes": [], "photos": [photo.pk]}


def test_the_queue_check_counts_waiting_messages_on_the_embedded_broker_too(tmp_path):
    with tasks_sent_to("filesystem://", **filesystem_broker_options(tmp_path / "broker")):
        assert queue_waiting() == 0
        transcript_tasks.transcribe_chunk.delay(1)
        consult_tasks.visits_mark_no_shows.delay()
        assert queue_waiting() == 1
        assert queue_waiting(queue="default") == 1


def ended(visit, *, at):
    Visit.objects.filter(pk=visit.pk).update(status=VisitStatus.COMPLETED, ended_at=at)
    visit.refresh_from_db()
    return visit


def test_a_finished_consult_whose_note_was_never_requested_gets_it(visit, broker):
    # The last chunk's task died after storing its lines, before asking for the note.
    make_chunk(visit, status=ChunkStatus.DONE, created_at=STALE, index=0, transcribed_at=STALE)
    ended(visit, at=STALE)

    assert lost_work_resend(now=NOW) == {"chunks": [], "notes": [visit.pk], "photos": []}
    assert ClinicalNote.objects.get(visit=visit).status == ClinicalNote.Status.DRAFTING
    assert broker.queued_tasks("ml") == [("consults.tasks.draft_note_for_visit", [visit.pk])]


def test_a_note_whose_draft_message_was_lost_is_drafted_again(visit, broker):
    make_chunk(visit, status=ChunkStatus.DONE, created_at=STALE, index=0, transcribed_at=STALE)
    ended(visit, at=STALE)
    ClinicalNote.objects.create(visit=visit, status=ClinicalNote.Status.DRAFTING)

    assert lost_work_resend(now=NOW)["notes"] == [visit.pk]
    assert broker.queued_tasks("ml") == [("consults.tasks.draft_note_for_visit", [visit.pk])]


@pytest.mark.parametrize("requested", ["stale", "fresh"])
def test_a_physicians_redraft_whose_message_was_lost_is_sent_again(visit, broker, requested):
    make_chunk(visit, status=ChunkStatus.DONE, created_at=STALE, index=0, transcribed_at=STALE)
    ended(visit, at=STALE)
    # Drafted once, then the physician corrected the transcript and asked for a re-draft.
    ClinicalNote.objects.create(visit=visit, status=ClinicalNote.Status.DRAFT, drafted_at=STALE)
    assert note_request(visit=visit, redraft=True) is not None
    assert broker.queued_tasks("ml") == [("consults.tasks.draft_note_for_visit", [visit.pk])]
    with broker.client() as client:
        client.delete("ml")  # the message is lost
    note = ClinicalNote.objects.get(visit=visit)
    assert note.status == ClinicalNote.Status.DRAFTING and note.requested_at is not None
    when = STALE if requested == "stale" else FRESH
    ClinicalNote.objects.filter(pk=note.pk).update(requested_at=when)

    expected = [visit.pk] if requested == "stale" else []
    assert lost_work_resend(now=NOW)["notes"] == expected
    queued = broker.queued_tasks("ml")
    assert queued == [("consults.tasks.draft_note_for_visit", [visit.pk])] * len(expected)


@pytest.mark.parametrize(
    "case",
    ["drafted", "signed", "chunk_pending", "just_transcribed", "just_ended", "no_audio"],
)
def test_notes_that_are_done_or_may_still_be_on_their_way_are_left_alone(visit, broker, case):
    if case != "no_audio":
        make_chunk(
            visit,
            status=ChunkStatus.RECEIVED if case == "chunk_pending" else ChunkStatus.DONE,
            created_at=STALE,
            index=0,
            transcribed_at=FRESH if case == "just_transcribed" else STALE,
        )
    ended(visit, at=FRESH if case == "just_ended" else STALE)
    if case in ("drafted", "signed"):
        ClinicalNote.objects.create(
            visit=visit,
            status=ClinicalNote.Status.DRAFT if case == "drafted" else ClinicalNote.Status.SIGNED,
            drafted_at=STALE,
        )

    assert lost_work_resend(now=NOW)["notes"] == []
    queued = [name for name, _args in broker.queued_tasks("ml")]
    assert "consults.tasks.draft_note_for_visit" not in queued


@pytest.fixture
def fake_engine(settings):
    settings.SPEECH_BACKEND = "tests.test_transcription.FakeTranscriber"
    clear_transcribers()
    yield
    clear_transcribers()


def test_a_slow_run_overtaken_by_a_redelivery_stores_nothing(visit, fake_engine):
    """The attempt number fences the lines: only the latest claim's run may store them."""
    chunk = make_chunk(visit, status=ChunkStatus.RECEIVED, created_at=STALE, index=0)
    AudioChunk.objects.filter(pk=chunk.pk).update(
        path=private_save(category="audio", data=wav_bytes(), suffix=".wav")
    )
    slow = transcription._claim(chunk_id=chunk.pk)
    # The re-sent task claims the chunk again and finishes first.
    assert transcript_tasks.transcribe_chunk(chunk.pk) == ChunkStatus.DONE
    lines = list(TranscriptSegment.objects.filter(chunk=chunk).values_list("pk", flat=True))
    assert len(lines) == 1

    stored = transcription._segments_store(
        chunk=slow,
        segments=[Segment(0.0, 0.5, " a late line", -0.2, 0.01)],
        duration=0.5,
        no_speech=False,
    )
    assert stored is None
    assert list(TranscriptSegment.objects.filter(chunk=chunk).values_list("pk", flat=True)) == lines
    assert AudioChunk.objects.get(pk=chunk.pk).attempts == 2


def test_analysis_that_gives_up_marks_the_photo_failed_so_it_is_not_resent(visit):
    photo = make_photo(visit, status=Photo.Status.QUEUED, created_at=STALE)
    triage_tasks.analyse_photo.on_failure(RuntimeError("boom"), "task-id", (photo.pk,), {}, None)
    photo.refresh_from_db()
    assert photo.status == Photo.Status.FAILED and "RuntimeError" in photo.failure_reason
    assert not photo_services.photos_lost(now=NOW).exists()


def test_drafting_that_gives_up_marks_the_note_failed_so_it_is_not_resent(visit):
    note = ClinicalNote.objects.create(visit=visit, status=ClinicalNote.Status.DRAFTING)
    note_tasks.draft_note_for_visit.on_failure(
        RuntimeError("boom"), "task-id", (visit.pk,), {}, None
    )
    note.refresh_from_db()
    assert note.status == ClinicalNote.Status.FAILED


def test_beat_runs_the_sweeper():
    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "consults.tasks.lost_work_resend" in scheduled
    assert scheduled <= set(app.tasks), "every scheduled task exists"


def test_visibility_timeout_outlasts_every_task_and_the_sweep_outlasts_unclaimed_ones():
    app.loader.import_default_modules()
    ours = [task for name, task in app.tasks.items() if not name.startswith("celery.")]
    assert ours
    for task in ours:
        limit = task.time_limit or settings.CELERY_TASK_TIME_LIMIT
        assert limit < settings.BROKER_VISIBILITY_TIMEOUT, task.name
    # Photos and notes have no "claimed" state: a run must end before the sweeper may re-send.
    for task in (triage_tasks.analyse_photo, note_tasks.draft_note_for_visit):
        assert task.time_limit < settings.LOST_WORK_AFTER, task.name
