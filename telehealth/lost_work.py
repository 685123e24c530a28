"""Work whose task message the broker lost: the sweeper that re-sends it (docs/deploy.md).

The selectors of what may be lost live with their work (consults.transcripts, triage.photos);
this module holds the one rule they share: never re-send while the ml queue holds messages.
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)

# Transcription, note drafting and photo analysis are routed here (CELERY_TASK_ROUTES).
ML_QUEUE = "ml"
# Older work is left alone: after a day it needs a person, not another automatic try.
RESEND_WITHIN = timedelta(days=1)


def send_on_commit(task, *args) -> None:
    """Send ``task`` once the transaction commits; a broker that cannot be reached fails
    nothing. The work is already saved (a chunk ``received``, a photo queued, a note drafting),
    so the request still answers, and the lost-work sweeper re-sends the task later."""

    def send() -> None:
        try:
            task.delay(*args)
        except (OperationalError, OSError) as exc:
            logger.warning(
                "%s not sent (%s); the lost-work sweeper will re-send it",
                task.name,
                type(exc).__name__,
            )

    transaction.on_commit(send)


def queue_waiting(*, queue: str = ML_QUEUE) -> int:
    """Messages waiting in ``queue``; those a worker has taken and not yet acknowledged excluded."""
    from kombu.exceptions import ChannelError

    from telehealth.celery import app

    with app.connection_for_read() as connection:
        # Passive: only asks. RabbitMQ refuses a declaration whose arguments differ from the
        # queue's (a quorum queue), and a queue no worker has declared yet holds nothing.
        try:
            return connection.default_channel.queue_declare(queue=queue, passive=True).message_count
        except ChannelError:
            return 0


def lost_work_resend(*, now=None) -> dict[str, list[int]]:
    """Re-send the tasks of chunks, note drafts and photos whose message may be lost; say which.

    Nothing is re-sent while the ml queue still holds messages, so a message that is merely
    waiting is never doubled. A re-send that meets a slow original does no harm: see
    ``transcription_resend_lost`` and ``photos_resend_lost``.
    """
    from consults.transcripts.services import transcription_resend_lost
    from triage.photos import photos_resend_lost

    if queue_waiting():
        return {"chunks": [], "notes": [], "photos": []}
    now = now or timezone.now()
    resent = {**transcription_resend_lost(now=now), "photos": photos_resend_lost(now=now)}
    if any(resent.values()):
        logger.warning(
            "re-sent lost work: %s", ", ".join(f"{len(ids)} {kind}" for kind, ids in resent.items())
        )
    return resent
