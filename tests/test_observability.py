"""Request ids, JSON logs that never carry health data, task ids in worker logs, /metrics."""

import io
import json
import logging
import re

import pytest

from consults.booking import services
from telehealth.celery import app as celery_app
from telehealth.observability import JsonFormatter, LogContextFilter
from tests.factories import PatientFactory
from tests.test_permissions import login


@pytest.fixture
def json_log():
    """Capture log lines exactly as the console handler writes them (filter + JSON formatter)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(LogContextFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def lines():
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield lines
    root.removeHandler(handler)
    root.setLevel(old_level)


def test_a_request_id_is_generated_and_returned(client):
    response = client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])
    assert client.get("/healthz")["X-Request-ID"] != response["X-Request-ID"]


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        ("req-7f3a9c21-edge.lb", True),
        ("short", False),
        ("x" * 200, False),
        ('abc12345"}\n{"forged": 1', False),
    ],
)
def test_an_incoming_request_id_is_kept_only_if_well_formed(client, incoming, kept):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=incoming)
    assert (response["X-Request-ID"] == incoming) is kept


def test_access_log_is_json_with_request_id_and_no_query_string(client, patient, json_log):
    login(client, patient)
    response = client.get("/visits/?reason=suicidal+thoughts&dob=1990-01-01")
    access = [line for line in json_log() if line["logger"] == "telehealth.access"]
    assert len(access) == 1
    entry = access[0]
    assert entry["request_id"] == response["X-Request-ID"]
    assert entry["path"] == "/visits/" and entry["route"] == "consults:visit_list"
    assert entry["status"] == 200 and entry["user_id"] == patient.pk
    assert "suicidal" not in json.dumps(json_log()) and "1990" not in json.dumps(json_log())


def test_error_logs_never_include_the_request_body(client, json_log):
    client.post("/no-such-page/", {"symptoms": "chest pain since Tuesday"})
    lines = json_log()
    assert any(line["logger"] == "django.request" for line in lines)
    assert "chest pain" not in json.dumps(lines)
    assert all(line.get("request_id") for line in lines)


def test_worker_log_lines_carry_the_celery_task_id(json_log):
    @celery_app.task(name="tests.observability.log_something")
    def log_something():
        logging.getLogger("consults.tasks").info("working")

    log_something.apply(task_id="task-id-0042")
    entry = next(line for line in json_log() if line["message"] == "working")
    assert entry["task_id"] == "task-id-0042"
    assert entry["task_name"] == "tests.observability.log_something"


def test_metrics_are_refused_to_anonymous_and_to_patients(client, patient):
    assert client.get("/metrics").status_code == 403
    assert login(client, patient).get("/metrics").status_code == 403


def test_metrics_accept_only_the_configured_token(client, settings):
    settings.METRICS_TOKEN = "scrape-token-for-tests"
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-for-tests")
    assert ok.status_code == 200
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403


def test_staff_see_latency_by_route_and_the_queue_depth(client, admin_user):
    for reason in ("rash", "cough"):
        services.visit_join_on_demand(patient=PatientFactory(), reason=reason)
    client.get("/healthz")
    client.get("/static/css/app.css")
    response = login(client, admin_user).get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert re.search(
        r'telehealth_http_requests_total\{method="GET",route="healthz",status="200"\} \d', text
    )
    assert 'telehealth_http_request_duration_seconds_bucket{le="0.1",route="healthz"' in text
    assert 'route="static",status="200"' in text
    assert "telehealth_queue_depth 2.0" in text
    # Route names only: no paths, ids or query strings become label values.
    assert "/visits/" not in text
