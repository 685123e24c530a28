"""A real Celery worker process against the test database and the configured broker."""

import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import kombu.pools
from django.conf import settings
from django.db import connection

from consults.notes.engine import GroundedDrafter
from consults.speech.faster_whisper_backend import FasterWhisperTranscriber
from telehealth.celery import app
from triage.vision.onnx_backend import OnnxSkinClassifier


def database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    user = db.get("USER") or "postgres"
    host = db.get("HOST") or "127.0.0.1"
    return f"postgres://{user}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"


def purge_broker() -> None:
    if settings.CELERY_BROKER_URL == "filesystem://":
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
    else:
        app.control.purge()


def start_worker(
    log_path: Path,
    *,
    queues: str = "default,ml",
    extra_env: dict | None = None,
    purge: bool = True,
    concurrency: int = 1,
):
    """Start ``celery worker`` as a subprocess and wait until it reports ready.

    ``purge`` first empties the broker; drills that queued work before the worker starts
    pass False.
    """
    if purge:
        purge_broker()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "telehealth.settings.test",
        "DATABASE_URL": database_url(),
        **(extra_env or {}),
    }
    log = log_path.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "telehealth",
            "worker",
            "--queues",
            queues,
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "INFO",
            "--without-mingle",
            "--without-gossip",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while "ready." not in log_path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"Celery worker did not start:\n{log_path.read_text()}")
        time.sleep(0.2)
    return process


def stop_worker(process) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def worker_children(process) -> list[int]:
    """The pids of the worker's pool processes (its direct children), from /proc."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (command) state ppid ..."; the command may itself hold spaces or parentheses.
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == process.pid:
            children.append(int(stat.parent.name))
    return children


def kill_pids(pids: list[int]) -> None:
    """SIGKILL each process that still exists."""
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def kill_worker(process) -> None:
    """SIGKILL the whole worker, main process first so that it cannot hand its task back."""
    children = worker_children(process)
    process.kill()
    process.wait(timeout=10)
    kill_pids(children)


def reset_connections() -> None:
    """Forget this process's pooled broker connections (after the broker moved or restarted)."""
    kombu.pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


# What telehealth.settings.base sets when CELERY_BROKER_URL names RabbitMQ.
AMQP_CONF = {
    "task_default_queue_type": "quorum",
    "task_create_missing_queue_type": "quorum",
    "task_default_exchange_type": "topic",
    "task_create_missing_queue_exchange_type": "topic",
}


def _forget_queue_declarations() -> None:
    for name in ("queues", "default_queue", "router", "default_exchange"):
        app.amqp.__dict__.pop(name, None)


@contextmanager
def tasks_sent_to(url: str, **transport_options):
    """Send this process's tasks to the broker at ``url`` (a drill's private Redis, or a
    private RabbitMQ vhost with the production queue settings) meanwhile."""
    amqp = url.startswith("amqp")
    conf = AMQP_CONF if amqp else {}
    saved = (app.conf.broker_url, app.conf.broker_transport_options)
    saved_conf = {name: app.conf[name] for name in conf}
    app.conf.broker_url = url
    app.conf.broker_transport_options = {"confirm_publish": True} if amqp else transport_options
    app.conf.update(conf)
    _forget_queue_declarations()
    reset_connections()
    try:
        yield
    finally:
        app.conf.broker_url, app.conf.broker_transport_options = saved
        app.conf.update(saved_conf)
        _forget_queue_declarations()
        reset_connections()


class CountingSkinClassifier(OnnxSkinClassifier):
    """The shipped ONNX skin classifier, which lets a drill count and catch its runs.

    Each call first appends its pid to the file ``$DRILL_CALLS`` and then holds for
    ``$DRILL_HOLD_S`` seconds (default none) before classifying: a drill kills the worker
    while it holds, certainly mid-analysis.
    """

    def predict(self, rgb):
        with open(os.environ["DRILL_CALLS"], "a") as calls:
            calls.write(f"{os.getpid()}\n")
        time.sleep(float(os.environ.get("DRILL_HOLD_S", "0")))
        return super().predict(rgb)


def _count_and_hold(kind: str) -> None:
    """Append "<kind> <pid>" to ``$DRILL_CALLS``, then hold ``$DRILL_HOLD_S`` seconds."""
    with open(os.environ["DRILL_CALLS"], "a") as calls:
        calls.write(f"{kind}:{os.getpid()}\n")
    time.sleep(float(os.environ.get("DRILL_HOLD_S", "0")))


class HoldingTranscriber(FasterWhisperTranscriber):
    """Whisper, counted; it holds (``$DRILL_HOLD_S``) on audio from ``$DRILL_HOLD_FROM_S`` on.

    A live chunk that starts late in the consult is held at once; an upload's first window
    (at 0 s) runs and is stored, its second is held: a drill kills the worker mid-upload.
    """

    def transcribe_array(self, *, samples, offset_s: float = 0.0, hotwords=None):
        if offset_s >= float(os.environ.get("DRILL_HOLD_FROM_S", "inf")):
            _count_and_hold("speech")
        else:
            with open(os.environ["DRILL_CALLS"], "a") as calls:
                calls.write(f"speech-early:{os.getpid()}\n")
        return super().transcribe_array(samples=samples, offset_s=offset_s, hotwords=hotwords)


class HoldingDrafter(GroundedDrafter):
    """The rules note drafter, counted and held like the classifier."""

    def draft(self, *, utterances):
        _count_and_hold("note")
        return super().draft(utterances=utterances)


def wait_for(predicate, *, timeout: float = 60, interval: float = 0.2):
    """Poll ``predicate`` until it returns something truthy or the deadline passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
