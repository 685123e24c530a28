"""Hand-checked transcript -> facts cases (tests/notes/gold_facts.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from consults.notes.facts import extract_facts
from consults.notes.transcript import parse_transcript
from consults.notes.types import NoteFacts

CASES = yaml.safe_load((Path(__file__).parent / "gold_facts.yaml").read_text())


def _names(facts: NoteFacts, *, negated: bool, experiencer: str = "patient") -> set[str]:
    return {
        f.name
        for f in facts.findings
        if f.negated == negated and f.experiencer == experiencer and f.temporality == "current"
    }


def _history(facts: NoteFacts) -> set[str]:
    return {
        f.name
        for f in facts.findings
        if f.experiencer == "patient" and f.temporality == "historical" and not f.negated
    }


def _check_med(facts: NoteFacts, want: dict) -> None:
    got = [m for m in facts.medications if want["name"] in m.name]
    assert got, f"{want['name']} not found in {facts.medications}"
    for key in ("dose", "route", "frequency", "status"):
        if key in want:
            assert any(getattr(m, key) == want[key] for m in got), (key, want, got)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_gold_case(case: dict) -> None:
    utterances = parse_transcript(text=case["transcript"])
    facts = extract_facts(utterances=utterances)
    expect = case["expect"]
    positives = _names(facts, negated=False)
    negatives = _names(facts, negated=True)
    assert set(expect.get("positives", [])) <= positives, positives
    assert set(expect.get("negatives", [])) <= negatives, negatives
    assert not set(expect.get("not_positives", [])) & positives
    assert not set(expect.get("not_negatives", [])) & negatives
    assert not set(expect.get("not_findings", [])) & (positives | negatives)
    family = {f.name for f in facts.findings if f.experiencer == "family"}
    assert set(expect.get("family", [])) <= family, family
    assert set(expect.get("history", [])) <= _history(facts), _history(facts)
    assert not set(expect.get("not_history", [])) & _history(facts)
    for want in expect.get("medications", []):
        _check_med(facts, want)
    med_names = " ".join(m.name for m in facts.medications)
    for name in expect.get("not_medications", []):
        assert name not in med_names, facts.medications
    for want in expect.get("allergies", []):
        got = [a for a in facts.allergies if a.substance == want["substance"]]
        assert got, facts.allergies
        assert got[0].reaction == want.get("reaction", got[0].reaction)
    if expect.get("no_allergies"):
        assert facts.no_known_allergies and not facts.allergies
    for want in expect.get("vitals", []):
        assert any(v.kind == want["kind"] and v.value == want["value"] for v in facts.vitals), (
            facts.vitals
        )
    for name, duration in expect.get("durations", {}).items():
        got = [f for f in facts.findings if f.name == name and not f.negated]
        assert got and got[0].duration == duration, got
    # Every fact rests on real lines.
    for fact in [*facts.medications, *facts.allergies, *facts.findings, *facts.vitals]:
        assert fact.evidence and all(0 <= i < len(utterances) for i in fact.evidence)
