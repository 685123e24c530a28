"""Test settings: fast password hashing; the database and broker follow the environment."""

import os
import tempfile
from pathlib import Path

from telehealth.settings.base import *  # noqa: F403
from telehealth.settings.base import (
    CELERY_BROKER_URL,
    CHANNEL_LAYERS,
    DATABASES,
    VAR_DIR,
    filesystem_broker_options,
)

SECRET_KEY = "test-only-not-a-secret"  # noqa: S105
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# One id per test run, inherited by worker subprocesses through the environment, so that
# concurrent runs on one machine never share a database file or a broker folder.
TEST_RUN_ID = os.environ.setdefault("TELEHEALTH_TEST_RUN_ID", str(os.getpid()))
# Inherited by worker subprocesses through the environment, so they see the same files.
if not os.environ.get("TELEHEALTH_PRIVATE_MEDIA_ROOT"):
    PRIVATE_MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="telehealth-test-media-"))
    os.environ["TELEHEALTH_PRIVATE_MEDIA_ROOT"] = str(PRIVATE_MEDIA_ROOT)
WHITENOISE_USE_FINDERS = True
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file (not :memory:) so live-server threads, worker threads and subprocesses share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-db-{TEST_RUN_ID}.sqlite3")}
# Threads of the live ASGI server must not keep connections that block test-database teardown.
DATABASES["default"]["CONN_MAX_AGE"] = 0
if "default" in CHANNEL_LAYERS and "CONFIG" in CHANNEL_LAYERS["default"]:
    # Concurrent Redis-mode runs on one Redis must not hear each other's group messages.
    CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] += f"-test{TEST_RUN_ID}"
if CELERY_BROKER_URL == "filesystem://":
    # Test workers get a broker folder of their own, never the one `make run` uses.
    CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_broker_options(
        VAR_DIR / "test-celery-broker" / TEST_RUN_ID
    )
# Rate-limit counters stay in this process, where tests/conftest.py clears them per test
# (clearing a shared Redis would wipe other runs' data).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Tests draft with the rules unless a test (or the environment) asks for the language model.
NOTES_BACKEND = os.environ.get("NOTES_BACKEND", "rules")
