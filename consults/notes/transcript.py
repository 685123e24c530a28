"""Parse plain-text transcripts (ACI-Bench `[doctor]` lines, OSCE `D:`/`P:` lines) to utterances."""

from __future__ import annotations

import re
from pathlib import Path

from consults.notes.types import Utterance

_SPEAKERS = {
    "doctor": "doctor",
    "d": "doctor",
    "dr": "doctor",
    "physician": "doctor",
    "patient": "patient",
    "p": "patient",
    "pt": "patient",
}
_BRACKET = re.compile(r"^\s*\[(?P<who>[a-z_ ]+)\]\s*(?P<text>.*)$", re.IGNORECASE)
_COLON = re.compile(r"^\s*(?P<who>[A-Za-z_0-9 ]{1,20}?)\s*:\s*(?P<text>.*)$")
_KNOWN_COLON = re.compile(
    r"^(?:d|p|dr|pt|doctor(?:_\d+)?|patient|physician|nurse|guest_\w+)$", re.IGNORECASE
)


def decode_transcript(*, data: bytes) -> str:
    """Decode transcript bytes; OSCE ships some files as UTF-16 with a BOM."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    # UTF-16 without a BOM still shows as every other byte NUL.
    if data[:200].count(b"\x00") > 40:
        return data.decode("utf-16-le" if data[1:2] == b"\x00" else "utf-16-be")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _speaker(label: str) -> str:
    key = label.strip().lower()
    # A second doctor or a guest clinician asks and plans like the doctor.
    if re.match(r"^(?:doctor_\d+|guest_clinic\w*)$", key):
        return "doctor"
    return _SPEAKERS.get(key, key.replace(" ", "_"))


def parse_transcript(*, text: str) -> list[Utterance]:
    """Split a plain-text transcript into utterances, one per speaker line."""
    utterances: list[Utterance] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        match = _BRACKET.match(line)
        if match is None:
            colon = _COLON.match(line)
            if colon and _KNOWN_COLON.match(colon.group("who").strip()):
                match = colon
        if match is not None:
            body = match.group("text").strip()
            utterances.append(
                Utterance(index=len(utterances), speaker=_speaker(match.group("who")), text=body)
            )
        elif utterances:
            # A wrapped line continues the previous speaker's turn.
            last = utterances[-1]
            utterances[-1] = Utterance(
                index=last.index, speaker=last.speaker, text=f"{last.text} {line}".strip()
            )
        else:
            utterances.append(Utterance(index=0, speaker="unknown", text=line))
    return utterances


def read_transcript(*, path: str | Path) -> list[Utterance]:
    """Read and parse a transcript file in any of the supported encodings."""
    return parse_transcript(text=decode_transcript(data=Path(path).read_bytes()))
