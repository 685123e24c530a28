"""Transcribe audio files with the configured speech engine: `manage.py transcribe FILE ...`."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from consults.speech import MODELS, CorruptAudio, UnsupportedAudio, get_transcriber
from consults.speech.factory import DEFAULT_BACKEND


class Command(BaseCommand):
    help = "Transcribe audio files (wav, mp3, m4a, ogg, webm, flac) with the speech engine."

    def add_arguments(self, parser) -> None:
        parser.add_argument("files", nargs="+", type=Path)
        parser.add_argument("--model", choices=MODELS, default=None)
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="one JSON object per line"
        )

    def handle(self, *args, files: list[Path], model: str | None, as_json: bool, **options) -> None:
        transcriber = get_transcriber(
            backend=getattr(settings, "SPEECH_BACKEND", DEFAULT_BACKEND),
            model=model or getattr(settings, "SPEECH_MODEL", "base"),
            compute_type=getattr(settings, "SPEECH_COMPUTE_TYPE", "int8"),
            beam_size=getattr(settings, "SPEECH_BEAM_SIZE", 5),
            cpu_threads=getattr(settings, "SPEECH_CPU_THREADS", 0),
            encoder_window=getattr(settings, "SPEECH_ENCODER_WINDOW", "fit"),
            cache_dir=getattr(settings, "SPEECH_MODEL_CACHE_DIR", None),
            language=getattr(settings, "SPEECH_LANGUAGE", None),
            languages=getattr(settings, "SPEECH_LANGUAGES", None),
            # --model picks a packaged model; without it the clinic's own directory, if set.
            model_path=None if model else getattr(settings, "SPEECH_MODEL_PATH", None),
            model_sha256=getattr(settings, "SPEECH_MODEL_SHA256", None),
        )
        failed = 0
        for path in files:
            try:
                transcript = transcriber.transcribe(audio=path.read_bytes())
            except (OSError, UnsupportedAudio, CorruptAudio) as exc:
                failed += 1
                self.stderr.write(f"{path}: {exc}")
                continue
            if as_json:
                self.stdout.write(_dumps({"file": str(path), **transcript.as_dict()}))
            else:
                self.stdout.write(
                    f"{path} [{transcript.duration_s:.1f}s audio, "
                    f"{transcript.processing_s:.1f}s]: {transcript.text}"
                )
        if failed:
            raise CommandError(f"{failed} of {len(files)} file(s) could not be transcribed")


def _dumps(value: dict) -> str:
    return json.dumps(value, ensure_ascii=False)
