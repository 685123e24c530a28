"""SPEECH_MODEL_PATH: a clinic's own CTranslate2 Whisper directory, verified before it loads."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from consults.speech import ModelUnavailable
from consults.speech.faster_whisper_backend import FasterWhisperTranscriber
from consults.speech.weights import custom_model_files, model_files, sha256_file


def _copy(name: str, target: Path) -> Path:
    source = model_files(name=name).path
    target.mkdir()
    for path in source.iterdir():
        if path.is_file():
            shutil.copyfile(path, target / path.name)
    return target


@pytest.fixture(scope="module")
def tiny_copy(tmp_path_factory) -> Path:
    return _copy("tiny.en", tmp_path_factory.mktemp("clinic") / "whisper-tiny-en")


def test_a_matching_model_bin_hash_is_accepted(tiny_copy: Path) -> None:
    files = custom_model_files(path=tiny_copy, sha256=sha256_file(tiny_copy / "model.bin").upper())
    assert files.path == tiny_copy


def test_a_wrong_hash_is_refused_before_loading_with_both_hashes_named(tiny_copy: Path) -> None:
    backend = FasterWhisperTranscriber(model="tiny.en", model_path=tiny_copy, model_sha256="0" * 64)
    with pytest.raises(ModelUnavailable, match="refusing to load") as refused:
        backend.load()
    assert sha256_file(tiny_copy / "model.bin") in str(refused.value)
    assert backend._model is None


@pytest.mark.parametrize("sha256", [None, "", "not-a-hash", "abc123"])
def test_a_missing_or_malformed_hash_is_refused(tiny_copy: Path, sha256) -> None:
    with pytest.raises(ModelUnavailable, match="SPEECH_MODEL_SHA256"):
        custom_model_files(path=tiny_copy, sha256=sha256)


def test_a_directory_without_the_model_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"weights")
    digest = sha256_file(tmp_path / "model.bin")
    with pytest.raises(ModelUnavailable, match="missing config.json, tokenizer.json"):
        custom_model_files(path=tmp_path, sha256=digest)
    with pytest.raises(ModelUnavailable, match="is not a directory"):
        custom_model_files(path=tmp_path / "nowhere", sha256=digest)


def test_a_changed_model_bin_is_refused(tmp_path: Path, tiny_copy: Path) -> None:
    clinic = tmp_path / "clinic"
    shutil.copytree(tiny_copy, clinic)
    pinned = sha256_file(clinic / "model.bin")
    with (clinic / "model.bin").open("r+b") as fh:
        fh.seek(4096)
        fh.write(b"\x00\x01\x02\x03")
    with pytest.raises(ModelUnavailable, match="refusing to load"):
        custom_model_files(path=clinic, sha256=pinned)


@pytest.mark.slow
def test_base_files_copied_to_a_directory_load_and_transcribe(
    tmp_path: Path, penicillin_ogg: bytes
) -> None:
    clinic = _copy("base", tmp_path / "whisper-base")
    backend = FasterWhisperTranscriber(
        model="clinic-base",
        model_path=clinic,
        model_sha256=sha256_file(clinic / "model.bin"),
        language="en",
    )
    transcript = backend.transcribe(audio=penicillin_ogg)
    assert "penicillin" in transcript.text.lower()
    assert transcript.model == "clinic-base"
