"""Shared helpers for the vision engine tests (no Django database needed)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "vision"


def jpeg_bytes(image: Image.Image, **save_args: object) -> bytes:
    """Encode a Pillow image as JPEG bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **save_args)
    return buffer.getvalue()


@pytest.fixture
def fixture_rgb():
    """Load a fixture image as an RGB uint8 array by file name."""

    def load(name: str) -> np.ndarray:
        return np.asarray(Image.open(FIXTURES / name).convert("RGB"))

    return load
