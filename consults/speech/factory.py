"""Pick a Transcriber backend by dotted path and keep one instance per process per options."""

from __future__ import annotations

import importlib
import threading
from typing import Any

from consults.speech.types import Transcriber

DEFAULT_BACKEND = "consults.speech.faster_whisper_backend.FasterWhisperTranscriber"

_instances: dict[tuple[str, tuple[tuple[str, Any], ...]], Transcriber] = {}
_lock = threading.Lock()


def get_transcriber(*, backend: str = DEFAULT_BACKEND, **options: Any) -> Transcriber:
    """Return the cached backend instance for these options, creating it on first call."""
    key = (backend, tuple(sorted((k, _hashable(v)) for k, v in options.items())))
    with _lock:
        instance = _instances.get(key)
        if instance is None:
            instance = _import(backend)(**options)
            _instances[key] = instance
    return instance


def clear_transcribers() -> None:
    """Forget cached instances (tests, or after changing settings at run time)."""
    with _lock:
        _instances.clear()


def _import(dotted: str) -> type:
    module_name, _, attr = dotted.rpartition(".")
    if not module_name:
        raise ImportError(f"speech backend must be a dotted path, got {dotted!r}")
    return getattr(importlib.import_module(module_name), attr)


def _hashable(value: Any) -> Any:
    return str(value) if not isinstance(value, (str, int, float, bool, type(None))) else value
