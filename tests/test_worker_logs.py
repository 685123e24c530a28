"""A worker's broker outage logs one line per cause, not one per reconnect attempt."""

import logging
import sys
import warnings
from pathlib import Path

from celery.exceptions import CPendingDeprecationWarning
from celery.worker.consumer.consumer import CANCEL_TASKS_BY_DEFAULT, CONNECTION_ERROR

from telehealth.celery import AckLostWithoutTraceback, OneRetryLinePerOutage, _quiet_connection_loss


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


def test_the_procfile_web_server_runs_as_the_tests_servers_do():
    # The topology, outage and room tests (and bench/signaling.py) start uvicorn with the
    # production options; they must be the ones the Procfile runs.
    from tests.asgi_servers import PRODUCTION_OPTIONS

    procfile = (Path(__file__).parent.parent / "Procfile").read_text()
    (web,) = [line for line in procfile.splitlines() if line.startswith("web:")]
    assert " ".join(PRODUCTION_OPTIONS) in web


def test_a_lost_acknowledgement_is_one_line_without_the_broker_traceback() -> None:
    # Seen in the Redis-outage drill: the broker dropped just as a task was acknowledged.
    try:
        raise ConnectionError("Error while reading from 127.0.0.1:6379 : (104, 'reset')")
    except ConnectionError:
        exc_info = sys.exc_info()
    lost = logging.LogRecord(
        "celery.worker.request", logging.CRITICAL, __file__, 1,
        "Couldn't ack %r, reason:%r", ("6bc7", "ConnectionError"), exc_info,
    )  # fmt: skip
    other = logging.LogRecord(
        "celery.worker.request", logging.ERROR, __file__, 1, "Task failed", (), exc_info
    )
    ack = AckLostWithoutTraceback()

    assert ack.filter(lost) and ack.filter(other)  # both are logged
    assert "Traceback" not in logging.Formatter().format(lost)
    assert "6bc7" in lost.getMessage()
    assert other.exc_info is exc_info  # other errors keep their traceback
