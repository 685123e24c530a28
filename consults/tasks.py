"""Celery tasks for visits. Thin: re-fetch by id, call one service, idempotent."""

from celery import shared_task

from consults import services


@shared_task(acks_late=True, soft_time_limit=50, time_limit=60)
def visits_mark_no_shows() -> int:
    """Mark booked visits whose slot ended without a check-in as no-shows; return how many."""
    return len(services.visits_mark_no_shows())
