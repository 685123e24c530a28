"""Default backend: grounded clinical NLP (rules first, an embedding classifier where unsure)."""

from __future__ import annotations

import re

from consults.notes.context import answer_polarity, is_question, preceding_question, strip_tags
from consults.notes.facts import extract_facts
from consults.notes.grounding import ground_note
from consults.notes.lexicon import OTHER_SYSTEM, PAIN_SITES, SYSTEMS
from consults.notes.numbers import mark_spoken_points
from consults.notes.rules import is_opening_question, rule_section
from consults.notes.types import (
    SECTION_TITLES,
    DraftNote,
    Finding,
    Medication,
    NoteFacts,
    NoteItem,
    Utterance,
)

ENGINE_VERSION = "grounded-rules-0.1"
_REVIEW_BELOW = 0.55
_FILLER = re.compile(
    r"^(?:(?:um+|uh+|okay|ok|so|well|yeah|alright|all right|and|oh|mm-hmm|hmm|right|you know)"
    r"\s*[,.]?\s*)+",
    re.IGNORECASE,
)
_SMALL_TALK = re.compile(
    r"^(?:hi|hello|good (?:morning|afternoon)|thank|thanks|bye|nice to|you'?re welcome|sure|"
    r"okay|ok|yes|yeah|no|mm-hmm|uh-huh|alright|all right|great|perfect|sounds good)\b[\s\W]*$",
    re.IGNORECASE,
)
_SPEAKER_PREFIX = {"doctor": "Clinician", "patient": "Patient"}
_NARRATIVE = (
    "hpi",
    "past_medical_history",
    "family_history",
    "social_history",
    "objective",
    "assessment",
    "plan",
)


def _clean(text: str) -> str:
    text = _FILLER.sub("", mark_spoken_points(strip_tags(text)))
    text = re.sub(r"\s+([,.?!;])", r"\1", text)
    text = re.sub(r"\b(\w+)(?:,? \1\b)+", r"\1", text)  # ASR stutters: "i, i" -> "i"
    return text[:1].upper() + text[1:] if text else text


def _is_content(u: Utterance) -> bool:
    text = strip_tags(u.text)
    return len(text.split()) >= 4 and not _SMALL_TALK.match(text)


def _med_text(m: Medication) -> str:
    dose = f"{m.dose} (unit not said)" if m.dose and m.unit_assumed else m.dose
    parts = [m.name.capitalize(), dose, m.route, m.frequency]
    body = " ".join(p for p in parts if p)
    return f"{body} ({m.status})"


def _finding_text(f: Finding) -> str:
    return f"{f.name}, {f.duration}" if f.duration else f.name


_SYSTEM_OF = {name: system for system, names in SYSTEMS.items() for name in names}
_SYSTEM_ORDER = [*SYSTEMS, OTHER_SYSTEM]
_SITES = "|".join(PAIN_SITES)
_SITE_PAIN = re.compile(
    rf"\b(?:(left|right) )?({_SITES})s? (?:pain|hurts?)\b"
    rf"|\bpain in (?:my|the|your|his|her) (?:(left|right) )?({_SITES})s?\b",
    re.IGNORECASE,
)


def _site(f: Finding, utterances: list[Utterance]) -> tuple[str, str] | None:
    """(system, "left ankle pain") for a pain whose one body site its lines name, else None."""
    said = {
        (m.group(1) or m.group(3) or "", m.group(2) or m.group(4))
        for i in f.evidence
        for m in _SITE_PAIN.finditer(strip_tags(utterances[i].text))
    }
    if len({site.lower() for _, site in said}) != 1:
        return None
    sides = {side.lower() for side, _ in said if side}
    site = next(iter(said))[1].lower()
    name = f"{sides.pop()} {site} pain" if len(sides) == 1 else f"{site} pain"
    return PAIN_SITES[site], name


def _listed(names: list[str], last: str) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {last} {names[-1]}"


def review_of_systems(*, findings: list[Finding], utterances: list[Utterance]) -> list[NoteItem]:
    """One item per body system, as a note writes its review of systems: "Musculoskeletal:
    Endorses left ankle pain (for 2 days). Denies swelling." citing every line it rests on."""
    by_system: dict[str, tuple[list[str], list[str], set[int]]] = {}
    # "it's a throbbing pain" said of the ankle pain already told is not a second symptom.
    # A denied bare "pain" ("no other pain") beside an endorsed one says nothing either.
    placed = {
        id(f): site
        for f in findings
        if f.name in {"pain", "joint pain"} and (site := _site(f, utterances))
    }
    named_pain = any(
        not f.negated and (f.name.endswith(" pain") or id(f) in placed) for f in findings
    )
    for f in findings:
        system, name = _SYSTEM_OF.get(f.name, OTHER_SYSTEM), f.name
        if id(f) in placed:
            system, name = placed[id(f)]
        elif f.name == "pain" and named_pain:
            continue
        endorsed, denied, evidence = by_system.setdefault(system, ([], [], set()))
        if f.negated:
            denied.append(name)
        else:
            endorsed.append(f"{name} ({f.duration})" if f.duration else name)
        evidence.update(f.evidence)
    items = []
    for system in sorted(by_system, key=_SYSTEM_ORDER.index):
        endorsed, denied, evidence = by_system[system]
        said = []
        if endorsed:
            said.append(f"Endorses {_listed(list(dict.fromkeys(endorsed)), 'and')}.")
        # A "no" never takes back what the patient reported ("Endorses pain. Denies pain.").
        denied = [d for d in denied if not any(e == d or e.startswith(f"{d} (") for e in endorsed)]
        if denied:
            said.append(f"Denies {_listed(list(dict.fromkeys(denied)), 'or')}.")
        items.append(
            NoteItem(f"{system}: {' '.join(said)}", sorted(evidence), False, "symptoms", 0.85)
        )
    return items


class GroundedDrafter:
    """Rules for what is certain, the section classifier for the rest, then the grounding check."""

    engine_version = ENGINE_VERSION

    def __init__(self, *, use_model: bool = True) -> None:
        self._use_model = use_model

    def draft(self, *, utterances: list[Utterance]) -> DraftNote:
        """Draft a SOAP note from the transcript; every item cites its lines."""
        facts = extract_facts(utterances=utterances)
        sections: dict[str, list[NoteItem]] = {key: [] for key in SECTION_TITLES}
        self._fact_items(facts=facts, sections=sections, utterances=utterances)
        self._chief_complaint(utterances=utterances, facts=facts, sections=sections)
        self._narrative(utterances=utterances, sections=sections)
        note = DraftNote(sections, facts, self.engine_version)
        grounded, _ = ground_note(note=note, utterances=utterances)
        return grounded

    def _fact_items(
        self,
        *,
        facts: NoteFacts,
        sections: dict[str, list[NoteItem]],
        utterances: list[Utterance],
    ) -> None:
        for m in facts.medications:
            item = NoteItem(
                _med_text(m),
                list(m.evidence),
                m.dose is None or m.unit_assumed,
                "medication",
                0.9 if m.dose and not m.unit_assumed else 0.7,
            )
            # A doctor stopping a drug is a plan; a patient who stopped it is history.
            by_doctor = utterances[m.evidence[-1]].speaker == "doctor"
            if m.status in {"started", "continued"} or (m.status == "stopped" and by_doctor):
                sections["plan"].append(item)
            else:
                sections["medications"].append(item)
        for a in facts.allergies:
            text = f"{a.substance.capitalize()}" + (f": {a.reaction}" if a.reaction else "")
            sections["allergies"].append(
                NoteItem(text, list(a.evidence), a.reaction is None, "allergy", 0.9)
            )
        if facts.no_known_allergies:
            sections["allergies"].append(
                NoteItem("No known allergies", list(facts.no_known_allergies), False, "allergy")
            )
        symptoms = []
        for f in facts.findings:
            if f.experiencer == "family":
                sections["family_history"].append(
                    NoteItem(f"Family history of {f.name}", list(f.evidence), False, "finding")
                )
            elif f.experiencer != "patient":
                continue
            elif f.temporality == "historical" and not f.negated:
                sections["past_medical_history"].append(
                    NoteItem(f.name.capitalize(), list(f.evidence), False, "condition")
                )
            else:
                symptoms.append(f)
        sections["review_of_systems"] = review_of_systems(findings=symptoms, utterances=utterances)
        for v in facts.vitals:
            text = f"{v.kind.replace('_', ' ').capitalize()} {v.value} {v.unit or ''}".strip()
            sections["objective"].append(
                NoteItem(f"{text} (reported in conversation)", list(v.evidence), True, "vital", 0.8)
            )

    def _chief_complaint(
        self,
        *,
        utterances: list[Utterance],
        facts: NoteFacts,
        sections: dict[str, list[NoteItem]],
    ) -> None:
        for u in utterances:
            if u.speaker == "doctor" or not _is_content(u):
                continue
            question = preceding_question(utterances=utterances, index=u.index)
            if question is None or not is_opening_question(question.text):
                continue
            said = [
                f for f in facts.findings
                if u.index in f.evidence and not f.negated and f.experiencer == "patient"
            ]  # fmt: skip
            text = ", ".join(dict.fromkeys(_finding_text(f) for f in said)) or _clean(u.text)
            evidence = sorted({u.index, *(i for f in said for i in f.evidence)})
            sections["chief_complaint"].append(
                NoteItem(text.capitalize(), evidence, not said, "chief_complaint", 0.8)
            )
            return

    def _narrative(
        self, *, utterances: list[Utterance], sections: dict[str, list[NoteItem]]
    ) -> None:
        content = [u for u in utterances if _is_content(u)]
        labels: dict[int, tuple[str, float]] = {}
        unsure = []
        for u in content:
            ruled = rule_section(utterance=u)
            if ruled is not None:
                labels[u.index] = (ruled, 1.0)
            else:
                unsure.append(u)
        if self._use_model and unsure:
            from consults.notes.sections import classify

            for u, (label, prob) in zip(
                unsure, classify(utterances=utterances, targets=unsure), strict=True
            ):
                labels[u.index] = (label, prob)
        for u in content:
            label, prob = labels.get(u.index, ("none", 0.0))
            if label not in _NARRATIVE:
                continue
            if u.speaker == "doctor" and is_question(u.text):
                continue
            evidence = [u.index]
            text = _clean(u.text)
            if u.speaker != "doctor":
                q = preceding_question(utterances=utterances, index=u.index)
                if q is not None and answer_polarity(u.text) is not None:
                    # A bare yes/no means nothing without the question it answers.
                    evidence = [q.index, u.index]
                    text = f"Asked: {_clean(q.text)} Answer: {text}"
                else:
                    text = f"{_SPEAKER_PREFIX.get(u.speaker, 'Other')}: {text}"
            sections[label].append(
                NoteItem(text, evidence, prob < _REVIEW_BELOW, "narrative", round(prob, 3))
            )
