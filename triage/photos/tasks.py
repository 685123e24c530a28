"""Celery tasks for photo triage. Thin: re-fetch by id, call one service, own the retries."""

from celery import shared_task
from celery.contrib.django.task import DjangoTask

from triage.photos import services as photos


class _AnalysisTask(DjangoTask):
    """Marks the photo failed once retries are spent, so the sweeper stops re-sending it."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        photo_id = args[0] if args else kwargs.get("photo_id")
        if photo_id is not None:
            photos.photo_mark_failed(
                photo_id=photo_id, reason=f"analysis failed: {type(exc).__name__}"
            )


# Registered under its first name, which CELERY_TASK_ROUTES and queued messages use.
@shared_task(
    name="triage.tasks.analyse_photo",
    bind=True,
    base=_AnalysisTask,
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
