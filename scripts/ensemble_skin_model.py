"""Combine skin models trained by train_skin_model.py into one calibrated ensemble ONNX model.

Each member is a shipped-format model directory (skin_model.json, skin_report.json and the ONNX
file, e.g. the ``--cache/candidate`` a training run leaves). The ensemble graph runs every member
on the photo (each with its own mirror TTA), averages their raw logits (each member's temperature
and logit adjustment undone) and applies a logit adjustment and a temperature fitted to that
average on validation; the class activation maps are averaged. Every decision threshold is
chosen again on validation lesions exactly as for a single model (``calibrate``), and the
ensemble is evaluated against the shipped model on the test lesions and their phone-like copy;
it replaces the shipped files only when it beats them (balanced accuracy and melanoma
sensitivity), unless --force. The app loads it like any single model: same input, same outputs.

Usage: python scripts/ensemble_skin_model.py --data /work/shared/data/skin/ham10000 \
    --members /tmp/skin_cache2/candidate /tmp/skin_member2/candidate --out triage/vision/models/
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_skin_model import (  # noqa: E402
    ONNX_NAME,
    calibrate,
    evaluate_against_shipped,
    load_split,
    log,
    normalise,
    onnx_outputs,
    ship,
    softmax,
    write_candidate_config,
    write_report,
)

MODEL_NAME = "skin-effnetlite0x{members}-ham10000"


def member_calibration(member: Path) -> tuple[dict, float, np.ndarray]:
    """A member's config, temperature and the logit adjustment folded into its bias."""
    config = json.loads((member / "skin_model.json").read_text())
    report = json.loads((member / "skin_report.json").read_text())
    adjustment = report.get("logit_adjustment")
    shift = (
        adjustment["tau"] * np.log(np.array(adjustment["prior"]))
        if adjustment
        else np.zeros(len(config["classes"]))
    )
    return config, float(config["temperature"]), shift


def member_logits(member: Path, images: np.ndarray, *, threads: int) -> np.ndarray:
    """A member's raw logits: its ONNX logits x T with its logit adjustment undone."""
    _, temperature, shift = member_calibration(member)
    _, scaled = onnx_outputs(member, images, threads=threads)
    return scaled * temperature + shift


def ensemble_graph(
    members: list[Path], *, shift: np.ndarray, temperature: float
) -> onnx.ModelProto:
    """One graph: every member on the same input, logits averaged, adjusted, scaled, softmaxed."""
    nodes: list[onnx.NodeProto] = []
    initializers: list[onnx.TensorProto] = []
    raw, cams = [], []
    first: onnx.ModelProto | None = None
    for k, member in enumerate(members):
        config, member_temperature, member_shift = member_calibration(member)
        model = onnx.load(str(member / config["onnx_file"]))
        first = first or model
        prefix = f"m{k}/"
        graph = onnx.compose.add_prefix(model, prefix=prefix).graph
        for node in graph.node:
            node.input[:] = ["image" if name == f"{prefix}image" else name for name in node.input]
        nodes.extend(graph.node)
        initializers.extend(graph.initializer)
        # Raw logits back: the member's logits x its temperature + its own logit adjustment.
        initializers += [
            numpy_helper.from_array(np.array(member_temperature, np.float32), f"{prefix}t"),
            numpy_helper.from_array(member_shift.astype(np.float32)[None, :], f"{prefix}shift"),
        ]
        nodes += [
            helper.make_node("Mul", [f"{prefix}logits", f"{prefix}t"], [f"{prefix}adjusted"]),
            helper.make_node("Add", [f"{prefix}adjusted", f"{prefix}shift"], [f"{prefix}raw"]),
        ]
        raw.append(f"{prefix}raw")
        cams.append(f"{prefix}cam")
    count = len(members)
    # (mean of the members' raw logits - shift) / T, as one Sum, one Mul and one Sub.
    initializers += [
        numpy_helper.from_array(np.array(1.0 / (count * temperature), np.float32), "ens/scale"),
        numpy_helper.from_array((shift / temperature).astype(np.float32)[None, :], "ens/shift"),
        numpy_helper.from_array(np.array(1.0 / count, np.float32), "ens/mean"),
    ]
    nodes += [
        helper.make_node("Sum", raw, ["ens/sum"]),
        helper.make_node("Mul", ["ens/sum", "ens/scale"], ["ens/scaled"]),
        helper.make_node("Sub", ["ens/scaled", "ens/shift"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
        helper.make_node("Sum", cams, ["ens/cam_sum"]),
        helper.make_node("Mul", ["ens/cam_sum", "ens/mean"], ["cam"]),
    ]
    assert first is not None
    graph = helper.make_graph(
        nodes,
        "skin_ensemble",
        [first.graph.input[0]],
        [
            helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["n", 7]),
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 7]),
            helper.make_tensor_value_info("cam", TensorProto.FLOAT, ["n", 7, None, None]),
        ],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=first.opset_import)
    model.ir_version = first.ir_version
    onnx.checker.check_model(model)
    return model


def verify_ensemble(
    path: Path, members: list[Path], *, shift: np.ndarray, temperature: float, inputs: np.ndarray
) -> float:
    """Largest relative difference between the ensemble graph and the members run one by one."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    probs, logits, _ = session.run(None, {"image": inputs})
    parts = []
    for member in members:
        config, member_temperature, member_shift = member_calibration(member)
        member_session = ort.InferenceSession(
            str(member / config["onnx_file"]), providers=["CPUExecutionProvider"]
        )
        scaled = member_session.run(None, {"image": inputs})[1]
        parts.append(scaled * member_temperature + member_shift)
    expected = (np.mean(parts, axis=0) - shift) / temperature
    return max(
        float(np.abs(expected - logits).max() / max(1.0, np.abs(expected).max())),
        float(np.abs(softmax(expected) - probs).max()),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--members", type=Path, nargs="+", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "skin_cache2")
    parser.add_argument("--seed", type=int, default=20240611, help="the split (keep it fixed)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--force", action="store_true", help="ship even if not better")
    args = parser.parse_args()
    started = time.time()
    if len(args.members) < 2:
        raise SystemExit("an ensemble needs at least two members")
    split = load_split(args.data, cache=args.cache, seed=args.seed)
    val_images = split.images[split.idx("val")]
    val_logits = np.mean(
        [member_logits(m, val_images, threads=args.threads) for m in args.members], axis=0
    )
    calibration = calibrate(val_logits, split)

    staging = args.cache / "ensemble_candidate"
    staging.mkdir(parents=True, exist_ok=True)
    onnx_path = staging / ONNX_NAME
    model = ensemble_graph(
        args.members, shift=calibration["shift"], temperature=calibration["temperature"]
    )
    onnx.save(model, str(onnx_path))
    max_diff = verify_ensemble(
        onnx_path,
        args.members,
        shift=calibration["shift"],
        temperature=calibration["temperature"],
        inputs=normalise(split.images[split.idx("test")[:8]]).numpy(),
    )
    log(f"ensemble graph vs members one by one: max relative diff {max_diff:.2e}")
    if max_diff > 1e-4:
        raise SystemExit("the ensemble graph does not match its members")
    config = write_candidate_config(
        staging, name=MODEL_NAME.format(members=len(args.members)), calibration=calibration
    )
    evaluation = evaluate_against_shipped(
        staging, args.out, split, seed=args.seed, threads=args.threads
    )
    member_reports = [json.loads((m / "skin_report.json").read_text()) for m in args.members]
    recipe = {
        **member_reports[0]["recipe"],
        "members": [
            {
                "model_version": r["model_version"],
                "command": r["recipe"]["command"],
                "train_seed": r["recipe"].get("train_seed"),
                "best_epoch": r["recipe"]["best_epoch"],
                "best_val_bacc": r["recipe"]["best_val_bacc"],
                "train_seconds": r["recipe"]["train_seconds"],
                "test_balanced_accuracy": r["test"]["new"]["balanced_accuracy"],
                "test_melanoma_auc": r["test"]["new"].get("melanoma_auc"),
            }
            for r in member_reports
        ],
        "train_seconds": sum(r["recipe"]["train_seconds"] for r in member_reports),
        "ensemble_command": "python scripts/ensemble_skin_model.py --data "
        "/work/shared/data/skin/ham10000 --members "
        + " ".join(f"MEMBER{k + 1}" for k in range(len(args.members)))
        + " --out triage/vision/models/",
    }
    write_report(
        staging,
        config=config,
        split=split,
        seed=args.seed,
        recipe=recipe,
        history=[r["history"] for r in member_reports],
        calibration=calibration,
        evaluation=evaluation,
        onnx_info={
            "opset": model.opset_import[0].version,
            "max_relative_diff_vs_members": max_diff,
            "size_bytes": onnx_path.stat().st_size,
        },
        started=started,
    )
    ship(staging, args.out, evaluation=evaluation, force=args.force, started=started)


if __name__ == "__main__":
    main()
