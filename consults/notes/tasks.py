"""Celery tasks for note drafting (ml queue). Thin: re-fetch by id, call one service.

The registered name stays ``consults.tasks.draft_note_for_visit`` (where the task was first
defined), so messages already queued under it are still understood and CELERY_TASK_ROUTES still
sends it to the ml queue.
"""

from celery import shared_task
from celery.contrib.django.task import DjangoTask
from celery.exceptions import SoftTimeLimitExceeded
from django.db import DatabaseError


class _DraftTask(DjangoTask):
    """Marks the note failed once retries are spent, so the sweeper stops re-sending it."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        from consults.notes.services import note_mark_failed

        visit_id = args[0] if args else kwargs.get("visit_id")
        if visit_id is not None:
            note_mark_failed(visit_id=visit_id, reason=f"drafting failed: {type(exc).__name__}")


@shared_task(
    name="consults.tasks.draft_note_for_visit",
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
    from consults.notes.services import note_draft, note_mark_failed

    try:
        note = note_draft(visit_id=visit_id)
    except SoftTimeLimitExceeded:
        note_mark_failed(visit_id=visit_id, reason="Drafting took too long.")
        raise
    return note.status if note is not None else "skipped"


@shared_task(
    name="consults.tasks.prepare_note_for_visit",
    ignore_result=True,
    soft_time_limit=120,
    time_limit=150,
)
def prepare_note_for_visit(visit_id: int) -> int:
    """During the consult: the note model reads the final transcript lines so far (best effort;
    a lost or failed run only means more work after hang-up)."""
    from consults.notes.services import note_prepare

    return note_prepare(visit_id=visit_id)
