"""`manage.py transcribe` prints one JSON object per file; runs only where Django is set up."""

from __future__ import annotations

import io
import json

import pytest

from tests.speech.audio_helpers import FIXTURES


def _configured_django() -> None:
    django_conf = pytest.importorskip("django.conf")
    if not django_conf.settings.configured:
        pytest.skip("Django settings are not configured (run without -p no:django)")


def test_transcribe_command_prints_json_lines() -> None:
    _configured_django()
    from django.core.management import call_command

    out = io.StringIO()
    call_command(
        "transcribe", str(FIXTURES / "penicillin.ogg"), "--model", "tiny.en", "--json", stdout=out
    )

    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(rows) == 1
    assert "penicillin" in rows[0]["text"].lower()
    assert set(rows[0]) >= {"text", "segments", "language", "duration_s", "processing_s"}
    assert {"start", "end", "text"} == set(rows[0]["segments"][0])


def test_transcribe_command_fails_on_non_audio(tmp_path) -> None:
    _configured_django()
    from django.core.management import CommandError, call_command

    picture = tmp_path / "photo.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)

    with pytest.raises(CommandError, match="1 of 1"):
        call_command("transcribe", str(picture), "--model", "tiny.en", stderr=io.StringIO())
