"""Bench the note backends side by side on ACI-Bench valid (held out), with two baselines.

Prints ROUGE-1/2/L/Lsum F1 against the reference notes, fact precision/recall (medications
name+dose, allergies, vitals, pertinent negatives) against facts read from the reference notes,
drugs named in the note that the transcript never names, sentences the grounding check
dropped, seconds per note (first section and complete note for the language model), model load
time, generation speed and peak memory.

    python bench/notes.py [--data DIR] [--backends rules,llm] [--limit N]

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
from consults.notes.backends import LLM_BACKEND, get_drafter, resolve_backend  # noqa: E402
from consults.notes.context import assert_span, sentences  # noqa: E402
from consults.notes.facts import _ALLERGEN, _SYMPTOMS, _concepts, extract_vitals  # noqa: E402
from consults.notes.reference import split_note  # noqa: E402
from consults.notes.transcript import parse_transcript  # noqa: E402
from consults.notes.types import DraftNote, Utterance  # noqa: E402

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


def vitals_in(text: str) -> set:
    """(kind, value) of every vital sign written in a text."""
    return {(v.kind, v.value) for v in extract_vitals(utterances=[Utterance(0, "doctor", text)])}


def drugs_in(text: str) -> set[str]:
    return {_norm_drug(text[s:e]) for _, s, e in meds.find_drug_spans(text)}


def _system_facts(text: str, facts: Facts) -> Facts:
    return {**facts, "vitals": vitals_in(text)}


def _draft_all(name: str, drafter, rows: list[dict]) -> dict:
    """Draft every visit with one backend; times, first sections and grounding drops."""
    out = {"notes": {}, "seconds": [], "first_section": [], "dropped": [], "notices": 0}
    load = None
    if hasattr(drafter, "generator"):
        t0 = time.perf_counter()
        drafter.generator()
        load = time.perf_counter() - t0
    for row in rows:
        utterances = parse_transcript(text=row["dialogue"])
        t0 = time.perf_counter()
        note = drafter.draft(utterances=utterances)
        out["seconds"].append(time.perf_counter() - t0)
        timings = getattr(drafter, "last_timings", [])
        if timings:
            out["first_section"].append(timings[0][1])
        out["dropped"].append(len(note.dropped))
        out["notices"] += bool(note.notices)
        out["notes"][row["encounter_id"]] = note
        print(
            f"  {name} {row['encounter_id']}: {out['seconds'][-1]:.1f}s, "
            f"dropped {len(note.dropped)}"
            + (f", notice: {note.notices[0]}" if note.notices else ""),
            flush=True,
        )
    out["load"] = load
    out["rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    model = getattr(drafter, "_generator", None)
    out["stats"] = dict(getattr(model, "stats", {}) or {})
    return out


def main() -> None:
    """Run the backends and both baselines over ACI-Bench valid and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--backends", default="rules,llm", help="short names or dotted paths")
    parser.add_argument("--limit", type=int, default=0, help="first N valid visits (0: all 20)")
    parser.add_argument("--model-path", default=None, help="a GGUF for the llm backend")
    parser.add_argument("--base-url", default=None, help="an OpenAI-compatible server")
    parser.add_argument(
        "--timeout", type=float, default=150.0, help="the llm backend's deadline per note (s)"
    )
    args = parser.parse_args()
    from rouge_score import rouge_scorer

    challenge = args.data / "aci-bench" / "challenge_data"
    valid = list(csv.DictReader((challenge / "valid.csv").open()))
    if args.limit:
        valid = valid[: args.limit]
    train = list(csv.DictReader((challenge / "train.csv").open()))
    kinds = ("rouge1", "rouge2", "rougeL", "rougeLsum")
    scorer = rouge_scorer.RougeScorer(list(kinds), use_stemmer=True)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]

    runs = {}
    for backend in backends:
        options: tuple = ()
        if resolve_backend(backend) == LLM_BACKEND:
            options = (
                ("model_path", args.model_path),
                ("base_url", args.base_url),
                ("timeout_s", args.timeout),
            )
        print(f"drafting {len(valid)} visits with {backend}", flush=True)
        runs[backend] = _draft_all(backend, get_drafter(path=backend, options=options), valid)

    systems = (*backends, "copy_transcript", "nearest_train_note")
    rouge = {s: {k: [] for k in kinds} for s in systems}
    tallies = {s: Tally() for s in systems}
    invented = dict.fromkeys(systems, 0)
    train_vecs = np.stack([_mean_embedding(r["dialogue"]) for r in train])
    for row in valid:
        ref = reference_facts(row["note"])
        ref["vitals"] = vitals_in(row["note"])
        said = drugs_in(row["dialogue"])
        nearest = train[int((train_vecs @ _mean_embedding(row["dialogue"])).argmax())]["note"]
        candidates = {
            "copy_transcript": (row["dialogue"], reference_facts(row["dialogue"])),
            "nearest_train_note": (nearest, reference_facts(nearest)),
        }
        for backend in backends:
            note = runs[backend]["notes"][row["encounter_id"]]
            candidates[backend] = (note.to_text(), engine_facts(note))
        for system, (text, facts) in candidates.items():
            scores = scorer.score(row["note"], text)
            for k in kinds:
                rouge[system][k].append(scores[k].fmeasure)
            facts = _system_facts(text, facts)
            for kind in ("medications", "med_names", "allergies", "vitals", "negatives"):
                tallies[system].add(kind, facts[kind], ref[kind])
            invented[system] += len(drugs_in(text) - said)

    print(f"\nACI-Bench valid: {len(valid)} visits")
    print("| system | R-1 | R-2 | R-L | R-Lsum | invented drugs |")
    print("|---|---|---|---|---|---|")
    for system in systems:
        r = {k: 100 * statistics.mean(v) for k, v in rouge[system].items()}
        print(
            f"| {system} | {r['rouge1']:.1f} | {r['rouge2']:.1f} | {r['rougeL']:.1f} | "
            f"{r['rougeLsum']:.1f} | {invented[system]} |"
        )
    for kind, label in (
        ("medications", "medications (name+dose)"),
        ("med_names", "medications (name)"),
        ("allergies", "allergies"),
        ("vitals", "vitals (written in the note)"),
        ("negatives", "pertinent negatives"),
    ):
        print(label)
        for system in systems:
            print(f"  {system:<20} {tallies[system].line(kind)}")
    for backend in backends:
        run = runs[backend]
        lat = sorted(run["seconds"])
        print(
            f"{backend}: s/note mean {statistics.mean(lat):.1f}, median "
            f"{statistics.median(lat):.1f}, max {lat[-1]:.1f} (first note {run['seconds'][0]:.1f});"
            f" dropped by grounding {sum(run['dropped'])} ({statistics.mean(run['dropped']):.1f}"
            f"/note); notes with a notice {run['notices']}; peak RSS so far {run['rss']:.0f} MiB"
        )
        if run["load"] is not None:
            print(f"  model load {run['load']:.2f}s")
        if run["first_section"]:
            first = sorted(run["first_section"])
            print(
                f"  first section after {statistics.median(first):.1f}s median, "
                f"{first[-1]:.1f}s max"
            )
        st = run["stats"]
        if st.get("generation_s"):
            print(
                f"  {st['tokens']} tokens generated at {st['tokens'] / st['generation_s']:.1f} "
                f"tok/s; time to first token {st['first_token_s'] / st['calls']:.2f}s per "
                f"section (prompt work, prefix reused)"
            )


if __name__ == "__main__":
    main()
