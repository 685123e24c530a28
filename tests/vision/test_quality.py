"""Photo quality gate: real dermatoscopic photos pass, synthetic failures get the right flag."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from triage.vision.quality import assess_quality
from triage.vision.skin import ModelOutput, assess_skin_image

FIXTURE_PHOTOS = ["ham_nv.jpg", "ham_mel.jpg", "ham_bcc.jpg"]


class ExplodingClassifier:
    """Fails the test if the model is consulted for a photo the quality gate should stop."""

    model_version = "test"
    mel_threshold = 0.5
    min_confidence = 0.5

    def predict(self, rgb: np.ndarray) -> ModelOutput:
        raise AssertionError("the classifier must not run on a failed photo")


def _blurred(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(3)))


def _dark(rgb: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.float32) * 0.12).astype(np.uint8)


def _overexposed(rgb: np.ndarray) -> np.ndarray:
    return np.clip(rgb.astype(np.float32) * 2.5 + 60, 0, 255).astype(np.uint8)


def _solid(_: np.ndarray) -> np.ndarray:
    return np.full((300, 400, 3), (205, 160, 140), dtype=np.uint8)


def _document(_: np.ndarray) -> np.ndarray:
    page = Image.new("RGB", (800, 600), "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=22)
    for line in range(20):
        draw.text(
            (20, 20 + line * 28),
            "Apply the cream twice daily for two weeks.",
            fill="black",
            font=font,
        )
    return np.asarray(page)


@pytest.mark.parametrize("name", FIXTURE_PHOTOS)
def test_real_dermatoscopic_photos_pass(fixture_rgb, name):
    report = assess_quality(fixture_rgb(name))
    assert report.passed, report.flags
    assert 0.5 <= report.score <= 1.0


def test_large_sharp_photo_passes_because_blur_is_measured_at_a_fixed_scale(fixture_rgb):
    big = np.asarray(Image.fromarray(fixture_rgb("ham_nv.jpg")).resize((2000, 1500)))
    assert assess_quality(big).passed


@pytest.mark.parametrize(
    ("make", "flag"),
    [
        (_blurred, "blurred"),
        (_dark, "too_dark"),
        (_overexposed, "overexposed"),
        (_solid, "uniform"),
        (_document, "document"),
    ],
)
def test_bad_photos_get_the_right_flag_and_cannot_be_assessed(fixture_rgb, make, flag):
    rgb = make(fixture_rgb("ham_nv.jpg"))
    report = assess_quality(rgb)
    assert flag in {f.code for f in report.flags}
    assert not report.passed
    assert report.score < 0.5
    assert all(f.message.endswith(".") for f in report.flags)

    result = assess_skin_image(rgb, classifier=ExplodingClassifier())
    assert result.can_assess is False
    assert result.label is None and result.probabilities == {}
    assert result.reason


def test_green_non_skin_scene_is_out_of_scope():
    rng = np.random.default_rng(0)
    grass = np.clip(rng.normal((60, 140, 50), 30, (300, 400, 3)), 0, 255).astype(np.uint8)
    report = assess_quality(grass)
    assert "not_skin" in {f.code for f in report.flags}


@pytest.mark.parametrize("tone", [(241, 194, 167), (198, 134, 95), (141, 85, 54), (75, 45, 30)])
def test_skin_check_accepts_light_to_dark_skin_tones(tone):
    rng = np.random.default_rng(1)
    skin = np.clip(rng.normal(tone, 12, (300, 400, 3)), 0, 255).astype(np.uint8)
    report = assess_quality(skin)
    assert "not_skin" not in {f.code for f in report.flags}
