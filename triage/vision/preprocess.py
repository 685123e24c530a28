"""Image preprocessing shared by training and inference so the two never drift apart."""

from __future__ import annotations

import numpy as np
from PIL import Image

# Model input (height, width): 4:3 like HAM10000 (200x150) and most phone photos, and small
# enough that the 2-core CPU reference machine trains and serves it quickly.
INPUT_HEIGHT = 144
INPUT_WIDTH = 192
# EfficientNet-Lite was trained on inputs scaled to [-1, 1] (TF mean 127, std 128).
MEAN = 0.5
STD = 0.5


def to_landscape_crop(rgb: np.ndarray) -> np.ndarray:
    """Rotate portrait images to landscape and centre-crop to 4:3."""
    if rgb.shape[0] > rgb.shape[1]:
        # Skin lesions have no canonical orientation, so rotating loses nothing and keeps the
        # whole lesion instead of cropping the long side away.
        rgb = np.rot90(rgb)
    height, width = rgb.shape[:2]
    target_w = min(width, round(height * 4 / 3))
    target_h = min(height, round(target_w * 3 / 4))
    top = (height - target_h) // 2
    left = (width - target_w) // 2
    return rgb[top : top + target_h, left : left + target_w]


def model_input(
    rgb: np.ndarray, *, height: int = INPUT_HEIGHT, width: int = INPUT_WIDTH
) -> np.ndarray:
    """Return a float32 CHW array ready for the skin model from an RGB uint8 array."""
    cropped = np.ascontiguousarray(to_landscape_crop(rgb))
    image = Image.fromarray(cropped)
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.float32) / 255.0
    array = (array - MEAN) / STD
    return array.transpose(2, 0, 1).copy()
