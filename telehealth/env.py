"""Read settings from the environment, with a ``*_FILE`` variant for container secrets."""

import os
from pathlib import Path


def env_str(name: str, default: str = "") -> str:
    """Return ``$NAME``, or the contents of the file named by ``$NAME_FILE``, or ``default``."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        return Path(file_path).read_text().strip()
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    """Return a boolean from ``$NAME``: 1/true/yes/on are true."""
    value = env_str(name, "")
    if not value:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    """Return an integer from ``$NAME``."""
    value = env_str(name, "")
    return int(value) if value else default


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    """Return a comma-separated list from ``$NAME``."""
    value = env_str(name, "")
    if not value:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]
