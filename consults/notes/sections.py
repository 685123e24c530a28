"""Utterance-to-section classifier: a logistic layer over MiniLM embeddings of a turn in context."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from consults.notes.context import is_question
from consults.notes.types import Utterance

MODEL_DIR = Path(__file__).parent / "models"
MODEL_FILE = MODEL_DIR / "note_sections.npz"
CARD_FILE = MODEL_DIR / "note_sections.json"


def features(
    *, utterances: list[Utterance], targets: list[Utterance], vecs: np.ndarray
) -> np.ndarray:
    """Feature rows for targets: own embedding, previous turn's, speaker, question, position.

    `vecs` holds one embedding per utterance of the transcript, in order.
    """
    n = max(len(utterances), 1)
    rows = []
    for u in targets:
        prev = vecs[u.index - 1] if u.index > 0 else np.zeros(vecs.shape[1], dtype=np.float32)
        extra = np.array(
            [u.speaker == "doctor", u.speaker == "doctor" and is_question(u.text), u.index / n],
            dtype=np.float32,
        )
        rows.append(np.concatenate([vecs[u.index], prev, extra]))
    return np.stack(rows) if rows else np.zeros((0, 2 * vecs.shape[1] + 3), dtype=np.float32)


@lru_cache(maxsize=1)
def _model() -> tuple[np.ndarray, np.ndarray, list[str]]:
    card = json.loads(CARD_FILE.read_text())
    digest = hashlib.sha256(MODEL_FILE.read_bytes()).hexdigest()
    if digest != card["sha256"]:
        raise RuntimeError(f"{MODEL_FILE} sha256 {digest} does not match its card")
    data = np.load(MODEL_FILE, allow_pickle=False)
    return data["coef"], data["intercept"], [str(c) for c in data["classes"]]


def classify(*, utterances: list[Utterance], targets: list[Utterance]) -> list[tuple[str, float]]:
    """(section, probability) for each target utterance of a transcript."""
    if not targets:
        return []
    from consults.notes.embedding import embed

    vecs = embed(texts=[u.text for u in utterances])
    coef, intercept, classes = _model()
    logits = features(utterances=utterances, targets=targets, vecs=vecs) @ coef.T + intercept
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    best = probs.argmax(axis=1)
    return [(classes[i], float(probs[r, i])) for r, i in enumerate(best)]
