"""Skin engine end to end on the shipped ONNX model; decision rules; integrity checks."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.vision.conftest import FIXTURES
from triage.vision.onnx_backend import MODEL_DIR, ModelIntegrityError, OnnxSkinClassifier
from triage.vision.skin import (
    CLASSES,
    URGENCY_LEVELS,
    assess_skin_image,
    assess_skin_photo,
    decide,
    get_classifier,
)

# Fixtures are HAM10000 test-split images (lesions never seen in training or calibration) that the
# shipped model classifies correctly; see tests/fixtures/vision/ATTRIBUTION.md.


@pytest.fixture(scope="module")
def classifier() -> OnnxSkinClassifier:
    return get_classifier()


def _probs(**values: float) -> dict[str, float]:
    rest = (1.0 - sum(values.values())) / (len(CLASSES) - len(values))
    return {name: values.get(name, rest) for name in CLASSES}


def test_probabilities_are_calibrated_distributions(classifier, fixture_rgb):
    for name in ("ham_nv.jpg", "ham_mel.jpg", "ham_bcc.jpg"):
        result = assess_skin_image(fixture_rgb(name), classifier=classifier)
        assert set(result.probabilities) == set(CLASSES)
        assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
        assert all(0.0 <= p <= 1.0 for p in result.probabilities.values())
        assert result.urgency.level in URGENCY_LEVELS
        assert result.model_version == classifier.model_version


def test_clear_naevus_is_not_urgent(classifier, fixture_rgb):
    result = assess_skin_image(fixture_rgb("ham_nv.jpg"), classifier=classifier)
    assert result.can_assess is True
    assert result.label == "nv"
    assert result.urgency.level == "non_urgent"
    assert result.probabilities["mel"] < classifier.mel_threshold


def test_melanoma_raises_urgency(classifier, fixture_rgb):
    result = assess_skin_image(fixture_rgb("ham_mel.jpg"), classifier=classifier)
    assert result.probabilities["mel"] >= classifier.mel_threshold
    assert result.urgency.level == "very_urgent"
    assert "melanoma" in result.urgency.reason


def test_heatmap_is_a_png_overlay(classifier, fixture_rgb):
    result = assess_skin_image(fixture_rgb("ham_mel.jpg"), classifier=classifier)
    image = Image.open(io.BytesIO(result.heatmap_png))
    assert image.format == "PNG" and image.mode == "RGB"
    assert max(image.size) == 384


def test_assess_skin_photo_takes_uploaded_bytes():
    result = assess_skin_photo((FIXTURES / "ham_nv.jpg").read_bytes(), explain=False)
    assert result.heatmap_png is None
    assert result.label == "nv"


def test_uncertain_prediction_is_never_a_confident_benign_label():
    can_assess, reason, label, urgency = decide(
        probabilities=_probs(nv=0.40, bkl=0.35), mel_threshold=0.3, min_confidence=0.6
    )
    assert can_assess is False and label is None
    assert "not confident" in reason
    assert urgency.level == "standard"


def test_melanoma_above_threshold_is_urgent_even_when_uncertain():
    can_assess, reason, label, urgency = decide(
        probabilities=_probs(nv=0.45, mel=0.35), mel_threshold=0.3, min_confidence=0.6
    )
    # Assessed, so the platform raises the visit's urgency; no label, since none is confident.
    assert can_assess is True and label is None
    assert "not confident" in reason
    assert urgency.level == "very_urgent"


def test_carcinoma_labels_are_referred_soon():
    for name in ("bcc", "akiec"):
        _, _, label, urgency = decide(
            probabilities=_probs(**{name: 0.9}), mel_threshold=0.3, min_confidence=0.6
        )
        assert label == name and urgency.level == "urgent"


def test_carcinoma_threshold_makes_a_benign_label_urgent():
    can_assess, _, label, urgency = decide(
        probabilities=_probs(nv=0.70, bcc=0.20),
        mel_threshold=0.3,
        min_confidence=0.6,
        urgent_thresholds={"bcc": 0.15, "akiec": 0.15},
    )
    assert can_assess is True and label == "nv"
    assert urgency.level == "urgent"
    assert "basal cell carcinoma" in urgency.reason


def test_melanoma_threshold_outranks_carcinoma_threshold():
    _, _, _, urgency = decide(
        probabilities=_probs(mel=0.35, akiec=0.30),
        mel_threshold=0.3,
        min_confidence=0.6,
        urgent_thresholds={"bcc": 0.15, "akiec": 0.15},
    )
    assert urgency.level == "very_urgent"


def test_out_of_distribution_photo_cannot_be_assessed():
    can_assess, reason, label, urgency = decide(
        probabilities=_probs(nv=0.95),
        mel_threshold=0.3,
        min_confidence=0.6,
        urgent_thresholds={"bcc": 0.15, "akiec": 0.15},
        in_distribution=False,
    )
    assert can_assess is False and label is None
    assert "unlike" in reason
    assert urgency.level == "standard"


def test_backend_reads_thresholds_and_input_size_from_its_config(classifier, fixture_rgb):
    config = json.loads((MODEL_DIR / "skin_model.json").read_text())
    assert classifier.input_size == (config["input"]["height"], config["input"]["width"])
    assert classifier.urgent_thresholds == config.get("urgent_thresholds")
    output = classifier.predict(fixture_rgb("ham_nv.jpg"))
    assert output.logsumexp is not None
    assert output.cam.shape[0] == len(CLASSES)


def test_model_config_without_new_thresholds_still_loads(tmp_path, fixture_rgb):
    config = json.loads((MODEL_DIR / "skin_model.json").read_text())
    config.pop("urgent_thresholds", None)
    config.pop("min_logsumexp", None)
    (tmp_path / config["onnx_file"]).symlink_to(MODEL_DIR / config["onnx_file"])
    (tmp_path / "skin_model.json").write_text(json.dumps(config))
    older = OnnxSkinClassifier(model_dir=tmp_path)
    assert older.urgent_thresholds is None and older.min_logsumexp is None
    result = assess_skin_image(fixture_rgb("ham_bcc.jpg"), classifier=older, explain=False)
    assert result.urgency.level in URGENCY_LEVELS


def test_tampered_model_file_is_refused(tmp_path):
    config = json.loads((MODEL_DIR / "skin_model.json").read_text())
    (tmp_path / config["onnx_file"]).symlink_to(MODEL_DIR / config["onnx_file"])
    config["sha256"] = "0" * 64
    (tmp_path / "skin_model.json").write_text(json.dumps(config))
    with pytest.raises(ModelIntegrityError):
        OnnxSkinClassifier(model_dir=tmp_path).session()


def test_shipped_sha256_file_matches_the_model():
    config = json.loads((MODEL_DIR / "skin_model.json").read_text())
    recorded = (MODEL_DIR / f"{config['onnx_file']}.sha256").read_text().split()[0]
    assert recorded == config["sha256"]


def test_importing_the_engine_does_not_load_onnxruntime():
    code = "import sys, triage.vision.skin; assert 'onnxruntime' not in sys.modules"
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
