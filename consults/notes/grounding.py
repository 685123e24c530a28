"""The grounding check every backend's output passes before a clinician sees it."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from consults.notes.facts import _ALLERGEN
from consults.notes.meds import find_drug_spans
from consults.notes.numbers import numbers_in
from consults.notes.types import DraftNote, NoteItem, Utterance


@dataclass(frozen=True, slots=True)
class GroundingProblem:
    section: str
    item: str
    reason: str


def _mentions(text: str) -> set[str]:
    found = {text[s:e].lower() for _, s, e in find_drug_spans(text)}
    found |= {m.group(0).lower() for m in _ALLERGEN.finditer(text)}
    return found


def check_item(*, item: NoteItem, utterances: list[Utterance]) -> list[str]:
    """Reasons an item is not grounded; empty when every claim is in its cited lines."""
    if not item.evidence:
        return ["cites no transcript line"]
    bad = [i for i in item.evidence if not 0 <= i < len(utterances)]
    if bad:
        return [f"cites missing line(s) {bad}"]
    cited = " ".join(utterances[i].text for i in item.evidence)
    cited_lower = cited.lower()
    problems = []
    for name in sorted(_mentions(item.text)):
        # Singular/plural ("peanut" vs "peanuts") is the same claim.
        if not re.search(rf"\b{re.escape(name.rstrip('s'))}", cited_lower):
            problems.append(f"'{name}' is not in the cited lines")
    missing = numbers_in(item.text) - numbers_in(cited)
    if missing:
        problems.append(f"number(s) {sorted(missing)} not in the cited lines")
    return problems


def ground_note(
    *, note: DraftNote, utterances: list[Utterance]
) -> tuple[DraftNote, list[GroundingProblem]]:
    """Drop every item, medication and allergy that its cited lines do not support."""
    problems: list[GroundingProblem] = []
    sections: dict[str, list[NoteItem]] = {}
    for key, items in note.sections.items():
        kept = []
        for item in items:
            reasons = check_item(item=item, utterances=utterances)
            problems.extend(GroundingProblem(key, item.text, r) for r in reasons)
            if not reasons:
                kept.append(item)
        sections[key] = kept
    facts = note.facts
    meds = []
    for med in facts.medications:
        text = " ".join(filter(None, (med.name, med.dose)))
        reasons = check_item(item=NoteItem(text, list(med.evidence)), utterances=utterances)
        problems.extend(GroundingProblem("facts.medications", text, r) for r in reasons)
        if not reasons:
            meds.append(med)
    allergies = []
    for allergy in facts.allergies:
        reasons = check_item(
            item=NoteItem(allergy.substance, list(allergy.evidence)), utterances=utterances
        )
        problems.extend(GroundingProblem("facts.allergies", allergy.substance, r) for r in reasons)
        if not reasons:
            allergies.append(allergy)
    new_facts = replace(facts, medications=meds, allergies=allergies)
    return DraftNote(sections, new_facts, note.engine_version), problems
