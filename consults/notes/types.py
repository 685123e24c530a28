"""Interface of the note-drafting engine: input and result dataclasses and the backend Protocol."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Literal, Protocol, runtime_checkable

Urgency = Literal["immediate", "very_urgent", "urgent", "standard", "non_urgent"]
MedStatus = Literal["started", "continued", "stopped", "historical", "current"]

# Section keys in the order a SOAP note is written; titles are for display only.
SECTION_TITLES: dict[str, str] = {
    "chief_complaint": "Chief complaint",
    "hpi": "History of present illness",
    "review_of_systems": "Review of systems",
    "medications": "Current medications",
    "allergies": "Allergies",
    "past_medical_history": "Past medical history",
    "family_history": "Family history",
    "social_history": "Social history",
    "objective": "Objective",
    "assessment": "Assessment",
    "plan": "Plan",
}
SOAP_GROUPS: dict[str, tuple[str, ...]] = {
    "subjective": (
        "chief_complaint",
        "hpi",
        "review_of_systems",
        "medications",
        "allergies",
        "past_medical_history",
        "family_history",
        "social_history",
    ),
    "objective": ("objective",),
    "assessment": ("assessment",),
    "plan": ("plan",),
}

# Sections of notes drafted before the review of systems replaced them (2026-12-07): a stored
# note that has them still shows and exports them, after the review of systems.
LEGACY_SECTION_TITLES: dict[str, str] = {
    "pertinent_positives": "Pertinent positives",
    "pertinent_negatives": "Pertinent negatives",
}


def stored_sections(sections: Mapping[str, object]) -> Iterator[tuple[str, str, str]]:
    """(SOAP group, key, title) of each section of a stored note, in the order a note shows them."""
    for group, keys in SOAP_GROUPS.items():
        for key in keys:
            yield group, key, SECTION_TITLES[key]
            if key == "review_of_systems":
                for old, title in LEGACY_SECTION_TITLES.items():
                    if old in sections:
                        yield group, old, title


@dataclass(frozen=True, slots=True)
class Utterance:
    """One speaker turn of a transcript; index is the line number the note cites."""

    index: int
    speaker: str
    text: str
    start_s: float | None = None
    end_s: float | None = None


@dataclass(frozen=True, slots=True)
class Evidence:
    """A cited transcript line with the exact span the item rests on, when one is known."""

    index: int
    quote: str


@dataclass(slots=True)
class NoteItem:
    """One statement of the note, with the transcript lines it rests on."""

    text: str
    evidence: list[int]
    needs_review: bool = False
    kind: str = "statement"
    confidence: float = 1.0


@dataclass(frozen=True, slots=True)
class Medication:
    name: str
    evidence: tuple[int, ...]
    dose: str | None = None
    route: str | None = None
    frequency: str | None = None
    status: MedStatus = "current"
    # The dose's unit was not said ("five hundred of metformin"): the physician confirms it.
    unit_assumed: bool = False


@dataclass(frozen=True, slots=True)
class Allergy:
    substance: str
    evidence: tuple[int, ...]
    reaction: str | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    """A symptom or condition mentioned about the patient, affirmed or denied."""

    name: str
    evidence: tuple[int, ...]
    negated: bool = False
    experiencer: str = "patient"
    temporality: str = "current"
    duration: str | None = None


@dataclass(frozen=True, slots=True)
class Vital:
    kind: str
    value: str
    evidence: tuple[int, ...]
    unit: str | None = None


@dataclass(slots=True)
class NoteFacts:
    medications: list[Medication] = field(default_factory=list)
    allergies: list[Allergy] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    vitals: list[Vital] = field(default_factory=list)
    no_known_allergies: tuple[int, ...] = ()

    @property
    def negatives(self) -> list[Finding]:
        return [f for f in self.findings if f.negated and f.experiencer == "patient"]


@dataclass(slots=True)
class DraftNote:
    """A drafted SOAP note: sections of grounded items plus the structured facts."""

    sections: dict[str, list[NoteItem]]
    facts: NoteFacts
    engine_version: str
    # Plain-language notices for the physician ("written by the rules engine because ...").
    notices: list[str] = field(default_factory=list)
    # Items the grounding check left out: {section, text, evidence, kind, reasons}.
    dropped: list[dict] = field(default_factory=list)

    def to_text(self) -> str:
        """Plain-text SOAP note, section by section, items with their cited lines."""
        out = []
        for group, keys in SOAP_GROUPS.items():
            out.append(group.upper())
            for key in keys:
                items = self.sections.get(key) or []
                if not items:
                    continue
                out.append(f"{SECTION_TITLES[key]}:")
                out.extend(f"- {i.text}" for i in items)
            out.append("")
        return "\n".join(out).strip() + "\n"

    def to_dict(self) -> dict:
        return {
            "engine_version": self.engine_version,
            "sections": {k: [asdict(i) for i in v] for k, v in self.sections.items()},
            "facts": asdict(self.facts),
            "notices": list(self.notices),
            "dropped": list(self.dropped),
        }


@dataclass(frozen=True, slots=True)
class RedFlag:
    phrase: str
    category: str
    urgency: Urgency


@runtime_checkable
class NoteDrafter(Protocol):
    """A backend that turns a transcript into a grounded draft note."""

    engine_version: str

    def draft(self, *, utterances: list[Utterance]) -> DraftNote: ...
