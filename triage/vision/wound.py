"""Wound segmentation engine: wound mask, area, optional type, and the across-visit area trend.

Plain Python (no Django). The backend is chosen by dotted path; onnxruntime is imported only
inside the ONNX backend, whose session loads lazily once per process.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import math
import threading
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image, ImageFilter

MODELS_DIR = Path(__file__).resolve().parent / "models"
MODEL_NAME = "wound_seg_efflite0_unet"
DEFAULT_BACKEND = "triage.vision.wound.OnnxWoundBackend"
INPUT_SIZE = 224
THRESHOLD = 0.5
# Plausibility limits, as fractions of the photo. FUSeg ulcers often cover well under 1 % of a
# photo, so MIN only rejects a handful of stray pixels; above MAX the model has labelled the
# scene rather than a wound (a wound filling the frame lands here too, and a person should look).
MIN_WOUND_FRACTION = 0.0001
MAX_WOUND_FRACTION = 0.6
# Pieces under this share of the largest piece are specks beside a wound, not separate wounds.
MIN_COMPONENT_SHARE = 0.05
# More than this many sizeable pieces with no dominant one reads as a scattered, unreliable mask.
MAX_COMPONENTS = 8
MIN_LARGEST_SHARE = 0.4
# ±5 %/week of the baseline area: below the ~10 %/week (40 % in 4 weeks) reduction that predicts
# healing, and above what re-photographing the same wound changes the measured area by.
STABLE_BAND_PCT_PER_WEEK = 5.0
OUTLINE_RGB = (255, 255, 0)


@dataclass(frozen=True)
class WoundResult:
    """Segmentation of one photo; area_cm2 only with a scale reference or a stated area."""

    mask: np.ndarray
    area_px: int
    area_cm2: float | None
    area_source: str | None
    mask_png: bytes
    overlay_png: bytes
    wound_type: str | None
    type_probabilities: dict[str, float] | None
    can_assess: bool
    reason: str
    model_version: str


@dataclass(frozen=True)
class Trend:
    """Area change across visits, as percent of the first area per week."""

    direction: str
    percent_per_week: float | None
    total_change_percent: float | None
    weeks: float
    n_visits: int


class WoundBackend(Protocol):
    """Something that maps an RGB photo to a wound probability map and an embedding."""

    model_version: str

    def predict(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probability (float32, input H x W) and a 1-D image embedding."""
        ...

    def type_probabilities(self, embedding: np.ndarray) -> dict[str, float] | None:
        """Wound-type probabilities, or None when no type head ships."""
        ...


def _square_pad(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    side = max(h, w)
    if h == w:
        return rgb
    # Black padding, as in FUSeg's own zero-padded photos, keeps the aspect ratio undistorted.
    out = np.zeros((side, side, 3), dtype=np.uint8)
    out[:h, :w] = rgb
    return out


def prepare_input(rgb: np.ndarray, *, size: int = INPUT_SIZE) -> np.ndarray:
    """RGB uint8 H x W x 3 -> float32 1 x 3 x size x size in 0-255, square-padded."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected RGB uint8 H x W x 3, got {rgb.dtype} {rgb.shape}")
    im = Image.fromarray(_square_pad(rgb)).resize((size, size), Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(im, dtype=np.float32).transpose(2, 0, 1)[None])


def _restore_probability(prob: np.ndarray, *, height: int, width: int) -> np.ndarray:
    side = max(height, width)
    im = Image.fromarray(prob.astype(np.float32), mode="F")
    full = np.asarray(im.resize((side, side), Image.Resampling.BILINEAR))
    return full[:height, :width]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


_SESSION_LOCK = threading.Lock()
_SESSIONS: dict[tuple[Path, str | None], object] = {}


def _onnx_session(*, model_path: Path, expected_sha256: str | None):
    # One session per model file per process: creating one costs ~100 ms and ~50 MB.
    with _SESSION_LOCK:
        key = (model_path, expected_sha256)
        if key in _SESSIONS:
            return _SESSIONS[key]
        import onnxruntime as ort

        if expected_sha256 is not None and _sha256(model_path) != expected_sha256:
            raise RuntimeError(f"{model_path.name}: sha256 does not match the shipped digest")
        opts = ort.SessionOptions()
        # Inference runs in a Celery worker next to others; two threads keep latency low
        # without starving the neighbours.
        opts.intra_op_num_threads = 2
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(
            str(model_path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        _SESSIONS[key] = session
        return session


class OnnxWoundBackend:
    """EfficientNet-Lite0 U-Net exported to ONNX, run by onnxruntime on CPU."""

    def __init__(
        self,
        *,
        model_path: Path | None = None,
        expected_sha256: str | None = None,
        type_head_path: Path | None = None,
    ) -> None:
        self.model_path = (model_path or MODELS_DIR / f"{MODEL_NAME}.onnx").resolve()
        sha_file = self.model_path.with_name(self.model_path.name + ".sha256")
        if expected_sha256 is None and sha_file.exists():
            expected_sha256 = sha_file.read_text().split()[0]
        self.expected_sha256 = expected_sha256
        short = (expected_sha256 or "unverified")[:12]
        self.model_version = f"{self.model_path.stem}@{short}"
        head_path = type_head_path or self.model_path.with_name("wound_type_head.json")
        self._type_head = json.loads(head_path.read_text()) if head_path.exists() else None

    def predict(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probability (float32, input H x W) and the model's pooled embedding."""
        session = _onnx_session(model_path=self.model_path, expected_sha256=self.expected_sha256)
        prob, embedding = session.run(None, {"image": prepare_input(rgb)})
        h, w = rgb.shape[:2]
        return _restore_probability(prob[0, 0], height=h, width=w), embedding[0]

    def type_probabilities(self, embedding: np.ndarray) -> dict[str, float] | None:
        """Softmax of the shipped logistic-regression head, or None when none ships."""
        head = self._type_head
        if head is None:
            return None
        z = (embedding - np.asarray(head["mean"])) / np.asarray(head["std"])
        logits = np.asarray(head["coef"]) @ z + np.asarray(head["intercept"])
        if len(head["classes"]) == 2:
            # scikit-learn keeps one row for binary problems: it scores the second class.
            logits = np.array([0.0, float(logits[0])])
        p = np.exp(logits - logits.max())
        p /= p.sum()
        return {c: round(float(v), 4) for c, v in zip(head["classes"], p, strict=True)}


@lru_cache(maxsize=4)
def get_backend(dotted_path: str = DEFAULT_BACKEND) -> WoundBackend:
    """Instantiate (once per process) the backend class named by a dotted path."""
    module_name, _, class_name = dotted_path.rpartition(".")
    return getattr(importlib.import_module(module_name), class_name)()


def _components(mask: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """4-connected component labels and sizes (labels start at 1)."""
    labels = np.zeros(mask.shape, dtype=np.int32)
    sizes: list[int] = []
    h, w = mask.shape
    for y0, x0 in zip(*np.nonzero(mask), strict=True):
        if labels[y0, x0]:
            continue
        label = len(sizes) + 1
        labels[y0, x0] = label
        stack = [(y0, x0)]
        size = 0
        while stack:
            y, x = stack.pop()
            size += 1
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not labels[ny, nx]:
                    labels[ny, nx] = label
                    stack.append((ny, nx))
        sizes.append(size)
    return labels, sizes


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _overlay(rgb: np.ndarray, mask: np.ndarray) -> bytes:
    """The photo with the mask outline drawn in a bright colour."""
    width = max(3, round(max(mask.shape) / 150)) | 1
    m = Image.fromarray(mask.astype(np.uint8) * 255)
    edge = np.asarray(m.filter(ImageFilter.MaxFilter(width))) > np.asarray(
        m.filter(ImageFilter.MinFilter(width))
    )
    out = rgb.copy()
    out[edge] = OUTLINE_RGB
    return _png(Image.fromarray(out))


def _downsample(mask: np.ndarray) -> np.ndarray:
    # Component counting on a fixed grid keeps the pure-Python labelling fast on large photos.
    im = Image.fromarray(mask.astype(np.uint8) * 255)
    return np.asarray(im.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.NEAREST)) > 127


def _clean_and_assess(mask: np.ndarray) -> tuple[np.ndarray, bool, str]:
    """Drop specks beside the wound; say whether what is left is a plausible wound mask."""
    fraction = float(mask.mean())
    if fraction < MIN_WOUND_FRACTION:
        return mask, False, "no wound found in the photo"
    if fraction > MAX_WOUND_FRACTION:
        return (
            mask,
            False,
            f"mask covers {fraction:.0%} of the photo; retake with the wound in view",
        )
    small = _downsample(mask)
    labels, sizes = _components(small)
    if not sizes:
        return mask, False, "no wound found in the photo"
    min_px = MIN_COMPONENT_SHARE * max(sizes)
    drop = [i + 1 for i, size in enumerate(sizes) if size < min_px]
    kept = [size for size in sizes if size >= min_px]
    if len(kept) > MAX_COMPONENTS and max(kept) < MIN_LARGEST_SHARE * sum(kept):
        return (
            mask,
            False,
            f"mask is fragmented into {len(kept)} pieces; retake closer and in focus",
        )
    if drop:
        h, w = mask.shape
        im = Image.fromarray(np.isin(labels, drop).astype(np.uint8) * 255).resize(
            (w, h), Image.Resampling.NEAREST
        )
        # Grow the dropped specks by one grid cell so their sub-cell edges go too.
        grow = 2 * math.ceil(max(h, w) / INPUT_SIZE) + 1
        mask = mask & ~(np.asarray(im.filter(ImageFilter.MaxFilter(grow))) > 127)
    return mask, True, "ok"


def scale_from_points(
    start: tuple[float, float], end: tuple[float, float], *, length_cm: float
) -> float:
    """Pixels per centimetre from two points on the photo a known length apart."""
    if length_cm <= 0:
        raise ValueError("length_cm must be positive")
    return math.dist(start, end) / length_cm


def area_cm2_from_px(area_px: int, *, px_per_cm: float) -> float:
    """An area in photo pixels, in cm², given the photo's scale."""
    if px_per_cm <= 0:
        raise ValueError("px_per_cm must be positive")
    return round(area_px / px_per_cm**2, 3)


def _area_cm2(
    *, area_px: int, px_per_cm: float | None, stated_area_cm2: float | None
) -> tuple[float | None, str | None]:
    if px_per_cm is not None:
        return area_cm2_from_px(area_px, px_per_cm=px_per_cm), "scale_reference"
    if stated_area_cm2 is not None:
        # Without a reference in the photo pixels have no size; a measured area from the
        # clinician or patient is the only honest number.
        return float(stated_area_cm2), "stated"
    return None, None


def segment_wound(
    rgb: np.ndarray,
    *,
    px_per_cm: float | None = None,
    stated_area_cm2: float | None = None,
    backend: str = DEFAULT_BACKEND,
) -> WoundResult:
    """Segment the wound in an RGB uint8 photo and measure it."""
    engine = get_backend(backend)
    prob, embedding = engine.predict(rgb)
    mask, can_assess, reason = _clean_and_assess(prob > THRESHOLD)
    area_px = int(mask.sum())
    area_cm2, area_source = _area_cm2(
        area_px=area_px, px_per_cm=px_per_cm, stated_area_cm2=stated_area_cm2
    )
    if can_assess and area_source is None:
        reason = "ok; no scale reference, so no area in cm2"
    probs = engine.type_probabilities(embedding) if can_assess else None
    return WoundResult(
        mask=mask,
        area_px=area_px,
        area_cm2=area_cm2 if can_assess or area_source == "stated" else None,
        area_source=area_source,
        mask_png=_png(Image.fromarray(mask.astype(np.uint8) * 255)),
        overlay_png=_overlay(rgb, mask),
        wound_type=max(probs, key=probs.__getitem__) if probs else None,
        type_probabilities=probs,
        can_assess=can_assess,
        reason=reason,
        model_version=engine.model_version,
    )


def area_trend(areas: list[tuple[datetime, float]]) -> Trend:
    """Least-squares area slope per week as percent of the first visit's area."""
    points = sorted(areas, key=lambda p: p[0])
    if len(points) < 2:
        return Trend("insufficient_data", None, None, 0.0, len(points))
    t0, a0 = points[0]
    weeks = np.array([(t - t0).total_seconds() / (7 * 86400) for t, _ in points])
    area = np.array([a for _, a in points], dtype=float)
    span = float(weeks[-1])
    if span <= 0 or a0 <= 0:
        return Trend("insufficient_data", None, None, span, len(points))
    slope = float(np.polyfit(weeks, area, 1)[0])
    pct = 100.0 * slope / a0
    total = 100.0 * (area[-1] - a0) / a0
    if abs(pct) < STABLE_BAND_PCT_PER_WEEK:
        direction = "stable"
    else:
        direction = "healing" if pct < 0 else "worsening"
    return Trend(direction, round(pct, 2), round(total, 2), round(span, 2), len(points))
