"""Reading reference notes (ACI-Bench / MTS-Dialog style) for training and the bench only."""

from __future__ import annotations

import re

# Reference-note headers -> the engine's section keys; None means the lines are split below.
HEADER_SECTIONS: dict[str, str | None] = {
    "CHIEF COMPLAINT": "chief_complaint", "CC": "chief_complaint",
    "HISTORY OF PRESENT ILLNESS": "hpi", "HPI": "hpi", "REVIEW OF SYSTEMS": "hpi", "ROS": "hpi",
    "MEDICAL HISTORY": "past_medical_history", "PAST HISTORY": "past_medical_history",
    "PAST MEDICAL HISTORY": "past_medical_history", "SURGICAL HISTORY": "past_medical_history",
    "PAST SURGICAL HISTORY": "past_medical_history",
    "MEDICATIONS": "medications", "CURRENT MEDICATIONS": "medications",
    "ALLERGIES": "allergies", "FAMILY HISTORY": "family_history",
    "SOCIAL HISTORY": "social_history",
    "PHYSICAL EXAM": "objective", "PHYSICAL EXAMINATION": "objective", "EXAM": "objective",
    "VITALS": "objective", "VITALS REVIEWED": "objective", "RESULTS": "objective",
    "ASSESSMENT": "assessment", "IMPRESSION": "assessment",
    "PLAN": "plan", "INSTRUCTIONS": "plan", "PROCEDURE": "plan",
    "ASSESSMENT AND PLAN": None,
}  # fmt: skip
MTS_SECTIONS: dict[str, str] = {
    "GENHX": "hpi", "CC": "chief_complaint", "PASTMEDICALHX": "past_medical_history",
    "PASTSURGICAL": "past_medical_history", "ALLERGY": "allergies", "ROS": "hpi",
    "MEDICATIONS": "medications", "ASSESSMENT": "assessment", "DIAGNOSIS": "assessment",
    "EXAM": "objective", "IMAGING": "objective", "LABS": "objective", "PLAN": "plan",
    "DISPOSITION": "plan", "FAM/SOCHX": "family_or_social",
}  # fmt: skip
_HEADER = re.compile(r"^([A-Z][A-Z /&]+?):?\s*$")
_PLAN_LINE = re.compile(
    r"(?:medical treatment|additional testing|patient education|counsel|follow[- ]?up|"
    r"recommend|will (?:order|start|continue|refer|obtain|schedule)|prescri|referr|return)",
    re.IGNORECASE,
)


def split_note(note: str) -> list[tuple[str, str]]:
    """(section key, line) for each non-empty line of a reference note."""
    out: list[tuple[str, str]] = []
    section: str | None = "hpi"
    for raw in note.splitlines():
        line = raw.strip()
        if not line:
            continue
        header = _HEADER.match(line)
        if header and header.group(1).strip() in HEADER_SECTIONS:
            section = HEADER_SECTIONS[header.group(1).strip()]
            continue
        key = section
        if key is None:
            key = "plan" if _PLAN_LINE.search(line) else "assessment"
        out.append((key, line.lstrip("•-* ").strip()))
    return out


def note_sentences(note: str) -> list[tuple[str, str]]:
    """(section key, sentence) pairs of a reference note."""
    out = []
    for key, line in split_note(note):
        for sent in re.split(r"(?<=[.!?])\s+", line):
            if len(sent.split()) >= 2:
                out.append((key, sent))
    return out
