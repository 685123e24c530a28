"""Draft a note from transcript files: `manage.py draft_note FILE [FILE ...] [--json]`."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Draft a grounded SOAP note from plain-text transcripts ([doctor]/[patient] or D:/P:)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+")
        parser.add_argument("--json", action="store_true", help="one JSON object per file")

    def handle(self, *args: object, **options: object) -> None:
        from consults.notes import DEFAULT_BACKEND, draft_note, read_transcript

        # An empty setting means "the default engine".
        backend = getattr(settings, "NOTES_BACKEND", "") or DEFAULT_BACKEND
        for path in options["files"]:  # type: ignore[union-attr]
            note = draft_note(utterances=read_transcript(path=path), backend=backend)
            if options["json"]:
                payload = {
                    "file": path,
                    "engine_version": note.engine_version,
                    "sections": {
                        key: [
                            {
                                "text": item.text,
                                "evidence": item.evidence,
                                "needs_review": item.needs_review,
                                "kind": item.kind,
                            }
                            for item in items
                        ]
                        for key, items in note.sections.items()
                    },
                }
                self.stdout.write(json.dumps(payload))
            else:
                self.stdout.write(f"== {path}\n{note.to_text()}")
