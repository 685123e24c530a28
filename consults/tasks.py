"""Celery tasks for visits. Thin: re-fetch by id, call one service, idempotent."""

from celery import shared_task
from celery.contrib.django.task import DjangoTask
from celery.exceptions import SoftTimeLimitExceeded
from django.db import DatabaseError

from consults import services


@shared_task(acks_late=True, soft_time_limit=50, time_limit=60)
def visits_mark_no_shows() -> int:
    """Mark booked visits whose slot ended without a check-in as no-shows; return how many."""
    return len(services.visits_mark_no_shows())


# --- Transcription (ml queue) -----------------------------------------------------------------


class _TranscriptionTask(DjangoTask):
    """Marks the chunk failed once retries are spent, so the transcript can still complete."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        from consults.transcription import chunk_fail

        chunk_id = args[0] if args else kwargs.get("chunk_id")
        if chunk_id is not None:
            chunk_fail(chunk_id=chunk_id, reason=f"transcription failed: {type(exc).__name__}")


_TRANSIENT = (OSError, DatabaseError, SoftTimeLimitExceeded)


@shared_task(
    base=_TranscriptionTask,
    acks_late=True,
    autoretry_for=_TRANSIENT,
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=3,
    soft_time_limit=120,
    time_limit=150,
)
def transcribe_chunk(chunk_id: int) -> str:
    """Transcribe one live chunk; a finished chunk is skipped, a redelivered one redone."""
    from consults.transcription import chunk_transcribe

    chunk = chunk_transcribe(chunk_id=chunk_id)
    return chunk.status if chunk is not None else "skipped"


@shared_task(
    base=_TranscriptionTask,
    acks_late=True,
    autoretry_for=_TRANSIENT,
    retry_backoff=5,
    retry_backoff_max=120,
    max_retries=2,
    soft_time_limit=1800,
    time_limit=1900,
)
def transcribe_upload(chunk_id: int) -> str:
    """Transcribe an uploaded recording (one chunk, in windows, with progress)."""
    from consults.transcription import chunk_transcribe

    chunk = chunk_transcribe(chunk_id=chunk_id)
    return chunk.status if chunk is not None else "skipped"


# --- Note drafting (ml queue) -----------------------------------------------------------------


class _DraftTask(DjangoTask):
    """Marks the note failed once retries are spent, so the sweeper stops re-sending it."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        from consults.clinical_notes import note_mark_failed

        visit_id = args[0] if args else kwargs.get("visit_id")
        if visit_id is not None:
            note_mark_failed(visit_id=visit_id, reason=f"drafting failed: {type(exc).__name__}")


@shared_task(
    base=_DraftTask,
    acks_late=True,
    autoretry_for=(OSError, DatabaseError),
    retry_backoff=5,
    max_retries=2,
    soft_time_limit=240,
    time_limit=300,
)
def draft_note_for_visit(visit_id: int) -> str:
    """Draft the visit's note from its transcript; re-running replaces an unsigned draft."""
    from consults.clinical_notes import note_draft, note_mark_failed

    try:
        note = note_draft(visit_id=visit_id)
    except SoftTimeLimitExceeded:
        note_mark_failed(visit_id=visit_id, reason="Drafting took too long.")
        raise
    return note.status if note is not None else "skipped"


# --- Lost work (beat) -------------------------------------------------------------------------


@shared_task(acks_late=True, soft_time_limit=50, time_limit=60)
def lost_work_resend() -> dict[str, list[int]]:
    """Re-send chunk, note and photo tasks whose message may be lost (docs/deploy.md)."""
    from telehealth.lost_work import lost_work_resend as resend

    return resend()
