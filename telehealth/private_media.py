"""Private storage for health data files: outside the web root, unguessable names.

Every photo, audio chunk, heat map and attachment goes through the four functions below, which
use the ``private`` entry of ``settings.STORAGES``: a folder outside the web root by default
(``PrivateFileSystemStorage``), or a private S3-compatible bucket in production
(``PRIVATE_MEDIA_S3_BUCKET``, docs/deploy.md). Files are only ever served by authorized views
through ``private_response``: from a folder, the reverse proxy sends the bytes
(X-Accel-Redirect); from a bucket, Django streams them, so no bucket URL ever reaches a browser.
"""

import secrets
from pathlib import PurePosixPath

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.http import FileResponse, HttpResponse


class PrivateFileSystemStorage(FileSystemStorage):
    """A folder outside the web root (``PRIVATE_MEDIA_ROOT``) with no public URL."""

    def __init__(self, **kwargs):
        kwargs.setdefault("location", settings.PRIVATE_MEDIA_ROOT)
        kwargs["base_url"] = None
        super().__init__(**kwargs)

    def url(self, name):
        raise NotImplementedError("Private files have no URL; serve them with private_response")


def private_storage() -> Storage:
    return storages["private"]


def _checked(relative: str) -> str:
    """Refuse names that could leave the category folders (absolute, ``..``, empty)."""
    path = PurePosixPath(relative)
    if not relative or path.is_absolute() or ".." in path.parts or "\\" in relative:
        raise ValueError("Path escapes the private media root")
    return str(path)


def private_save(*, category: str, data: bytes, suffix: str) -> str:
    """Store bytes under a random name; return the relative name to keep in the database."""
    name = f"{category}/{secrets.token_urlsafe(24)}{suffix}"
    saved = private_storage().save(_checked(name), ContentFile(data))
    return saved


def private_read(relative: str) -> bytes:
    with private_storage().open(_checked(relative), "rb") as handle:
        return handle.read()


def private_delete(relative: str) -> None:
    """Remove a stored file; a file already gone is not an error (deletion is idempotent)."""
    storage = private_storage()
    name = _checked(relative)
    if storage.exists(name):
        storage.delete(name)


def private_response(*, relative: str, content_type: str, download_name: str) -> HttpResponse:
    """Serve a stored file to an already-authorized user; never cached by shared caches."""
    name = _checked(relative)
    storage = private_storage()
    accel_prefix = getattr(settings, "PRIVATE_MEDIA_ACCEL_PREFIX", "")
    if accel_prefix and isinstance(storage, FileSystemStorage):
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = f"{accel_prefix.rstrip('/')}/{name}"
    else:
        response = FileResponse(storage.open(name, "rb"), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{download_name}"'
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
