"""Test settings: fast password hashing; the database and broker follow the environment."""

import tempfile

from telehealth.settings.base import *  # noqa: F403
from telehealth.settings.base import DATABASES, VAR_DIR

SECRET_KEY = "test-only-not-a-secret"  # noqa: S105
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
PRIVATE_MEDIA_ROOT = tempfile.mkdtemp(prefix="telehealth-test-media-")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file (not :memory:) so live-server threads, worker threads and subprocesses share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
WHITENOISE_USE_FINDERS = True
# Threads of the live ASGI server must not keep connections that block test-database teardown.
DATABASES["default"]["CONN_MAX_AGE"] = 0
