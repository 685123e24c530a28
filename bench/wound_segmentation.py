"""Wound segmentation speed: onnxruntime vs torch eager, per-image latency, images/s, peak RSS.

python bench/wound_segmentation.py --images /work/shared/data/wounds/fuseg/train/images
Each backend runs in its own child process so that its peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "--images", type=Path, default=Path("/work/shared/data/wounds/fuseg/train/images")
    )
    p.add_argument("-n", type=int, default=20, help="timed images per backend")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--checkpoint", type=Path, default=None, help="torch weights; random init times the same"
    )
    p.add_argument("--child", choices=["onnx", "engine", "torch"], help=argparse.SUPPRESS)
    return p.parse_args()


def _load(*, folder: Path, n: int) -> list[np.ndarray]:
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".png"})[:n]
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths]


def _run_child(args: argparse.Namespace) -> dict[str, float]:
    from triage.vision.wound import INPUT_SIZE, OnnxWoundBackend, prepare_input, segment_wound

    images = _load(folder=args.images, n=args.n)
    inputs = [prepare_input(rgb, size=INPUT_SIZE) for rgb in images]
    if args.child == "torch":
        import torch

        from triage.vision.wound_net import WoundExport, WoundUNet

        torch.set_num_threads(args.threads)
        net = WoundUNet(image_size=INPUT_SIZE)
        if args.checkpoint:
            net.load_state_dict(torch.load(args.checkpoint, weights_only=True)["state"])
        model = WoundExport(net).eval()

        def step(i: int) -> None:
            with torch.inference_mode():
                model(torch.from_numpy(inputs[i]))

    elif args.child == "onnx":
        import onnxruntime as ort

        # Its own session, so that it runs on --threads like torch does.
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(
            str(OnnxWoundBackend().model_path),
            sess_options=opts,
            providers=["CPUExecutionProvider"],
        )

        def step(i: int) -> None:
            session.run(None, {"image": inputs[i]})

    else:

        def step(i: int) -> None:
            # Whole engine (its session always uses 2 threads): resize, model, restore to photo
            # size, clean-up, both PNGs.
            segment_wound(images[i])

    t0 = time.perf_counter()
    step(0)
    first = time.perf_counter() - t0
    times = []
    for i in range(len(images)):
        t = time.perf_counter()
        step(i)
        times.append(time.perf_counter() - t)
    lat = np.array(times) * 1000
    return {
        "first_call_ms": round(first * 1000, 1),
        "mean_ms": round(float(lat.mean()), 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 1),
        "p95_ms": round(float(np.percentile(lat, 95)), 1),
        "images_per_s": round(len(times) / float(np.sum(times)), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    """Run each backend in a child process and print a side-by-side table."""
    args = parse_args()
    if args.child:
        print(json.dumps(_run_child(args)))
        return
    results = {}
    for child in ("onnx", "torch", "engine"):
        cmd = [sys.executable, __file__, "--child", child, "--images", str(args.images)]
        cmd += ["-n", str(args.n), "--threads", str(args.threads)]
        if args.checkpoint:
            cmd += ["--checkpoint", str(args.checkpoint)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
        results[child] = json.loads(out.stdout.strip().splitlines()[-1])
    names = {
        "onnx": "onnxruntime",
        "torch": "torch eager",
        "engine": "segment_wound (ort)",
    }
    print(f"wound segmentation, {args.n} images from {args.images}, {args.threads} thread(s)")
    cols = ("first_call_ms", "mean_ms", "p50_ms", "p95_ms", "images_per_s", "peak_rss_mb")
    print(f"{'backend':<22}" + "".join(f"{c:>15}" for c in cols))
    for key, row in results.items():
        print(f"{names[key]:<22}" + "".join(f"{row[c]:>15}" for c in cols))


if __name__ == "__main__":
    main()
