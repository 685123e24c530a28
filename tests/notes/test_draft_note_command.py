"""`manage.py draft_note --json` prints one object per file with evidence line numbers."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

django = pytest.importorskip("django")

FIXTURE = Path(__file__).parent / "fixture_visit.txt"


def test_draft_note_json_prints_sections_with_evidence() -> None:
    from django.conf import settings

    if not settings.configured:
        settings.configure(INSTALLED_APPS=[])
        django.setup()
    from django.core.management import call_command

    from consults.management.commands.draft_note import Command

    out = io.StringIO()
    call_command(Command(), str(FIXTURE), json=True, stdout=out)
    (line,) = out.getvalue().strip().splitlines()
    data = json.loads(line)
    meds = data["sections"]["medications"]
    assert any(m["text"].startswith("Lisinopril 10 mg") and m["evidence"] == [5] for m in meds)
    assert all(i["evidence"] for items in data["sections"].values() for i in items)
