"""The classify_photo management command prints one JSON object per file (needs Django settings)."""

from __future__ import annotations

import io
import json

import pytest

from tests.vision.conftest import FIXTURES

django = pytest.importorskip("django")


@pytest.fixture
def call():
    from django.conf import settings

    if not settings.configured:
        pytest.skip("Django settings are not configured (run under pytest-django)")
    from django.core.management import call_command

    def run(*args: str) -> list[dict]:
        out = io.StringIO()
        call_command("classify_photo", *args, "--json", stdout=out)
        return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]

    return run


def test_command_prints_one_json_object_per_file(call, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    records = call(str(FIXTURES / "ham_nv.jpg"), str(broken))
    assert len(records) == 2
    good, bad = records
    assert good["kind"] == "skin" and good["label"] == "nv" and good["can_assess"] is True
    assert good["urgency"]["level"] == "non_urgent"
    assert abs(sum(good["probabilities"].values()) - 1.0) < 1e-3
    assert {"score", "flags", "passed"} <= set(good["quality"])
    assert "JPEG or PNG" in bad["error"]
