"""Backend selection by dotted path (or a short name); one drafter instance per process."""

from __future__ import annotations

import importlib
from functools import lru_cache

from consults.notes.types import NoteDrafter

DEFAULT_BACKEND = "consults.notes.engine.GroundedDrafter"
LLM_BACKEND = "consults.notes.llm.LlmDrafter"
# NOTES_BACKEND may name a backend by these short names.
BACKENDS = {"rules": DEFAULT_BACKEND, "llm": LLM_BACKEND}


def resolve_backend(name: str) -> str:
    """The dotted path for a short name (``llm``, ``rules``) or a dotted path itself."""
    return BACKENDS.get(name.strip().lower(), name.strip()) if name else DEFAULT_BACKEND


@lru_cache(maxsize=8)
def get_drafter(*, path: str = DEFAULT_BACKEND, options: tuple = ()) -> NoteDrafter:
    """The drafter class at a dotted path (or short name), instantiated once per process.

    ``options`` are (name, value) pairs passed to the class, e.g. the NOTES_LLM_* settings.
    """
    module_name, _, attr = resolve_backend(path).rpartition(".")
    drafter = getattr(importlib.import_module(module_name), attr)(**dict(options))
    if not isinstance(drafter, NoteDrafter):
        raise TypeError(f"{path} does not implement NoteDrafter")
    return drafter
