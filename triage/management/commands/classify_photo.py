"""Assess photos from the command line: `manage.py classify_photo FILE [FILE ...] [--kind]`."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from triage.vision.imageio import ImageError, load_image
from triage.vision.quality import QualityReport, assess_quality
from triage.vision.skin import DEFAULT_BACKEND, assess_skin_image


def _quality(report: QualityReport) -> dict[str, Any]:
    return {
        "score": report.score,
        "passed": report.passed,
        "flags": [
            {"code": f.code, "message": f.message, "blocking": f.blocking} for f in report.flags
        ],
    }


def _skin(rgb: Any) -> dict[str, Any]:
    backend = getattr(settings, "VISION_SKIN_BACKEND", DEFAULT_BACKEND)
    result = assess_skin_image(rgb, backend=backend, explain=False)
    return {
        "quality": _quality(result.quality),
        "probabilities": {k: round(v, 4) for k, v in result.probabilities.items()},
        "label": result.label,
        "urgency": {"level": result.urgency.level, "reason": result.urgency.reason},
        "can_assess": result.can_assess,
        "reason": result.reason,
        "model_version": result.model_version,
    }


def _wound(rgb: Any) -> dict[str, Any]:
    if importlib.util.find_spec("triage.vision.wound") is None:
        raise CommandError("Wound analysis is not installed (triage.vision.wound is missing).")
    from triage.vision.wound import segment_wound

    result = segment_wound(rgb)
    return {
        "quality": _quality(assess_quality(rgb)),
        "area_px": result.area_px,
        "area_cm2": result.area_cm2,
        "wound_type": result.wound_type,
        "type_probabilities": result.type_probabilities,
        "can_assess": result.can_assess,
        "reason": result.reason,
        "model_version": result.model_version,
    }


class Command(BaseCommand):
    help = "Assess skin or wound photos and print one JSON object per file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", type=Path)
        parser.add_argument("--kind", choices=("skin", "wound"), default="skin")
        parser.add_argument("--json", action="store_true", help="compact one-line JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        indent = None if options["json"] else 2
        for path in options["files"]:
            record: dict[str, Any] = {"file": str(path), "kind": options["kind"]}
            try:
                image = load_image(path.read_bytes())
            except (ImageError, OSError) as error:
                record["error"] = str(error)
            else:
                analyse = _skin if options["kind"] == "skin" else _wound
                record.update(analyse(image.rgb))
            self.stdout.write(json.dumps(record, indent=indent))
