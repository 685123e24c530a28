"""Prompt-reading and generation speed of llama.cpp builds, side by side.

Each build is a Python interpreter whose environment has its own ``llama_cpp`` (for example the
project's .venv and a venv holding a wheel built with other CMAKE_ARGS). Two builds cannot be
loaded in one process, so each round runs every interpreter once, one after the other, on the
same prompt (the start of an ACI-Bench train dialogue, 1,500 tokens) and greedy continuation
(96 tokens), 2 threads unless --threads:

    python bench/llm_speed.py .venv/bin/python /tmp/v512/bin/python [--rounds 2]

Prints tokens/s per build and round, and the first words each wrote (builds may differ in the
last bits of their arithmetic, so greedy text can differ a little).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "notes"
MODEL = Path.home() / ".cache" / "telehealth" / "notes" / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"

PROBE = r"""
import json, sys, time
import numpy as np
import llama_cpp
from llama_cpp import Llama

model, text, threads, prompt_n, gen_n = sys.argv[1], sys.argv[2], int(sys.argv[3]), 1500, 96
llm = Llama(model_path=model, n_ctx=4096, n_threads=threads, n_threads_batch=threads,
            n_batch=512, seed=0, verbose=False)
tokens = llm.tokenize(open(text).read().encode())[:prompt_n]
t = time.perf_counter(); llm.eval(tokens); prompt_s = time.perf_counter() - t
out = []
t = time.perf_counter()
for _ in range(gen_n):
    logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1),
                                   shape=(llm.n_vocab(),))
    out.append(int(logits.argmax()))
    llm.eval([out[-1]])
gen_s = time.perf_counter() - t
print(json.dumps({"prompt_tps": len(tokens) / prompt_s, "gen_tps": gen_n / gen_s,
                  "text": llm.detokenize(out).decode(errors="replace")[:60],
                  "system": llama_cpp.llama_print_system_info().decode()}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pythons", nargs="+", help="interpreters, each with its llama_cpp build")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default=str(MODEL))
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--visit", default="D2N063")
    args = parser.parse_args()
    train = Path(args.data) / "aci-bench" / "challenge_data" / "train.csv"
    row = next(r for r in csv.DictReader(train.open()) if r["encounter_id"] == args.visit)
    folder = tempfile.mkdtemp(prefix="llm_speed_")
    text = Path(folder) / f"{args.visit}.txt"
    text.write_text("Transcript:\n" + row["dialogue"] + "\n\nWrite the history of present illness.")
    print(f"{args.visit}, 1,500 prompt tokens then 96 greedy tokens, {args.threads} threads")
    for round_ in range(1, args.rounds + 1):
        for python in args.pythons:
            done = subprocess.run(
                [python, "-c", PROBE, args.model, str(text), str(args.threads)],
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(done.stdout.strip().splitlines()[-1])
            isa = " ".join(
                f for f in r["system"].split("|") if "AVX512 = 1" in f or "AVX2 = 1" in f
            )
            print(
                f"round {round_} {python}: prompt {r['prompt_tps']:.1f} tok/s, generation "
                f"{r['gen_tps']:.1f} tok/s [{isa.strip()}] {r['text']!r}"
            )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
