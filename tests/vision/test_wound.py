"""Wound engine: shipped ONNX model on real photos, plausibility checks, area and trend."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from triage.vision import wound
from triage.vision.wound import OnnxWoundBackend, area_trend, segment_wound

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "wounds"
# Held-out FUSeg photos (never trained on). The floor sits well under the model's held-out mean
# Dice so that a library upgrade does not flake it, yet far above what a broken model scores.
REAL_CASES = ("fuseg_0021", "fuseg_0302", "fuseg_0151")
DICE_FLOOR = 0.7


def _rgb(name: str) -> np.ndarray:
    return np.asarray(Image.open(FIXTURES / f"{name}.jpg").convert("RGB"))


def _truth(name: str) -> np.ndarray:
    return np.asarray(Image.open(FIXTURES / f"{name}_mask.png").convert("L")) > 127


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float(np.logical_and(a, b).sum()) / float(a.sum() + b.sum())


@pytest.mark.slow
@pytest.mark.parametrize("name", REAL_CASES)
def test_shipped_model_outlines_real_foot_ulcer(name: str) -> None:
    rgb = _rgb(name)
    result = segment_wound(rgb)
    assert result.can_assess, result.reason
    assert result.mask.shape == rgb.shape[:2]
    assert result.mask.dtype == bool
    assert _dice(result.mask, _truth(name)) > DICE_FLOOR
    assert result.area_px == int(result.mask.sum())
    assert result.area_cm2 is None
    assert result.model_version.startswith("wound_seg_efflite0_unet@")


@pytest.mark.slow
def test_mask_and_overlay_png_decode_to_photo_size() -> None:
    rgb = _rgb(REAL_CASES[0])
    result = segment_wound(rgb)
    mask = np.asarray(Image.open(io.BytesIO(result.mask_png))) > 127
    overlay = Image.open(io.BytesIO(result.overlay_png))
    assert np.array_equal(mask, result.mask)
    assert overlay.size == (rgb.shape[1], rgb.shape[0])
    assert not np.array_equal(np.asarray(overlay.convert("RGB")), rgb)


@pytest.mark.slow
@pytest.mark.parametrize("colour", [(128, 128, 128), (200, 150, 130), (255, 255, 255)])
def test_solid_colour_photo_cannot_be_assessed(colour: tuple[int, int, int]) -> None:
    rgb = np.full((300, 400, 3), colour, dtype=np.uint8)
    result = segment_wound(rgb)
    assert not result.can_assess
    assert result.reason
    assert result.area_cm2 is None


@pytest.mark.slow
def test_area_cm2_follows_px_per_cm() -> None:
    result = segment_wound(_rgb(REAL_CASES[1]), px_per_cm=20.0)
    assert result.area_source == "scale_reference"
    assert result.area_cm2 == pytest.approx(result.area_px / 400.0, abs=1e-3)


@pytest.mark.slow
def test_stated_area_is_passed_through_without_scale() -> None:
    result = segment_wound(_rgb(REAL_CASES[1]), stated_area_cm2=3.5)
    assert result.area_cm2 == 3.5
    assert result.area_source == "stated"


@pytest.mark.slow
def test_tampered_model_digest_is_refused() -> None:
    backend = OnnxWoundBackend(expected_sha256="0" * 64)
    with pytest.raises(RuntimeError, match="sha256"):
        backend.predict(np.zeros((64, 64, 3), dtype=np.uint8))


class _FakeBackend:
    model_version = "fake@0"

    def __init__(self, prob: np.ndarray) -> None:
        self.prob = prob

    def predict(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.prob, np.zeros(4, dtype=np.float32)

    def type_probabilities(self, embedding: np.ndarray) -> dict[str, float] | None:
        return None


def _with_fake(monkeypatch: pytest.MonkeyPatch, prob: np.ndarray) -> None:
    monkeypatch.setattr(wound, "get_backend", lambda _path: _FakeBackend(prob))


def test_mask_covering_the_frame_cannot_be_assessed(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_fake(monkeypatch, np.full((200, 200), 0.9, dtype=np.float32))
    result = segment_wound(np.zeros((200, 200, 3), dtype=np.uint8), px_per_cm=10.0)
    assert not result.can_assess
    assert "covers" in result.reason
    assert result.area_cm2 is None


def test_scattered_mask_cannot_be_assessed(monkeypatch: pytest.MonkeyPatch) -> None:
    prob = np.zeros((224, 224), dtype=np.float32)
    prob[5::20, 5::20] = 1.0  # 12 x 12 equal dots, none dominant
    prob[6::20, 5::20] = 1.0
    _with_fake(monkeypatch, prob)
    result = segment_wound(np.zeros((224, 224, 3), dtype=np.uint8))
    assert not result.can_assess
    assert "fragmented" in result.reason


def test_specks_beside_a_wound_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    prob = np.zeros((224, 224), dtype=np.float32)
    prob[100:140, 100:140] = 1.0
    prob[10, 10] = 1.0
    _with_fake(monkeypatch, prob)
    result = segment_wound(np.zeros((224, 224, 3), dtype=np.uint8))
    assert result.can_assess
    assert result.area_px == 40 * 40


def _series(*areas: float, days: int = 7) -> list[tuple[datetime, float]]:
    start = datetime(2026, 1, 5, 9, 0)
    return [(start + timedelta(days=days * i), a) for i, a in enumerate(areas)]


def test_trend_two_visits_one_week_apart_is_percent_change() -> None:
    trend = area_trend(_series(10.0, 8.0))
    assert trend.percent_per_week == pytest.approx(-20.0)
    assert trend.total_change_percent == pytest.approx(-20.0)
    assert trend.direction == "healing"
    assert trend.weeks == pytest.approx(1.0)


def test_trend_is_per_week_whatever_the_visit_spacing() -> None:
    trend = area_trend(_series(10.0, 14.0, days=14))
    assert trend.percent_per_week == pytest.approx(20.0)
    assert trend.direction == "worsening"


def test_trend_fits_all_visits_in_any_order() -> None:
    points = _series(10.0, 9.0, 8.0, 7.0)
    trend = area_trend(list(reversed(points)))
    assert trend.percent_per_week == pytest.approx(-10.0)
    assert trend.n_visits == 4


def test_small_changes_are_stable() -> None:
    assert area_trend(_series(10.0, 10.3, 9.9)).direction == "stable"


def test_one_visit_is_not_a_trend() -> None:
    trend = area_trend(_series(5.0))
    assert trend.direction == "insufficient_data"
    assert trend.percent_per_week is None
