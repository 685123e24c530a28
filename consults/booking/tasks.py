"""Celery tasks for visits. Thin: re-fetch by id, call one service, idempotent."""

from celery import shared_task

from consults.booking import services


# Registered under its first name, which beat's schedule and queued messages use.
@shared_task(
    name="consults.tasks.visits_mark_no_shows", acks_late=True, soft_time_limit=50, time_limit=60
)
def visits_mark_no_shows() -> int:
    """Mark booked visits whose slot ended without a check-in as no-shows; return how many."""
    return len(services.visits_mark_no_shows())
