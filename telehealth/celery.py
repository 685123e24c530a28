"""The Celery application: configuration from Django settings (CELERY_*), tasks autodiscovered.

Autodiscovery finds ``<app>.tasks`` (telehealth.tasks); the feature folders' task modules
(consults/booking, transcripts, notes; triage/photos) are imported by their app's
``AppConfig.ready()``, which Django runs in the worker too. Each keeps the registered name its
messages and CELERY_TASK_ROUTES use (``name=`` on the task).
"""

import logging
import os
import warnings

from celery import Celery, signals
from celery.exceptions import CPendingDeprecationWarning

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "telehealth.settings.local")

app = Celery("telehealth")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class OneRetryLinePerOutage(logging.Filter):
    """Let the first "Cannot connect to <broker>… Trying again" of an outage through, drop
    the repeats (one per retry, for as long as the broker is down), and reset when the worker
    is connected again."""

    def __init__(self) -> None:
        super().__init__()
        self.reported = False

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message.startswith("Connected to"):
            self.reported = False
        elif "Cannot connect to" in message:
            if self.reported:
                return False
            self.reported = True
        return True


class AckLostWithoutTraceback(logging.Filter):
    """Celery logs a failed acknowledgement ("Couldn't ack '<id>', reason:network:...") with
    the broker client's whole traceback when the broker drops just as a task finishes. The
    line names the task and the cause; the traceback adds 40 lines of redis-py internals. One
    line per cause, as for the retries above: the traceback is left out."""

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("Couldn't ack"):
            record.exc_info = None
            record.exc_text = None
        return True


@signals.celeryd_after_setup.connect
def _quiet_connection_loss(**kwargs) -> None:
    """Drop Celery's nine-line notice, logged on every broker connection loss, that a worker
    will one day cancel its running tasks then by default. RabbitMQ turns that on already
    (settings/base.py: it requeues them at once); on Redis a running task finishes and is
    acknowledged afterwards. Installed after Celery's logging setup, which shows every
    Celery deprecation notice ``always``."""
    warnings.filterwarnings(
        "ignore",
        message=r"\s*In Celery 5\.1 we introduced an optional breaking change",
        category=CPendingDeprecationWarning,
    )
    retries = OneRetryLinePerOutage()
    logging.getLogger("celery.worker.consumer.consumer").addFilter(retries)
    logging.getLogger("celery.worker.consumer.connection").addFilter(retries)
    logging.getLogger("celery.worker.request").addFilter(AckLostWithoutTraceback())
