"""Structured logs with request and task ids, and Prometheus metrics at /metrics.

Imported by the logging configuration, before Django's apps are ready: no models at import time.
"""

import json
import logging
import os
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from celery import signals as celery_signals
from celery._state import get_current_task
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

from telehealth.env import env_str

REQUEST_ID_HEADER = "X-Request-ID"
# Accept a caller's id (nginx's $request_id, a load balancer's) only if it cannot smuggle
# anything into a log line.
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
_request_id: ContextVar[str] = ContextVar("request_id", default="")

access_log = logging.getLogger("telehealth.access")

# Fields every formatter may emit; anything else on a record (Django attaches the request
# itself to django.request records) is never written, so bodies and headers cannot leak.
_JSON_FIELDS = (
    "request_id",
    "task_id",
    "task_name",
    "method",
    "path",
    "route",
    "status",
    "duration_ms",
    "user_id",
)


def current_request_id() -> str:
    return _request_id.get()


class LogContextFilter(logging.Filter):
    """Add the current request id and Celery task id and name to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            # django.request logs a 4xx/5xx after the middleware has returned, with the request
            # attached to the record.
            attached = getattr(getattr(record, "request", None), "request_id", "")
            record.request_id = _request_id.get() or attached
        task = get_current_task()
        record.task_id = (getattr(task.request, "id", None) or "") if task else ""
        record.task_name = (getattr(task, "name", None) or "") if task else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, ids, and the access-log fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in _JSON_FIELDS:
            value = getattr(record, field, None)
            if value not in (None, ""):
                entry[field] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


@celery_signals.after_setup_logger.connect
@celery_signals.after_setup_task_logger.connect
def _celery_logs_as_json(logger: logging.Logger, **kwargs) -> None:
    """Give handlers Celery added (its task logger's) the same JSON format and context."""
    if env_str("LOG_FORMAT", "json") != "json":
        return
    for handler in logger.handlers:
        handler.setFormatter(JsonFormatter())
        if not any(isinstance(f, LogContextFilter) for f in handler.filters):
            handler.addFilter(LogContextFilter())


# Metrics. In production several uvicorn processes serve requests; with PROMETHEUS_MULTIPROC_DIR
# set (docs/deploy.md) prometheus-client aggregates them at scrape time.
REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter(
    "telehealth_http_requests_total",
    "HTTP requests by route name, method and status.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "telehealth_http_request_duration_seconds",
    "HTTP request latency by route name and status.",
    ["route", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)


TASK_DURATION = Histogram(
    "telehealth_task_duration_seconds",
    "Celery task run time by task name and final state (SUCCESS, FAILURE, RETRY).",
    ["task", "state"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
    registry=REGISTRY,
)
MODEL_LATENCY = Histogram(
    "telehealth_model_latency_seconds",
    "Time spent inside one model call (transcription of a chunk, one photo), by model.",
    ["model"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 60, 120),
    registry=REGISTRY,
)


@contextmanager
def model_timer(model: str) -> Iterator[None]:
    """Time a model call into ``telehealth_model_latency_seconds`` (also when it raises)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        MODEL_LATENCY.labels(model).observe(time.perf_counter() - started)


_task_started: dict[str, float] = {}


@celery_signals.task_prerun.connect
def _task_timer_start(task_id: str = "", **kwargs) -> None:
    _task_started[task_id] = time.perf_counter()


@celery_signals.task_postrun.connect
def _task_timer_stop(task_id: str = "", task=None, state: str | None = None, **kwargs) -> None:
    started = _task_started.pop(task_id, None)
    if started is not None and task is not None:
        TASK_DURATION.labels(task.name, state or "UNKNOWN").observe(time.perf_counter() - started)


@celery_signals.worker_ready.connect
def _worker_metrics_server(**kwargs) -> None:
    """With CELERY_METRICS_PORT set, a worker serves its task and model metrics for Prometheus.

    The tasks run in pool processes, so with the prefork pool the pool processes must share
    PROMETHEUS_MULTIPROC_DIR (docs/deploy.md); the main process then serves all of them.
    """
    port = env_str("CELERY_METRICS_PORT", "")
    if not port:
        return
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    address = env_str("CELERY_METRICS_ADDR", "127.0.0.1")
    start_http_server(int(port), addr=address, registry=registry)


@celery_signals.worker_process_shutdown.connect
def _pool_process_gone(pid: int | None = None, **kwargs) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and pid:
        multiprocess.mark_process_dead(pid)


def _route_name(request: HttpRequest) -> str:
    # The route name, never the path: paths carry ids, and ids would make every visit a series.
    match = getattr(request, "resolver_match", None)
    if match and match.view_name:
        return match.view_name
    # WhiteNoise answers static files before URL resolution.
    return (
        "static" if request.path.startswith(f"/{settings.STATIC_URL.lstrip('/')}") else "unmatched"
    )


class RequestObservabilityMiddleware:
    """Request id in and out, one access-log line without query strings or bodies, and metrics."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = _request_id.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            elapsed = time.perf_counter() - started
            response[REQUEST_ID_HEADER] = request_id
            self._record(request, response.status_code, elapsed)
            return response
        finally:
            _request_id.reset(token)

    @staticmethod
    def _record(request: HttpRequest, status: int, elapsed: float) -> None:
        route = _route_name(request)
        REQUESTS.labels(route, request.method, str(status)).inc()
        LATENCY.labels(route, str(status)).observe(elapsed)
        user = getattr(request, "user", None)
        access_log.info(
            "%s %s %s",
            request.method,
            route,
            status,
            extra={
                "method": request.method,
                # request.path never includes the query string, which may carry health data.
                "path": request.path,
                "route": route,
                "status": status,
                "duration_ms": round(elapsed * 1000, 1),
                "user_id": user.pk if user is not None and user.is_authenticated else None,
            },
        )


# Collectors counted from the database at scrape time, registered by the apps in their
# AppConfig.ready() (triage: the queue depth); each is a class, instantiated per scrape.
SCRAPE_COLLECTORS: list[type] = []


def scrape_collector_register(collector: type) -> None:
    """Add a Prometheus collector class to every /metrics scrape (once)."""
    if collector not in SCRAPE_COLLECTORS:
        SCRAPE_COLLECTORS.append(collector)


def _scrape_allowed(request: HttpRequest) -> bool:
    if request.user.is_authenticated and request.user.is_staff:
        return True
    token = settings.METRICS_TOKEN
    supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return bool(token) and bool(supplied) and secrets.compare_digest(supplied, token)


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition: request metrics of every web process, plus queue depth."""
    if not _scrape_allowed(request):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        requests_registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(requests_registry)
    else:
        requests_registry = REGISTRY
    scrape = CollectorRegistry()
    for collector in SCRAPE_COLLECTORS:
        scrape.register(collector())
    body = generate_latest(requests_registry) + generate_latest(scrape)
    response = HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
