"""Photo quality check: blur, exposure, framing and "is this skin", with patient-facing reasons.

Thresholds were calibrated on HAM10000 (every real photo should pass) and on synthetic failures
(blurred, dark, overexposed, solid colour, printed text); see docs/vision.md for the figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFilter

ANALYSIS_SIDE = 192  # every check runs at this long side, which makes the blur measure scale-free
MIN_SIDE = 96

BLUR_MIN_SHARPNESS = 0.17  # finest-scale share of detail energy; HAM10000 0.5th pct 0.21
DARK_MAX_MEAN = 0.16  # mean luminance in [0, 1]
DARK_MAX_SHARE = 0.60  # share of pixels below 0.08 luminance
BRIGHT_MAX_CLIPPED = 0.35  # share of pixels at >= 0.97 luminance
UNIFORM_MIN_CONTRAST = 0.03  # luminance std / mean; HAM10000 0.5th pct ~0.05
SKIN_MIN_SHARE = 0.10  # share of skin-coloured pixels; HAM10000 0.5th pct ~0.15
DOCUMENT_MIN_PAPER = 0.45  # share of bright, colourless pixels ...
DOCUMENT_MIN_INK = 0.02  # ... plus this share of grey, colourless pixels looks like print
SUBJECT_MIN_AREA = 0.01
SUBJECT_MAX_OFFSET = 0.30  # centroid distance from centre, as a share of the half-diagonal

# What each check means to the clinician reading the result: (when it failed, when borderline).
CHECK_WORDS = {
    "low_resolution": ("too small to see detail", "low resolution"),
    "too_dark": ("too dark", "rather dark"),
    "overexposed": ("overexposed", "bright, some detail lost"),
    "uniform": ("shows no detail", "little detail"),
    "blurred": ("blurred", "slightly soft focus"),
    "document": ("looks like a document or screenshot", "partly like a document"),
    "not_skin": ("little or no skin in view", "little skin in view"),
    "subject_too_small": ("the spot is small in the frame", "the spot is small in the frame"),
    "not_centred": ("the spot is off-centre", "the spot is a little off-centre"),
}


@dataclass(frozen=True)
class QualityFlag:
    """One problem found; `blocking` flags stop an automatic assessment."""

    code: str
    message: str
    blocking: bool = True


@dataclass(frozen=True)
class QualityReport:
    """Overall score in [0, 1] (the weakest check), flags, per-check scores and measurements."""

    score: float
    flags: tuple[QualityFlag, ...]
    measures: dict[str, float] = field(default_factory=dict)
    checks: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when no blocking flag was raised."""
        return not any(flag.blocking for flag in self.flags)


def _resize(rgb: np.ndarray) -> np.ndarray:
    image = Image.fromarray(rgb)
    scale = ANALYSIS_SIDE / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return np.asarray(image.resize(size, Image.Resampling.BILINEAR), dtype=np.float32) / 255.0


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def sharpness(gray: np.ndarray) -> float:
    """Laplacian energy relative to local contrast, so dim or low-contrast skin is not 'blurred'."""
    if min(gray.shape) < 3:  # no interior pixel to take a Laplacian of
        return 0.0
    image = Image.fromarray((gray * 255).astype(np.uint8))
    smooth = np.asarray(image.filter(ImageFilter.GaussianBlur(2)), dtype=np.float32) / 255.0
    lap = (
        -4 * gray[1:-1, 1:-1] + gray[:-2, 1:-1] + gray[2:, 1:-1] + gray[1:-1, :-2] + gray[1:-1, 2:]
    )
    detail = gray - smooth
    return float(lap.var() / (detail.var() * 8 + 1e-4))


def skin_share(rgb: np.ndarray) -> float:
    """Share of pixels in a broad skin chroma box (YCrCb, after Chai and Ngan 1999, widened)."""
    r, g, b = rgb[..., 0] * 255, rgb[..., 1] * 255, rgb[..., 2] * 255
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cr = (r - y) * 0.713 + 128
    cb = (b - y) * 0.564 + 128
    # Chroma, not brightness, separates skin from other surfaces, so the box holds for light to
    # very dark skin; it was widened to keep the bluish-grey dermatoscopic images of HAM10000, and
    # starts above neutral grey (Cr 128) so that white paper and grey walls do not count.
    mask = (cr >= 131) & (cr <= 190) & (cb >= 65) & (cb <= 145) & (y >= 15)
    return float(mask.mean())


def _subject(rgb: np.ndarray) -> tuple[float, float]:
    """Area share and centroid offset of the region that differs most from the image border."""
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    distance = np.linalg.norm(rgb - np.median(border, axis=0), axis=2)
    threshold = max(0.12, float(np.percentile(distance, 50)))
    mask = distance > threshold
    area = float(mask.mean())
    if area == 0.0:
        return 0.0, 0.0
    rows, cols = np.nonzero(mask)
    height, width = mask.shape
    dy = (rows.mean() - (height - 1) / 2) / (height / 2)
    dx = (cols.mean() - (width - 1) / 2) / (width / 2)
    return area, float(np.hypot(dx, dy) / np.sqrt(2))


def measure(rgb: np.ndarray, *, size: tuple[int, int] | None = None) -> dict[str, float]:
    """Raw measurements used by `assess_quality` (exposed for calibration)."""
    small = _resize(rgb)
    gray = _luminance(small)
    saturation = small.max(axis=2) - small.min(axis=2)
    colourless = saturation < 0.08
    area, offset = _subject(small)
    return {
        "min_side": float(min(size or rgb.shape[:2])),
        "sharpness": sharpness(gray),
        "mean_luminance": float(gray.mean()),
        "dark_share": float((gray < 0.08).mean()),
        "clipped_share": float((gray >= 0.97).mean()),
        "luminance_std": float(gray.std()),
        "skin_share": skin_share(small),
        "paper_share": float(((gray > 0.75) & colourless).mean()),
        "ink_share": float(((gray < 0.6) & colourless).mean()),
        "contrast": float(gray.std() / max(float(gray.mean()), 0.05)),
        "subject_area": area,
        "subject_offset": offset,
    }


def _ramp(value: float, bad: float, good: float) -> float:
    """1 at or beyond `good`, 0 at or beyond `bad`, linear between."""
    if good == bad:
        return 1.0
    return float(np.clip((value - bad) / (good - bad), 0.0, 1.0))


def assess_quality(rgb: np.ndarray, *, size: tuple[int, int] | None = None) -> QualityReport:
    """Check an RGB uint8 photo and say, in plain words, what to fix.

    ``size`` is the photo's (width, height) when ``rgb`` is a reduced copy of it: every check
    but the resolution one runs at ANALYSIS_SIDE anyway.
    """
    m = measure(rgb, size=size)
    flags: list[QualityFlag] = []
    scores: dict[str, float] = {}

    def check(ok: bool, score: float, code: str, message: str, *, blocking: bool = True) -> None:
        scores[code] = round(score, 3)
        if not ok:
            flags.append(QualityFlag(code=code, message=message, blocking=blocking))

    check(
        m["min_side"] >= MIN_SIDE,
        _ramp(m["min_side"], 32, MIN_SIDE),
        "low_resolution",
        "The photo is too small. Please send the original photo from your camera.",
    )
    check(
        m["mean_luminance"] > DARK_MAX_MEAN and m["dark_share"] < DARK_MAX_SHARE,
        min(_ramp(m["mean_luminance"], 0.05, 0.25), _ramp(-m["dark_share"], -0.9, -0.3)),
        "too_dark",
        "The photo is too dark. Please take it in daylight or with more light.",
    )
    check(
        m["clipped_share"] < BRIGHT_MAX_CLIPPED,
        _ramp(-m["clipped_share"], -0.6, -0.1),
        "overexposed",
        "The photo is too bright. Please avoid the flash and direct sunlight.",
    )
    if m["contrast"] < UNIFORM_MIN_CONTRAST:
        check(
            False, 0.0, "uniform", "The photo shows no detail. Please photograph the affected skin."
        )
        # Sharpness, skin colour and framing mean nothing on a flat image.
        return QualityReport(score=0.0, flags=tuple(flags), measures=m, checks=scores)
    check(
        m["sharpness"] >= BLUR_MIN_SHARPNESS,
        _ramp(m["sharpness"], BLUR_MIN_SHARPNESS / 2, BLUR_MIN_SHARPNESS * 2),
        "blurred",
        "The photo is blurred. Hold the phone still, about 10 cm away, and let it focus.",
    )
    document = (
        m["paper_share"] >= DOCUMENT_MIN_PAPER
        and m["ink_share"] >= DOCUMENT_MIN_INK
        and m["skin_share"] < SKIN_MIN_SHARE
    )
    check(
        not document,
        0.0 if document else 1.0,
        "document",
        "This looks like a document or screenshot. Please photograph the skin itself.",
    )
    check(
        m["skin_share"] >= SKIN_MIN_SHARE,
        _ramp(m["skin_share"], 0.05, 0.35),
        "not_skin",
        "We could not see skin in this photo. Please photograph the affected skin close up.",
    )
    check(
        m["subject_area"] >= SUBJECT_MIN_AREA,
        _ramp(m["subject_area"], 0.0, 0.05),
        "subject_too_small",
        "The skin problem looks very small. Please move closer.",
        blocking=False,
    )
    check(
        m["subject_offset"] <= SUBJECT_MAX_OFFSET,
        _ramp(-m["subject_offset"], -0.6, -SUBJECT_MAX_OFFSET),
        "not_centred",
        "Please put the skin problem in the middle of the photo.",
        blocking=False,
    )
    return QualityReport(
        score=round(float(min(scores.values())), 3), flags=tuple(flags), measures=m, checks=scores
    )
