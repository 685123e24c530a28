"""Note-drafting engine: transcript in, grounded SOAP draft out. Plain Python, no Django."""

from __future__ import annotations

from consults.notes.backends import DEFAULT_BACKEND, get_drafter
from consults.notes.grounding import GroundingProblem, check_item, ground_note
from consults.notes.red_flags import detect_red_flags
from consults.notes.transcript import decode_transcript, parse_transcript, read_transcript
from consults.notes.types import (
    SECTION_TITLES,
    SOAP_GROUPS,
    Allergy,
    DraftNote,
    Evidence,
    Finding,
    Medication,
    NoteDrafter,
    NoteFacts,
    NoteItem,
    RedFlag,
    Utterance,
    Vital,
)


def draft_note(*, utterances: list[Utterance], backend: str = DEFAULT_BACKEND) -> DraftNote:
    """Draft a grounded SOAP note with the backend at a dotted path."""
    return get_drafter(path=backend).draft(utterances=utterances)


__all__ = [
    "DEFAULT_BACKEND",
    "SECTION_TITLES",
    "SOAP_GROUPS",
    "Allergy",
    "DraftNote",
    "Evidence",
    "Finding",
    "GroundingProblem",
    "Medication",
    "NoteDrafter",
    "NoteFacts",
    "NoteItem",
    "RedFlag",
    "Utterance",
    "Vital",
    "check_item",
    "decode_transcript",
    "detect_red_flags",
    "draft_note",
    "get_drafter",
    "ground_note",
    "parse_transcript",
    "read_transcript",
]
