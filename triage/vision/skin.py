"""Skin photo triage engine: quality gate, calibrated lesion classifier, urgency and heat-map.

Plain Python: no Django. The model backend is chosen by dotted path and imported on first use, so
onnxruntime is loaded only by the processes that classify photos.
"""

from __future__ import annotations

import functools
import importlib
import io
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from PIL import Image

from triage.vision.imageio import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, load_image
from triage.vision.preprocess import to_landscape_crop
from triage.vision.quality import QualityReport, assess_quality

DEFAULT_BACKEND = "triage.vision.onnx_backend.OnnxSkinClassifier"
CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
CLASS_NAMES = {
    "akiec": "actinic keratosis / intraepithelial carcinoma",
    "bcc": "basal cell carcinoma",
    "bkl": "benign keratosis",
    "df": "dermatofibroma",
    "mel": "melanoma",
    "nv": "melanocytic naevus (mole)",
    "vasc": "vascular lesion",
}
# The platform's Manchester-style levels, most to least urgent. The skin model never suggests
# "immediate": that level is for threats to life, which a lesion photo cannot show.
URGENCY_LEVELS = ("immediate", "very_urgent", "urgent", "standard", "non_urgent")
SOON = frozenset({"bcc", "akiec"})
HEATMAP_SIDE = 384


@dataclass(frozen=True)
class ModelOutput:
    """Raw backend answer: calibrated probabilities per class and class activation maps."""

    probabilities: dict[str, float]
    cam: np.ndarray  # (classes, h, w) on the model's landscape crop of the photo
    # Log-sum-exp of the calibrated logits: low when the photo is unlike the training data.
    logsumexp: float | None = None


class SkinClassifier(Protocol):
    """A calibrated 7-class HAM10000 classifier backend.

    Optional attributes, read with defaults so older backends keep working: `urgent_thresholds`
    (carcinoma class -> probability that makes a photo urgent) and `min_logsumexp` (below it the
    photo is out of distribution).
    """

    model_version: str
    mel_threshold: float
    min_confidence: float

    def predict(self, rgb: np.ndarray) -> ModelOutput:
        """Classify one RGB uint8 image."""
        ...


@dataclass(frozen=True)
class Urgency:
    """Suggested triage level (one of URGENCY_LEVELS) and the reason shown to the clinician."""

    level: str
    reason: str


@dataclass(frozen=True)
class SkinAssessment:
    """Everything the platform needs to store and show for one skin photo."""

    can_assess: bool
    reason: str | None
    label: str | None
    probabilities: dict[str, float]
    urgency: Urgency
    quality: QualityReport
    model_version: str
    heatmap_png: bytes | None = field(default=None, repr=False)


def import_string(dotted_path: str) -> type:
    """Import 'package.module.Name' (a Django-free twin of django.utils.module_loading)."""
    module_path, _, name = dotted_path.rpartition(".")
    return getattr(importlib.import_module(module_path), name)


@functools.cache
def get_classifier(backend: str = DEFAULT_BACKEND) -> SkinClassifier:
    """One backend instance per process and dotted path; it loads its model on first use."""
    return import_string(backend)()


def decide(
    *,
    probabilities: dict[str, float],
    mel_threshold: float,
    min_confidence: float,
    urgent_thresholds: dict[str, float] | None = None,
    in_distribution: bool = True,
) -> tuple[bool, str | None, str | None, Urgency]:
    """Turn calibrated probabilities into (can_assess, reason, label, urgency).

    The label is the calibrated argmax; urgency comes from per-class thresholds when the model
    ships them (melanoma, then carcinomas), so a likely-benign label can still be urgent.
    """
    label = max(probabilities, key=probabilities.__getitem__)
    confident = in_distribution and probabilities[label] >= min_confidence
    reason = None
    if not in_distribution:
        reason = (
            "The photo looks unlike the lesion photos the model was trained on; a clinician must "
            "review it."
        )
    elif not confident:
        reason = (
            f"The model is not confident (highest probability {probabilities[label]:.0%} is below "
            f"{min_confidence:.0%}); a clinician must review the photo."
        )
    flagged = [
        name
        for name, threshold in (urgent_thresholds or {}).items()
        if probabilities[name] >= threshold
    ]
    # Malignant classes are checked first and regardless of confidence: an uncertain answer must
    # never hide a probability above a threshold chosen on validation for high sensitivity.
    if probabilities["mel"] >= mel_threshold:
        urgency = Urgency(
            level="very_urgent",
            reason=f"Possible melanoma (probability {probabilities['mel']:.0%}): refer urgently.",
        )
    elif flagged:
        name = max(flagged, key=probabilities.__getitem__)
        urgency = Urgency(
            level="urgent",
            reason=f"Possible {CLASS_NAMES[name]} (probability {probabilities[name]:.0%}): "
            "refer soon for assessment.",
        )
    elif not confident:
        urgency = Urgency(level="standard", reason="Uncertain result: clinician review needed.")
    elif label in SOON:
        urgency = Urgency(
            level="urgent", reason=f"Possible {CLASS_NAMES[label]}: refer soon for assessment."
        )
    else:
        urgency = Urgency(
            level="non_urgent",
            reason=f"Looks like a {CLASS_NAMES[label]}; routine review, sooner if it changes.",
        )
    # A photo above a malignant threshold counts as assessed even when no label is confident:
    # the platform only raises the visit's urgency for assessed photos, and it must here.
    malignant = probabilities["mel"] >= mel_threshold or bool(flagged)
    can_assess = confident or (in_distribution and malignant)
    return can_assess, reason, label if confident else None, urgency


def heatmap_png(rgb: np.ndarray, cam: np.ndarray) -> bytes:
    """Overlay a class activation map on the model's view of the photo; PNG bytes."""
    view = Image.fromarray(np.ascontiguousarray(to_landscape_crop(rgb)))
    scale = HEATMAP_SIDE / max(view.size)
    view = view.resize((round(view.width * scale), round(view.height * scale)))
    heat = np.maximum(cam, 0.0)
    heat = heat / heat.max() if heat.max() > 0 else heat
    heat_image = Image.fromarray((heat * 255).astype(np.uint8)).resize(
        view.size, Image.Resampling.BICUBIC
    )
    h = np.asarray(heat_image, dtype=np.float32)[..., None] / 255.0
    # Transparent-to-red ramp: strong evidence is red, weak evidence leaves the photo visible.
    red = np.array([255.0, 32.0, 0.0], dtype=np.float32)
    base = np.asarray(view, dtype=np.float32)
    alpha = 0.6 * h
    blended = (base * (1 - alpha) + red * alpha).clip(0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    # Default zlib level: optimize=True costs about a second per image for a few kB saved.
    Image.fromarray(blended).save(buffer, format="PNG")
    return buffer.getvalue()


def assess_skin_image(
    rgb: np.ndarray,
    *,
    classifier: SkinClassifier | None = None,
    backend: str = DEFAULT_BACKEND,
    explain: bool = True,
) -> SkinAssessment:
    """Assess a decoded RGB uint8 photo: quality gate, then the classifier."""
    model = classifier or get_classifier(backend)
    quality = assess_quality(rgb)
    if not quality.passed:
        messages = " ".join(flag.message for flag in quality.flags if flag.blocking)
        return SkinAssessment(
            can_assess=False,
            reason=messages,
            label=None,
            probabilities={},
            urgency=Urgency(
                level="standard",
                reason="The photo could not be assessed automatically; a clinician will review it "
                "and may ask for a new photo.",
            ),
            quality=quality,
            model_version=model.model_version,
        )
    output = model.predict(rgb)
    min_logsumexp = getattr(model, "min_logsumexp", None)
    can_assess, reason, label, urgency = decide(
        probabilities=output.probabilities,
        mel_threshold=model.mel_threshold,
        min_confidence=model.min_confidence,
        urgent_thresholds=getattr(model, "urgent_thresholds", None),
        in_distribution=min_logsumexp is None
        or output.logsumexp is None
        or output.logsumexp >= min_logsumexp,
    )
    # Explain the class that drives the decision: melanoma when it raised the urgency.
    explained = "mel" if urgency.level == "very_urgent" else (label or "mel")
    heatmap = heatmap_png(rgb, output.cam[CLASSES.index(explained)]) if explain else None
    return SkinAssessment(
        can_assess=can_assess,
        reason=reason,
        label=label,
        probabilities=output.probabilities,
        urgency=urgency,
        quality=quality,
        model_version=model.model_version,
        heatmap_png=heatmap,
    )


def assess_skin_photo(
    data: bytes,
    *,
    backend: str = DEFAULT_BACKEND,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    explain: bool = True,
) -> SkinAssessment:
    """Load uploaded bytes safely and assess them; raises triage.vision.imageio.ImageError."""
    image = load_image(data, max_bytes=max_bytes, max_pixels=max_pixels)
    return assess_skin_image(image.rgb, backend=backend, explain=explain)
