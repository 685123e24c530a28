"""Celery tasks for transcription (ml queue). Thin: re-fetch by id, call one service, idempotent.

The registered names stay ``consults.tasks.*`` (where these tasks were first defined), so
messages already queued under those names are still understood and CELERY_TASK_ROUTES still
sends them to the ml queue.
"""

from celery import shared_task
from celery.contrib.django.task import DjangoTask
from celery.exceptions import SoftTimeLimitExceeded
from django.db import DatabaseError


class _TranscriptionTask(DjangoTask):
    """Marks the chunk failed once retries are spent, so the transcript can still complete."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        from consults.transcripts.services import chunk_fail

        chunk_id = args[0] if args else kwargs.get("chunk_id")
        if chunk_id is not None:
            chunk_fail(chunk_id=chunk_id, reason=f"transcription failed: {type(exc).__name__}")


_TRANSIENT = (OSError, DatabaseError, SoftTimeLimitExceeded)


@shared_task(
    name="consults.tasks.transcribe_chunk",
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
    from consults.transcripts.services import chunk_transcribe

    chunk = chunk_transcribe(chunk_id=chunk_id)
    return chunk.status if chunk is not None else "skipped"


@shared_task(
    name="consults.tasks.transcribe_upload",
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
    from consults.transcripts.services import chunk_transcribe

    chunk = chunk_transcribe(chunk_id=chunk_id)
    return chunk.status if chunk is not None else "skipped"
