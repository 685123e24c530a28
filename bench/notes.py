"""Bench the note engine on ACI-Bench valid (held out from training) against two baselines.

Prints ROUGE-1/2/L F1 against the reference notes, fact precision/recall (medications
name+dose, allergies, pertinent negatives) against facts read from the reference notes,
per-transcript latency and peak memory.

    python bench/notes.py [--data DIR] [--backend DOTTED.PATH]

Reference-fact extractor (limits): it runs the same drug dictionary, allergen list, symptom
lexicon and ConText rules over the written note, so (1) a fact the note words in a way the
lexicon lacks is not counted (recall of the extractor, not of the engine); (2) medications are
every drug named anywhere in the note, including plan changes and drugs the note says were
stopped; (3) negatives are only lexicon symptoms in negated sentences ("denies fever, chills");
(4) a dose is attached when it follows the name within the same line. Numbers are therefore
approximate, comparable between systems, and not a clinical accuracy claim.
"""

from __future__ import annotations

import argparse
import csv
import re
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from consults.notes import meds  # noqa: E402
from consults.notes.backends import DEFAULT_BACKEND, get_drafter  # noqa: E402
from consults.notes.context import assert_span, sentences  # noqa: E402
from consults.notes.facts import _ALLERGEN, _SYMPTOMS, _concepts  # noqa: E402
from consults.notes.reference import split_note  # noqa: E402
from consults.notes.transcript import parse_transcript  # noqa: E402
from consults.notes.types import DraftNote  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "notes"
Facts = dict[str, set]


def _norm_drug(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower())


def reference_facts(text: str) -> Facts:
    """Medications (name, dose), allergies and negated symptoms read from a written note."""
    out: Facts = {"medications": set(), "med_names": set(), "allergies": set(), "negatives": set()}
    for key, line in split_note(text) if "\n" in text else [("hpi", text)]:
        for sentence in sentences(line) or [line]:
            allergy_line = key == "allergies" or re.search(r"allerg", sentence, re.I)
            for _, start, end in meds.find_drug_spans(sentence):
                surface = _norm_drug(sentence[start:end])
                if allergy_line:
                    out["allergies"].add(surface)
                    continue
                window = sentence[start : start + 60]
                out["medications"].add((surface, meds.parse_dose(window)))
                out["med_names"].add(surface)
            if allergy_line:
                for m in _ALLERGEN.finditer(sentence):
                    out["allergies"].add(_norm_drug(m.group(0)).rstrip("s"))
            for name, start, end in _concepts(sentence, _SYMPTOMS):
                a = assert_span(sentence=sentence, start=start, end=end)
                if a.negated and a.experiencer == "patient" and not a.hypothetical:
                    out["negatives"].add(name)
    out["allergies"] = {a.rstrip("s") for a in out["allergies"]}
    return out


def engine_facts(note: DraftNote) -> Facts:
    facts = note.facts
    return {
        "medications": {(_norm_drug(m.name), m.dose) for m in facts.medications},
        "med_names": {_norm_drug(m.name) for m in facts.medications},
        "allergies": {_norm_drug(a.substance).rstrip("s") for a in facts.allergies},
        "negatives": {f.name for f in facts.negatives},
    }


def _match_meds(pred: set, ref: set) -> tuple[int, int, int]:
    """TP counts a predicted (name, dose) whose name is in the reference with the same dose,
    or with no dose on either side."""
    ref_by_name: dict[str, set] = {}
    for name, dose in ref:
        ref_by_name.setdefault(name, set()).add(dose)
    tp = sum(1 for name, dose in pred if dose in ref_by_name.get(name, set()))
    ref_hit = sum(1 for name, dose in ref if any(p == (name, dose) for p in pred))
    return tp, len(pred), ref_hit


class Tally:
    def __init__(self) -> None:
        self.counts: dict[str, list[int]] = {}

    def add(self, kind: str, pred: set, ref: set) -> None:
        c = self.counts.setdefault(kind, [0, 0, 0, 0])
        if kind == "medications":
            tp, npred, ref_hit = _match_meds(pred, ref)
        else:
            tp = ref_hit = len(pred & ref)
            npred = len(pred)
        c[0] += tp
        c[1] += npred
        c[2] += ref_hit
        c[3] += len(ref)

    def line(self, kind: str) -> str:
        tp, npred, hit, nref = self.counts.get(kind, [0, 0, 0, 0])
        p = tp / npred if npred else float("nan")
        r = hit / nref if nref else float("nan")
        return f"P={p:.2f} R={r:.2f} (pred {npred}, ref {nref})"


NEAREST_LINES = 16  # lines per visit for the retrieval baseline: enough to find the topic


def _mean_embedding(text: str) -> np.ndarray:
    from consults.notes.embedding import embed

    lines = [u.text for u in parse_transcript(text=text)] or [text]
    # Evenly spaced lines keep the baseline's embedding cost at a fraction of the engine's.
    step = max(1, len(lines) // NEAREST_LINES)
    v = embed(texts=lines[::step][:NEAREST_LINES]).mean(axis=0)
    return v / np.linalg.norm(v)


def main() -> None:
    """Run the engine and both baselines over ACI-Bench valid and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--backend", default=DEFAULT_BACKEND)
    args = parser.parse_args()
    from rouge_score import rouge_scorer

    challenge = args.data / "aci-bench" / "challenge_data"
    valid = list(csv.DictReader((challenge / "valid.csv").open()))
    train = list(csv.DictReader((challenge / "train.csv").open()))
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    systems = ("engine", "copy_transcript", "nearest_train_note")
    rouge = {s: {k: [] for k in ("rouge1", "rouge2", "rougeL")} for s in systems}
    tallies = {s: Tally() for s in systems}
    latencies: list[float] = []

    drafter = get_drafter(path=args.backend)
    t0 = time.perf_counter()
    drafter.draft(utterances=parse_transcript(text=valid[0]["dialogue"]))
    first_call = time.perf_counter() - t0
    outputs = {}
    for row in valid:
        utterances = parse_transcript(text=row["dialogue"])
        t0 = time.perf_counter()
        note = drafter.draft(utterances=utterances)
        latencies.append(time.perf_counter() - t0)
        outputs[row["encounter_id"]] = note
    engine_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"engine drafted {len(outputs)} visits; latencies {[round(x, 2) for x in latencies]}")
    print(f"first call {first_call:.2f}s; peak RSS {engine_rss:.0f} MiB", flush=True)

    train_vecs = np.stack([_mean_embedding(r["dialogue"]) for r in train])
    for row in valid:
        ref = reference_facts(row["note"])
        nearest = train[int((train_vecs @ _mean_embedding(row["dialogue"])).argmax())]["note"]
        note = outputs[row["encounter_id"]]
        candidates = {
            "engine": (note.to_text(), engine_facts(note)),
            "copy_transcript": (row["dialogue"], reference_facts(row["dialogue"])),
            "nearest_train_note": (nearest, reference_facts(nearest)),
        }
        for system, (text, facts) in candidates.items():
            scores = scorer.score(row["note"], text)
            for k in rouge[system]:
                rouge[system][k].append(scores[k].fmeasure)
            for kind in ("medications", "med_names", "allergies", "negatives"):
                tallies[system].add(kind, facts[kind], ref[kind])

    print(f"ACI-Bench valid: {len(valid)} visits; backend {args.backend}")
    print(f"{'system':<20} {'R-1':>6} {'R-2':>6} {'R-L':>6}")
    for system in systems:
        r = {k: statistics.mean(v) for k, v in rouge[system].items()}
        print(f"{system:<20} {r['rouge1']:6.3f} {r['rouge2']:6.3f} {r['rougeL']:6.3f}")
    for kind, label in (
        ("medications", "medications (name+dose)"),
        ("med_names", "medications (name)"),
        ("allergies", "allergies"),
        ("negatives", "pertinent negatives"),
    ):
        print(label)
        for system in systems:
            print(f"  {system:<20} {tallies[system].line(kind)}")
    lat = sorted(latencies)
    print(
        f"engine latency per transcript: first call (loads models) {first_call:.2f}s; then "
        f"median {statistics.median(lat):.2f}s, max {lat[-1]:.2f}s over {len(lat)}"
    )
    print(f"peak RSS after engine runs: {engine_rss:.0f} MiB")
    print(
        f"peak RSS whole bench: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )


if __name__ == "__main__":
    main()
