"""Benchmark skin photo triage on this CPU: shipped vs previous model, ONNX Runtime vs torch eager.

Each run is in its own spawned process so peak memory is attributed correctly. --baseline-rev
takes the previous model files from git (e.g. the commit before the model was replaced) so the old
and new models are timed side by side on the same photos.
Usage: python bench/photo_triage.py [--data DIR] [--n 40] [--threads 1] [--baseline-rev REV]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_DATA = Path("/work/shared/data/skin/ham10000")
# Written by scripts/train_skin_model.py next to its feature cache.
DEFAULT_TORCH_STATE = Path(tempfile.gettempdir()) / "skin_cache2" / "skin_torch_state.pt"
MODEL_DIR = ROOT / "triage/vision/models"
MODEL_FILES = ("skin_model.json", "skin_effnetlite0.onnx")


def _photos(data: Path, n: int) -> list[bytes]:
    files = sorted((data / "images").glob("*.jpg"))[:n]
    if files:
        return [f.read_bytes() for f in files]
    # No data set here: synthesize skin-toned noise photos so the bench still runs.
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        base = np.array([200, 150, 130]) + rng.normal(0, 20, (150, 200, 3))
        buffer = io.BytesIO()
        Image.fromarray(base.clip(0, 255).astype("uint8")).save(buffer, format="JPEG")
        out.append(buffer.getvalue())
    return out


def _summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "mean_ms": 1000 * statistics.fmean(times),
        "p50_ms": 1000 * ordered[len(ordered) // 2],
        "p95_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))],
        "images_per_s": len(times) / sum(times),
    }


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def baseline_dir(rev: str) -> Path:
    """Write the skin model files as of a git revision into a temporary directory."""
    target = Path(tempfile.mkdtemp(prefix="skin_baseline_"))
    for name in MODEL_FILES:
        blob = subprocess.run(
            ["git", "show", f"{rev}:triage/vision/models/{name}"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout
        (target / name).write_bytes(blob)
    return target


def run_onnx(photos: list[bytes], threads: int, model_dir: str) -> dict[str, object]:
    """Model-only and full-pipeline timings with onnxruntime."""
    from triage.vision.imageio import load_image
    from triage.vision.onnx_backend import OnnxSkinClassifier
    from triage.vision.skin import assess_skin_image

    classifier = OnnxSkinClassifier(model_dir=Path(model_dir), threads=threads)
    rgbs = [load_image(p).rgb for p in photos]
    started = time.perf_counter()
    classifier.predict(rgbs[0])
    load_s = time.perf_counter() - started
    model_times = []
    for rgb in rgbs:
        started = time.perf_counter()
        classifier.predict(rgb)
        model_times.append(time.perf_counter() - started)
    pipeline_times = []
    for photo in photos:
        started = time.perf_counter()
        assess_skin_image(load_image(photo).rgb, classifier=classifier, explain=True)
        pipeline_times.append(time.perf_counter() - started)
    # tracemalloc slows every allocation, so memory is traced on a separate, untimed pass.
    tracemalloc.start()
    for photo in photos[:5]:
        assess_skin_image(load_image(photo).rgb, classifier=classifier, explain=True)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "backend": "onnxruntime",
        "model_version": classifier.model_version,
        "input": list(classifier.input_size),
        "first_call_s": load_s,
        "model": _summary(model_times),
        "pipeline": _summary(pipeline_times),
        "python_alloc_peak_mb": traced_peak / 2**20,
        "peak_rss_mb": _peak_rss_mb(),
    }


def run_torch(photos: list[bytes], threads: int, state: Path) -> dict[str, object]:
    """Model-only timings of the same network in torch eager mode."""
    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT / "scripts"))
    from train_skin_model import Exported, build_backbone

    from triage.vision.imageio import load_image
    from triage.vision.preprocess import model_input

    torch.set_num_threads(threads)
    config = json.loads((MODEL_DIR / "skin_model.json").read_text())
    size = config["input"]["height"], config["input"]["width"]
    started = time.perf_counter()
    net = build_backbone()
    weights = "trained"
    if state.exists():
        net.load_state_dict(torch.load(state, map_location="cpu"))
    else:
        # Weights do not change the work done, so latency stays comparable without them.
        weights = "imagenet backbone, untrained head"
    model = Exported(net, config["temperature"]).eval()
    batches = [
        torch.from_numpy(model_input(load_image(p).rgb, height=size[0], width=size[1])[None])
        for p in photos
    ]
    with torch.inference_mode():
        model(batches[0])
        load_s = time.perf_counter() - started
        times = []
        for batch in batches:
            started = time.perf_counter()
            np.asarray(model(batch)[0])
            times.append(time.perf_counter() - started)
    return {
        "backend": "torch eager",
        "weights": weights,
        "first_call_s": load_s,
        "model": _summary(times),
        "peak_rss_mb": _peak_rss_mb(),
    }


def _in_child(target: str, *args: object) -> dict[str, object]:
    context = mp.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(globals()[target], args)


def main() -> None:
    """Run both backends in separate processes and print a side-by-side table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads per worker")
    parser.add_argument("--torch-state", type=Path, default=DEFAULT_TORCH_STATE)
    parser.add_argument(
        "--baseline-rev", help="git revision whose skin model is timed beside the shipped one"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    photos = _photos(args.data, args.n)
    results = [_in_child("run_onnx", photos, args.threads, str(MODEL_DIR))]
    results[0]["backend"] = "onnx shipped"
    if args.baseline_rev:
        baseline = _in_child("run_onnx", photos, args.threads, str(baseline_dir(args.baseline_rev)))
        baseline["backend"] = "onnx baseline"
        results.append(baseline)
    results.append(_in_child("run_torch", photos, args.threads, args.torch_state))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{len(photos)} photos, {args.threads} thread(s) per worker process")
    print(
        f"{'backend':14} {'stage':9} {'mean ms':>8} {'p50 ms':>8} {'p95 ms':>8} {'img/s':>7}"
        f" {'peak RSS MB':>12} {'first call s':>12}"
    )
    for result in results:
        stages = [("model", result["model"])]
        if "pipeline" in result:
            stages.append(("pipeline", result["pipeline"]))
        for stage, figures in stages:
            print(
                f"{result['backend']:14} {stage:9} {figures['mean_ms']:8.1f} "
                f"{figures['p50_ms']:8.1f} {figures['p95_ms']:8.1f} "
                f"{figures['images_per_s']:7.1f} {result['peak_rss_mb']:12.0f} "
                f"{result['first_call_s']:12.2f}"
            )
    onnx = results[0]
    for result in results:
        if "model_version" in result:
            print(f"{result['backend']}: {result['model_version']} input {result['input']}")
    print(
        f"pipeline = load_image + quality + model + heat-map PNG; python allocation peak "
        f"{onnx['python_alloc_peak_mb']:.1f} MB (tracemalloc)"
    )
    if "weights" in results[1]:
        print(f"torch weights: {results[1]['weights']}")


if __name__ == "__main__":
    main()
