import os
from pathlib import Path

import pytest
from django.utils import timezone

from consults.selectors import free_slots
from tests.factories import AdminFactory, PatientFactory, PhysicianFactory, open_every_day
from tests.services import forgetful_redis, private_redis, private_vhost  # noqa: F401  (fixtures)


@pytest.fixture
def patient(db):
    return PatientFactory(email="pat.a@example.org")


@pytest.fixture
def other_patient(db):
    return PatientFactory(email="pat.b@example.org")


@pytest.fixture
def physician(db):
    doctor = PhysicianFactory(email="dr.a@example.org", serves_on_demand=True)
    open_every_day(doctor)
    return doctor


@pytest.fixture
def other_physician(db):
    doctor = PhysicianFactory(email="dr.b@example.org")
    open_every_day(doctor)
    return doctor


@pytest.fixture
def admin_user(db):
    return AdminFactory(email="admin@example.org")


@pytest.fixture
def slots(physician):
    """The physician's next free slots (tomorrow onwards, never in the past)."""
    tomorrow = timezone.localdate() + timezone.timedelta(days=1)
    return free_slots(physician=physician, start_date=tomorrow, days=2)


def pytest_collection_modifyitems(config, items):
    # Browser tests drive a real server thread that uses the ORM from Playwright's loop.
    if any(item.get_closest_marker("browser") for item in items):
        os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


ENGINE_SUITES = {"speech", "notes", "vision"}


@pytest.fixture(autouse=True)
def _db_for_django_tests(request):
    """Django-facing tests get the database; the plain-Python engine suites stay DB-free."""
    if Path(str(request.node.fspath)).parent.name not in ENGINE_SUITES:
        request.getfixturevalue("db")


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path):
    """A real ``celery worker`` subprocess sharing the test database and broker.

    It serves its Prometheus metrics (task durations, model latency) at ``process.metrics_url``.
    """
    from tests.services import free_port
    from tests.workers import start_worker, stop_worker

    log = tmp_path / "worker.log"
    port = free_port()
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    process = start_worker(
        log,
        extra_env={"CELERY_METRICS_PORT": str(port), "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
    )
    process.metrics_url = f"http://127.0.0.1:{port}/metrics"
    yield process
    stop_worker(process)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit counters (sign-up, password reset) start from zero in every test."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """A channel layer per test: the Redis layer binds its locks to the loop that made it."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()
