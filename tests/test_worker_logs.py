"""A worker's broker outage logs one line per cause, not one per reconnect attempt."""

import logging
import warnings
from pathlib import Path

from celery.exceptions import CPendingDeprecationWarning
from celery.worker.consumer.consumer import CANCEL_TASKS_BY_DEFAULT, CONNECTION_ERROR

from telehealth.celery import OneRetryLinePerOutage, _quiet_connection_loss


def record(msg: str, *args) -> logging.LogRecord:
    return logging.LogRecord("celery", logging.ERROR, __file__, 1, msg, args, None)


def test_one_cannot_connect_line_per_outage():
    retries = OneRetryLinePerOutage()
    cannot = record(CONNECTION_ERROR, "redis://127.0.0.1:6379/0", "Error 111", "Trying again")
    outage = [retries.filter(cannot) for _ in range(5)]
    assert outage == [True, False, False, False, False]
    assert retries.filter(record("Connected to %s", "redis://127.0.0.1:6379/0"))
    assert retries.filter(cannot)  # the next outage is reported again


def test_the_cancel_on_connection_loss_notice_is_not_logged_on_every_outage():
    with warnings.catch_warnings(record=True) as seen:
        warnings.filterwarnings("always", category=CPendingDeprecationWarning)  # as Celery does
        _quiet_connection_loss()
        warnings.warn(CANCEL_TASKS_BY_DEFAULT, CPendingDeprecationWarning, stacklevel=1)
    assert seen == []


def test_the_procfile_worker_runs_without_gossip():
    # Gossip's restart after a broker connection loss fails inside Celery with a traceback
    # (docs/deploy.md, Celery workers); the application needs neither gossip nor mingle.
    procfile = (Path(__file__).parent.parent / "Procfile").read_text()
    (worker,) = [line for line in procfile.splitlines() if line.startswith("worker:")]
    assert "--without-gossip" in worker and "--without-mingle" in worker
