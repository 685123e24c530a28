"""Backend selection by dotted path; one drafter instance per process."""

from __future__ import annotations

import importlib
from functools import lru_cache

from consults.notes.types import NoteDrafter

DEFAULT_BACKEND = "consults.notes.engine.GroundedDrafter"


@lru_cache(maxsize=8)
def get_drafter(*, path: str = DEFAULT_BACKEND) -> NoteDrafter:
    """The drafter class at a dotted path, instantiated once per process."""
    module_name, _, attr = path.rpartition(".")
    drafter = getattr(importlib.import_module(module_name), attr)()
    if not isinstance(drafter, NoteDrafter):
        raise TypeError(f"{path} does not implement NoteDrafter")
    return drafter
