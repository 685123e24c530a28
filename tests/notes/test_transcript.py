"""Transcript parsing: both line formats, wrapped lines, UTF-16 files."""

from __future__ import annotations

from pathlib import Path

from consults.notes.transcript import decode_transcript, parse_transcript, read_transcript


def test_bracket_format_is_parsed_with_indices() -> None:
    lines = parse_transcript(text="[doctor] hi , how are you ?\n[patient] fine .\n")
    assert [(u.index, u.speaker, u.text) for u in lines] == [
        (0, "doctor", "hi , how are you ?"),
        (1, "patient", "fine ."),
    ]


def test_colon_format_blank_lines_and_wrapped_text() -> None:
    text = "D: Any pain?\n\nP: Yes, in my knee\nwhen I walk.\nDoctor_2: Okay.\n"
    lines = parse_transcript(text=text)
    assert [u.speaker for u in lines] == ["doctor", "patient", "doctor"]
    assert lines[1].text == "Yes, in my knee when I walk."


def test_utf16_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "visit.txt"
    path.write_bytes("D: Any fever?\r\nP: No.\r\n".encode("utf-16"))
    lines = read_transcript(path=path)
    assert [u.text for u in lines] == ["Any fever?", "No."]


def test_utf16_without_bom_is_decoded() -> None:
    data = ("D: Hello there, what brings you in today?\n" * 3).encode("utf-16-le")
    assert decode_transcript(data=data).startswith("D: Hello")
