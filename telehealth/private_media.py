"""Private storage for health data files: outside the web root, unguessable names.

Files are only ever served by authorized views through ``private_response``, which hands the
transfer to the reverse proxy (X-Accel-Redirect) in production.
"""

import secrets
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, HttpResponse


def _root() -> Path:
    return Path(settings.PRIVATE_MEDIA_ROOT)


def private_save(*, category: str, data: bytes, suffix: str) -> str:
    """Store bytes under a random name; return the relative path to keep in the database."""
    relative = Path(category) / f"{secrets.token_urlsafe(24)}{suffix}"
    target = _root() / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".part")
    tmp.write_bytes(data)
    tmp.replace(target)
    return str(relative)


def private_path(relative: str) -> Path:
    """The absolute path of a stored file, refusing anything that escapes the root."""
    root = _root().resolve()
    path = (root / relative).resolve()
    if root not in path.parents:
        raise ValueError("Path escapes the private media root")
    return path


def private_read(relative: str) -> bytes:
    return private_path(relative).read_bytes()


def private_delete(relative: str) -> None:
    private_path(relative).unlink(missing_ok=True)


def private_response(*, relative: str, content_type: str, download_name: str) -> HttpResponse:
    """Serve a stored file to an already-authorized user; never cached by shared caches."""
    accel_prefix = getattr(settings, "PRIVATE_MEDIA_ACCEL_PREFIX", "")
    if accel_prefix:
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = f"{accel_prefix.rstrip('/')}/{relative}"
    else:
        response = FileResponse(private_path(relative).open("rb"), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{download_name}"'
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
