"""Celery tasks of the core app. Thin: call one service, idempotent."""

from celery import shared_task

from telehealth import retention


@shared_task(acks_late=True, soft_time_limit=1700, time_limit=1800)
def retention_enforce() -> dict[str, dict[str, int]]:
    """Remove health data past its retention period; return what went, per kind."""
    results = retention.retention_enforce()
    return {kind: {"items": r.items, "files": r.files} for kind, r in results.items()}


# Registered under its first name, which beat's schedule and queued messages use.
@shared_task(
    name="consults.tasks.lost_work_resend", acks_late=True, soft_time_limit=50, time_limit=60
)
def lost_work_resend() -> dict[str, list[int]]:
    """Re-send chunk, note and photo tasks whose message may be lost (docs/deploy.md)."""
    from telehealth.lost_work import lost_work_resend as resend

    return resend()
