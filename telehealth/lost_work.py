"""Work whose task message the broker lost: the sweeper that re-sends it (docs/deploy.md).

Each app declares what of its work may be lost and how to re-send it, in its AppConfig.ready()
(``lost_work_register``: consults' chunks and note drafts, triage's photos); the selectors of
what may be lost live with their work. This module holds the one rule they share: never re-send
while the ml queue holds messages.
"""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)

# Transcription, note drafting and photo analysis are routed here (CELERY_TASK_ROUTES).
ML_QUEUE = "ml"
# Older work is left alone: after a day it needs a person, not another automatic try.
RESEND_WITHIN = timedelta(days=1)
# kind -> re-sender: re-sends that kind's lost tasks, returns their ids (lost_work_register).
_RESENDERS: dict[str, Callable[..., list[int]]] = {}


def lost_work_register(kind: str, resend: Callable[..., list[int]]) -> None:
    """Declare a kind of work whose task message may be lost: ``resend(now=...)`` re-sends
    what of it is lost and returns the ids. Kinds are re-sent in the order registered."""
    if _RESENDERS.get(kind, resend) is not resend:
        raise RuntimeError(f"lost work {kind!r} is registered twice")
    _RESENDERS[kind] = resend


def send_on_commit(task_name: str, *args) -> None:
    """Send the task registered as ``task_name`` once the transaction commits; a broker that
    cannot be reached fails nothing. The work is already saved (a chunk ``received``, a photo
    queued, a note drafting), so the request still answers, and the lost-work sweeper re-sends
    the task later.

    By name, the way Celery itself sends tasks: a service never imports the task module that
    calls it back (no import circle; docs/architecture.md). Each app imports its task modules in
    its AppConfig.ready(), so an unknown name fails here, in the request, not in the worker.
    """
    from telehealth.celery import app

    if not isinstance(task_name, str):
        raise TypeError(f"send_on_commit takes the task's registered name, not {task_name!r}")
    task = app.tasks[task_name]

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


def lost_work_resend(*, now: datetime | None = None) -> dict[str, list[int]]:
    """Re-send the tasks of every registered kind (chunks, note drafts, photos) whose message
    may be lost; say which.

    Nothing is re-sent while the ml queue still holds messages, so a message that is merely
    waiting is never doubled. A re-send that meets a slow original does no harm: see each
    kind's re-sender (``chunks_resend_lost``, ``notes_resend_lost``, ``photos_resend_lost``).
    """
    if queue_waiting():
        return {kind: [] for kind in _RESENDERS}
    now = now or timezone.now()
    resent = {kind: resend(now=now) for kind, resend in _RESENDERS.items()}
    if any(resent.values()):
        logger.warning(
            "re-sent lost work: %s", ", ".join(f"{len(ids)} {kind}" for kind, ids in resent.items())
        )
    return resent
