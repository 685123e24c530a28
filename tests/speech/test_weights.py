"""Weights come only from the pinned local packages, verified and joined safely."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from consults.speech import weights
from consults.speech.weights import ModelUnavailable, model_files, sha256_file


def test_tiny_en_files_are_verified_in_place() -> None:
    files = model_files(name="tiny.en")
    assert (files.path / "model.bin").is_file()
    assert not files.multilingual


def test_tampered_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelUnavailable, match="sha256 mismatch"):
        weights._verify(bad, "0" * 64)


def test_unknown_model_is_refused() -> None:
    with pytest.raises(ModelUnavailable, match="unknown model"):
        model_files(name="large-v3")


def _join(cache_dir: str) -> str:
    return str(model_files(name="base", cache_dir=cache_dir).path)


def test_two_processes_join_base_halves_once_and_atomically(tmp_path: Path) -> None:
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        paths = pool.map(_join, [str(tmp_path)] * 2)

    assert paths[0] == paths[1]
    joined = Path(paths[0])
    assert sha256_file(joined / "model.bin") == weights._BASE["model.bin"]
    assert not list(joined.glob("*.tmp")), "no temp files are left behind"
