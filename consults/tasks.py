"""Celery tasks for visits. Thin: re-fetch by id, call one service, idempotent."""

from celery import shared_task

from consults import services


@shared_task(acks_late=True, soft_time_limit=50, time_limit=60)
def visits_mark_no_shows() -> int:
    """Mark booked visits whose slot ended without a check-in as no-shows; return how many."""
    return len(services.visits_mark_no_shows())


# --- Lost work (beat) -------------------------------------------------------------------------


@shared_task(acks_late=True, soft_time_limit=50, time_limit=60)
def lost_work_resend() -> dict[str, list[int]]:
    """Re-send chunk, note and photo tasks whose message may be lost (docs/deploy.md)."""
    from telehealth.lost_work import lost_work_resend as resend

    return resend()
