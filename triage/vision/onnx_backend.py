"""ONNX Runtime backend for the skin classifier; the only module that imports onnxruntime."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from triage.vision.preprocess import model_input
from triage.vision.skin import CLASSES, ModelOutput

MODEL_DIR = Path(__file__).resolve().parent / "models"
CONFIG_NAME = "skin_model.json"


class ModelIntegrityError(RuntimeError):
    """The model file on disk does not match its recorded sha256."""


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class OnnxSkinClassifier:
    """Calibrated HAM10000 classifier on onnxruntime; the session is created on first predict."""

    def __init__(self, *, model_dir: Path = MODEL_DIR, threads: int | None = None) -> None:
        config = json.loads((model_dir / CONFIG_NAME).read_text())
        if tuple(config["classes"]) != CLASSES:
            raise ModelIntegrityError(f"unexpected classes {config['classes']}")
        self.model_path = model_dir / config["onnx_file"]
        self.expected_sha256 = config["sha256"]
        self.model_version: str = config["model_version"]
        self.mel_threshold: float = float(config["mel_threshold"])
        self.min_confidence: float = float(config["min_confidence"])
        # Older model files have neither: carcinoma urgency then follows the argmax label.
        urgent = config.get("urgent_thresholds")
        self.urgent_thresholds: dict[str, float] | None = (
            {name: float(value) for name, value in urgent.items()} if urgent else None
        )
        floor = config.get("min_logsumexp")
        self.min_logsumexp: float | None = None if floor is None else float(floor)
        self.input_size = (int(config["input"]["height"]), int(config["input"]["width"]))
        self.threads = threads
        self._session: Any = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        import onnxruntime as ort

        actual = file_sha256(self.model_path)
        if actual != self.expected_sha256:
            raise ModelIntegrityError(
                f"{self.model_path.name} sha256 {actual} != expected {self.expected_sha256}"
            )
        options = ort.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = self.threads
        return ort.InferenceSession(
            str(self.model_path), options, providers=["CPUExecutionProvider"]
        )

    def session(self) -> Any:
        """The process's inference session, created (and verified) on first use."""
        with self._lock:
            # A session inherited across fork() is not safe to use: build a fresh one per process.
            if self._session is None or self._pid != os.getpid():
                self._session = self._load()
                self._pid = os.getpid()
            return self._session

    def predict(self, rgb: np.ndarray) -> ModelOutput:
        """Classify one RGB uint8 image."""
        height, width = self.input_size
        batch = model_input(rgb, height=height, width=width)[None]
        probs, logits, cam = self.session().run(None, {"image": batch})
        probabilities = {name: float(p) for name, p in zip(CLASSES, probs[0], strict=True)}
        top = float(logits[0].max())
        logsumexp = top + float(np.log(np.exp(logits[0] - top).sum()))
        return ModelOutput(probabilities=probabilities, cam=cam[0], logsumexp=logsumexp)
