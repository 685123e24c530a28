"""Does patient metadata (age, sex, body site) help the skin classifier? A late-fusion check.

MetaBlock-style fusion needs retraining; the cheap question first: given the shipped model's
calibrated logits, does a small model on [logits + age + sex + body site] rank and label
validation lesions better than the same model on the logits alone? Both are multinomial
logistic regressions with balanced class weights, fitted and scored by 5-fold cross-validation
grouped by lesion on the validation split (the test split is only reported, never used to
choose). Prints balanced accuracy and melanoma AUC for both; with --write-report the figures go
into the model directory's skin_report.json ("metadata_fusion"), which the model card quotes
(regenerate it with `train_skin_model.py --card-only`).

    python scripts/skin_metadata_fusion.py --data /work/shared/data/skin/ham10000 \
        --model triage/vision/models/ --write-report
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_skin_model import (  # noqa: E402
    CLASSES,
    MEL,
    balanced_accuracy,
    group_by_lesion,
    lesion_mean,
    load_split,
    onnx_outputs,
)

MIN_GAIN = 0.02  # balanced accuracy on validation lesions that would make fusion worth wiring in


def metadata_features(rows: list[dict[str, str]], sites: list[str]) -> np.ndarray:
    """Age (scaled, with a missing flag), sex and body site one-hot."""
    out = []
    for row in rows:
        age = row.get("age") or ""
        sex = row.get("sex") or "unknown"
        site = row.get("localization") or "unknown"
        out.append(
            [
                float(age) / 100 if age else 0.5,
                0.0 if age else 1.0,
                float(sex == "male"),
                float(sex == "female"),
                *(float(site == s) for s in sites),
            ]
        )
    return np.array(out)


def cross_validated(features: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Out-of-fold class probabilities from a balanced multinomial logistic regression."""
    probs = np.zeros((len(labels), len(CLASSES)))
    folds = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=7)
    for fit, held in folds.split(features, labels, groups):
        model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000)
        model.fit(features[fit], labels[fit])
        probs[np.ix_(held, model.classes_)] = model.predict_proba(features[held])
    return probs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True, help="a shipped-format model dir")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "skin_cache2")
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--write-report", action="store_true")
    args = parser.parse_args()
    figures: dict[str, dict[str, float]] = {}

    data = load_split(args.data, cache=args.cache, seed=args.seed)
    rows, labels, images, splits = data.rows, data.labels, data.images, data.splits
    sites = sorted({row.get("localization") or "unknown" for row in rows})
    for split in ("val", "test"):
        idx = np.array(splits[split])
        _, logits = onnx_outputs(args.model, images[idx], threads=2)
        groups = group_by_lesion([rows[i]["lesion_id"] for i in idx])
        lesion_logits = lesion_mean(logits, groups)
        lesion_rows = [rows[idx[g[0]]] for g in groups]
        lesion_labels = np.array([labels[idx[g[0]]] for g in groups])
        lesion_ids = np.array([row["lesion_id"] for row in lesion_rows])
        meta = metadata_features(lesion_rows, sites)
        print(f"{split}: {len(groups)} lesions (5-fold CV grouped by lesion within the split)")
        for key, name, features in (
            ("logits", "logits only", lesion_logits),
            ("fused", "logits + age, sex, site", np.hstack([lesion_logits, meta])),
        ):
            probs = cross_validated(features, lesion_labels, lesion_ids)
            bacc = balanced_accuracy(lesion_labels, probs.argmax(1))
            auc = roc_auc_score(lesion_labels == MEL, probs[:, MEL])
            figures.setdefault(split, {})[key] = float(bacc)
            figures[split][f"{key}_melanoma_auc"] = float(auc)
            print(f"  {name:26s} balanced accuracy {bacc:.3f}  melanoma AUC {auc:.3f}")
    gain = figures["val"]["fused"] - figures["val"]["logits"]
    verdict = (
        f"no gain of 0.02 or more on validation ({gain:+.3f}), so the model does not use it."
        if gain < MIN_GAIN
        else f"a gain on validation ({gain:+.3f}); not wired into the shipped model yet."
    )
    print(verdict)
    if args.write_report:
        path = args.model / "skin_report.json"
        report = json.loads(path.read_text())
        report["metadata_fusion"] = {**figures, "verdict": verdict}
        path.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
