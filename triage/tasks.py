"""Celery tasks for photo triage. Thin: re-fetch by id, call one service, own the retries."""

from celery import shared_task

from triage import photos


@shared_task(
    bind=True,
    acks_late=True,
    soft_time_limit=120,
    time_limit=150,
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=3,
)
def analyse_photo(self, photo_id: int) -> str:
    """Analyse one stored photo with the skin or wound model."""
    from triage.vision.imageio import ImageError

    try:
        analysis = photos.photo_analyse(photo_id=photo_id)
    except ImageError as exc:
        photos.photo_mark_failed(photo_id=photo_id, reason=str(exc))
        return "failed"
    return "analysed" if analysis is not None else "skipped"
