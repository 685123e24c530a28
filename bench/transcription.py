"""Transcription benchmark: RTF and WER of our engine vs openai-whisper on the same weights.

Run: python bench/transcription.py [--models base tiny.en] [--beam-sizes 1 5] [--no-consult]
     python bench/transcription.py --clinical   # the clinical table (docs/speech.md)
     python bench/transcription.py --clinical-configs   # decoding settings side by side
Needs requirements/speech-dev.txt. Prints figures; it is not a test.

openai-whisper needs its own .pt checkpoints and none ship on PyPI, so the reference model is
rebuilt from the very same CTranslate2 weights our engine runs (float16 tensors, renamed and with
the fused attention projections split back apart). Both sides therefore decode the same numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from consults.speech import SAMPLE_RATE, decode_audio, get_transcriber  # noqa: E402
from consults.speech.weights import default_cache_dir, model_files  # noqa: E402

DATA = Path(os.environ.get("SPEECH_DATA_DIR", REPO.parent / "shared" / "data" / "speech"))
CLINICAL = [
    "I am allergic to penicillin and I have chest pain.",
    "The pain started three days ago and gets worse when I climb stairs.",
    "Take one tablet of ibuprofen four hundred milligrams twice a day with food.",
    "Do you have any shortness of breath, fever, or a cough?",
    "My blood pressure was one hundred and forty over ninety this morning.",
    "We will order a chest x-ray and some blood tests, and I will call you with the results.",
]
VOICES = ["en-us", "en-gb", "en-us+m3", "en-gb+f3", "en-us+f2", "en-us+m7"]


@dataclass
class Clip:
    name: str
    samples: np.ndarray
    reference: str

    @property
    def duration_s(self) -> float:
        return self.samples.size / SAMPLE_RATE


# ---------------------------------------------------------------------------------- data


def load_clips() -> list[Clip]:
    clips = []
    manifest = DATA / "manifest.jsonl"
    for line in manifest.read_text().splitlines():
        row = json.loads(line)
        samples = decode_audio((DATA / row["audio"]).read_bytes())
        clips.append(Clip(Path(row["audio"]).stem, samples, row["reference"]))
    return clips


def espeak(text: str, *, voice: str, speed: int = 150) -> np.ndarray:
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
        check=True,
        capture_output=True,
    ).stdout
    return decode_audio(wav)


def synth_clips() -> list[Clip]:
    try:
        return [
            Clip(f"espeak-{voice}-{i}", espeak(text, voice=voice), text)
            for i, (text, voice) in enumerate(zip(CLINICAL, VOICES, strict=True))
        ]
    except FileNotFoundError:
        print("espeak-ng not installed: skipping synthesized clinical sentences")
        return []


# ------------------------------------------------------------------ reference checkpoint


def read_ct2(path: Path) -> dict[str, np.ndarray]:
    """Read a CTranslate2 model.bin (format version 6) into named numpy arrays."""
    buf = path.read_bytes()
    off = 0

    def take(fmt: str):
        nonlocal off
        (value,) = struct.unpack_from(fmt, buf, off)
        off += struct.calcsize(fmt)
        return value

    def string() -> str:
        nonlocal off
        n = take("<H")
        value = buf[off : off + n].rstrip(b"\0").decode()
        off += n
        return value

    dtypes = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
    version = take("<I")
    if version != 6:
        raise ValueError(f"unsupported CTranslate2 model version {version}")
    string()  # spec name
    take("<I")  # spec revision
    out = {}
    for _ in range(take("<I")):
        name = string()
        dims = [take("<I") for _ in range(take("<B"))]
        dtype = dtypes[take("<B")]
        nbytes = take("<I")
        out[name] = np.frombuffer(
            buf, dtype=dtype, count=nbytes // np.dtype(dtype).itemsize, offset=off
        ).reshape(dims)
        off += nbytes
    for _ in range(take("<I")):
        alias, target = string(), string()
        out[alias] = out[target]
    return out


def ct2_to_openai_checkpoint(model_dir: Path, target: Path) -> Path:
    """Write an openai-whisper .pt checkpoint holding the same tensors as a CT2 Whisper model."""
    import torch

    if target.exists():
        return target
    v = read_ct2(model_dir / "model.bin")
    sd: dict[str, np.ndarray] = {}

    def layers(prefix: str) -> int:
        names = {k.split("/")[1] for k in v if k.startswith(f"{prefix}/layer_")}
        return sum(1 for name in names if name.removeprefix("layer_").isdigit())

    def linear(dst: str, src: str, bias: bool = True) -> None:
        sd[f"{dst}.weight"] = v[f"{src}/weight"]
        if bias:
            sd[f"{dst}.bias"] = v[f"{src}/bias"]

    def norm(dst: str, src: str) -> None:
        sd[f"{dst}.weight"], sd[f"{dst}.bias"] = v[f"{src}/gamma"], v[f"{src}/beta"]

    def split_qkv(dst: str, src: str) -> None:
        w, b = v[f"{src}/weight"], v[f"{src}/bias"]
        d = w.shape[1]
        sd[f"{dst}.query.weight"], sd[f"{dst}.query.bias"] = w[:d], b[:d]
        sd[f"{dst}.key.weight"] = w[d : 2 * d]  # Whisper's key projection has no bias
        sd[f"{dst}.value.weight"], sd[f"{dst}.value.bias"] = w[2 * d :], b[2 * d :]

    for side in ("encoder", "decoder"):
        for i in range(layers(side)):
            src, dst = f"{side}/layer_{i}", f"{side}.blocks.{i}"
            split_qkv(f"{dst}.attn", f"{src}/self_attention/linear_0")
            linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
            norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
            linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
            linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
            norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
            if side == "decoder":
                d = v[f"{src}/attention/linear_0/weight"].shape[1]
                kv_w, kv_b = (
                    v[f"{src}/attention/linear_1/weight"],
                    v[f"{src}/attention/linear_1/bias"],
                )
                linear(f"{dst}.cross_attn.query", f"{src}/attention/linear_0")
                sd[f"{dst}.cross_attn.key.weight"] = kv_w[:d]
                sd[f"{dst}.cross_attn.value.weight"] = kv_w[d:]
                sd[f"{dst}.cross_attn.value.bias"] = kv_b[d:]
                linear(f"{dst}.cross_attn.out", f"{src}/attention/linear_2")
                norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
    linear("encoder.conv1", "encoder/conv1")
    linear("encoder.conv2", "encoder/conv2")
    sd["encoder.positional_embedding"] = v["encoder/position_encodings/encodings"]
    norm("encoder.ln_post", "encoder/layer_norm")
    sd["decoder.token_embedding.weight"] = v["decoder/embeddings/weight"]
    sd["decoder.positional_embedding"] = v["decoder/position_encodings/encodings"]
    norm("decoder.ln", "decoder/layer_norm")

    dims = {
        "n_mels": int(v["encoder/conv1/weight"].shape[1]),
        "n_audio_ctx": int(v["encoder/position_encodings/encodings"].shape[0]),
        "n_audio_state": int(v["encoder/conv1/weight"].shape[0]),
        "n_audio_head": int(v["encoder/num_heads"]),
        "n_audio_layer": layers("encoder"),
        "n_vocab": int(v["decoder/embeddings/weight"].shape[0]),
        "n_text_ctx": int(v["decoder/position_encodings/encodings"].shape[0]),
        "n_text_state": int(v["decoder/embeddings/weight"].shape[1]),
        "n_text_head": int(v["decoder/num_heads"]),
        "n_text_layer": layers("decoder"),
    }
    tensors = {k: torch.from_numpy(np.array(a, dtype=np.float32)) for k, a in sd.items()}
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"dims": dims, "model_state_dict": tensors}, target)
    return target


# ------------------------------------------------------------------------------ runners


class Ours:
    def __init__(self, *, model: str, beam_size: int, language: str | None = None) -> None:
        self.label = f"ours faster-whisper {model} int8 beam={beam_size}"
        self.t = get_transcriber(
            model=model, beam_size=beam_size, compute_type="int8", language=language
        )
        self.t.load()

    def __call__(self, samples: np.ndarray, offset_s: float = 0.0) -> tuple[str, float]:
        r = self.t.transcribe_array(samples=samples, offset_s=offset_s)
        return r.text, r.processing_s


class Reference:
    def __init__(
        self, *, model: str, beam_size: int, threads: int, language: str | None = None
    ) -> None:
        import torch
        import whisper

        torch.set_num_threads(threads)
        files = model_files(name=model)
        ckpt = ct2_to_openai_checkpoint(files.path, default_cache_dir() / f"openai-{model}.pt")
        self.model = whisper.load_model(str(ckpt), device="cpu")
        self.language = "en" if model.endswith(".en") else language
        self.beam_size = beam_size
        self.label = f"openai-whisper {model} fp32 beam={beam_size}"

    def __call__(self, samples: np.ndarray, offset_s: float = 0.0) -> tuple[str, float]:
        started = time.perf_counter()
        result = self.model.transcribe(
            samples,
            language=self.language,
            beam_size=self.beam_size if self.beam_size > 1 else None,
            best_of=None,
            fp16=False,
            condition_on_previous_text=False,
            verbose=None,
        )
        return result["text"].strip(), time.perf_counter() - started


def normalizer():
    try:
        from whisper.normalizers import EnglishTextNormalizer

        return EnglishTextNormalizer()
    except ImportError:
        return lambda s: " ".join(s.lower().replace(",", " ").replace(".", " ").split())


def score(runner, clips: list[Clip], norm) -> dict:
    import jiwer

    runner(clips[0].samples)  # warm-up: first-call allocations are not steady-state speed
    hyps, refs, proc, cpu = [], [], 0.0, 0.0
    for clip in clips:
        cpu_start = time.process_time()
        text, seconds = runner(clip.samples)
        cpu += time.process_time() - cpu_start
        hyps.append(norm(text) or "<empty>")
        refs.append(norm(clip.reference))
        proc += seconds
    audio = sum(c.duration_s for c in clips)
    return {
        "wer": jiwer.wer(refs, hyps),
        "rtf": proc / audio,
        "cpu_rtf": cpu / audio,
        "seconds": proc,
        "cpu_s": cpu,
        "audio_s": audio,
        "hyps": hyps,
    }


# ------------------------------------------------------------------- 10-minute consult


def consult_tracks(minutes: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Two speaker tracks (doctor, patient) of synthesized OSCE dialogue, each silent while
    the other talks, as two browsers would record them."""
    lines = []
    osce = REPO.parent / "shared" / "data" / "notes" / "osce"
    for path in sorted(osce.rglob("*.txt"))[:40]:
        raw = path.read_bytes()
        text = raw.decode("utf-16") if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else raw.decode()
        for line in text.splitlines():
            if line[:2] in ("D:", "P:") and len(line) > 12:
                lines.append((line[0], line[2:].strip()[:300]))
    if not lines:
        lines = [("D" if i % 2 == 0 else "P", t) for i, t in enumerate(CLINICAL * 20)]
    target = int(minutes * 60 * SAMPLE_RATE)
    doctor, patient = [], []
    total = 0
    gap = np.zeros(int(0.4 * SAMPLE_RATE), np.float32)
    for who, text in lines:
        speech = np.concatenate([espeak(text, voice="en-us" if who == "D" else "en-gb+f3"), gap])
        own, other = (doctor, patient) if who == "D" else (patient, doctor)
        own.append(speech)
        other.append(np.zeros_like(speech))
        total += speech.size
        if total >= target:
            break
    return np.concatenate(doctor)[:target], np.concatenate(patient)[:target]


def consult_latency(runner, *, chunk_s: float = 5.0) -> dict:
    """Feed both speakers' chunks as they would arrive live to one worker (FIFO) and report
    when the transcript is complete after hang-up. Chunks are processed back to back here and
    the live arrival schedule is replayed on the measured times, so the run needs no waiting."""
    doctor, patient = consult_tracks()
    n = int(chunk_s * SAMPLE_RATE)
    jobs = []  # (arrival time, processing seconds)
    busy = cpu = 0.0
    for start in range(0, doctor.size, n):
        arrival = min(start + n, doctor.size) / SAMPLE_RATE
        for track in (doctor, patient):
            cpu_start = time.process_time()
            _, seconds = runner(track[start : start + n], start / SAMPLE_RATE)
            cpu += time.process_time() - cpu_start
            jobs.append((arrival, seconds))
            busy += seconds
    clock = 0.0
    for arrival, seconds in jobs:
        clock = max(clock, arrival) + seconds
    end = doctor.size / SAMPLE_RATE
    last = [s for a, s in jobs if a == jobs[-1][0]]
    return {
        "consult_s": end,
        "chunks": len(jobs),
        "busy_s": busy,
        "cpu_s": cpu,
        "hangup_latency_s": clock - end,
        "last_chunks_s": sum(last),
    }


# --------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["base"], choices=["base", "tiny.en"])
    parser.add_argument("--beam-sizes", nargs="+", type=int, default=[1, 5])
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--language", default=None, help="force a language on both sides")
    parser.add_argument("--no-consult", action="store_true")
    parser.add_argument("--consult-beam", type=int, default=5)
    parser.add_argument("--consult-model", choices=["base", "tiny.en"], default=None)
    parser.add_argument("--only-consult", action="store_true")
    parser.add_argument(
        "--consult-chunk-s", type=float, default=5.0, help="chunk length (the browser uses 5 s)"
    )
    parser.add_argument("--show-text", action="store_true")
    parser.add_argument(
        "--clinical",
        action="store_true",
        help="term recall, WER and RTF on the espeak-ng clinical set, with and without biasing "
        "and correction, plus real speech and silence/noise/tone (bench/clinical_bench.py)",
    )
    parser.add_argument("--calibrate", action="store_true", help="with --clinical: sweep the bar")
    parser.add_argument(
        "--clinical-configs",
        action="store_true",
        help="decoding settings (beam, hint, fallback) side by side on the clinical set, with "
        "CPU seconds per audio second (bench/clinical_configs.py)",
    )
    args = parser.parse_args()
    if args.clinical_configs:
        from bench.clinical_configs import run_configs

        run_configs(real_clips=load_clips(), normalizer=normalizer())
        return
    if args.clinical:
        from bench.clinical_bench import run_clinical

        run_clinical(
            real_clips=load_clips(),
            reference=None if args.no_reference else Reference,
            normalizer=normalizer(),
            calibrate=args.calibrate,
            show_text=args.show_text,
        )
        return

    threads = len(os.sched_getaffinity(0))
    print(f"cpu cores available: {threads}; load average: {os.getloadavg()[0]:.1f}")
    norm = normalizer()
    sets = {"librispeech+jfk": load_clips(), "espeak clinical": synth_clips()}
    for name, clips in sets.items():
        print(f"set {name}: {len(clips)} clips, {sum(c.duration_s for c in clips):.1f}s audio")

    for model in [] if args.only_consult else args.models:
        for beam in args.beam_sizes:
            runners = [Ours(model=model, beam_size=beam, language=args.language)]
            if not args.no_reference:
                runners.append(
                    Reference(model=model, beam_size=beam, threads=threads, language=args.language)
                )
            for name, clips in sets.items():
                if not clips:
                    continue
                results = [(r.label, score(r, clips, norm)) for r in runners]
                for label, res in results:
                    print(
                        f"{name:16s} {label:40s} WER {res['wer'] * 100:5.1f}%  "
                        f"RTF {res['rtf']:.3f}  CPU-RTF {res['cpu_rtf']:.3f}  "
                        f"({res['seconds']:.1f}s wall, {res['cpu_s']:.1f}s CPU "
                        f"for {res['audio_s']:.0f}s audio)"
                    )
                    if args.show_text:
                        for hyp in res["hyps"]:
                            print(f"    {hyp}")
                if len(results) == 2:
                    ref, ours = results[1][1], results[0][1]
                    print(
                        f"{name:16s} speed ratio openai-whisper / ours: "
                        f"{ref['seconds'] / ours['seconds']:.2f}x wall, "
                        f"{ref['cpu_s'] / ours['cpu_s']:.2f}x CPU time"
                    )

    if not args.no_consult:
        model = args.consult_model or args.models[0]
        runner = Ours(model=model, beam_size=args.consult_beam, language=args.language)
        res = consult_latency(runner, chunk_s=args.consult_chunk_s)
        print(
            f"10-min consult ({model}, beam={args.consult_beam}, "
            f"{args.consult_chunk_s:g}s chunks x 2 speakers, "
            f"{res['chunks']} chunks, one worker): hang-up latency {res['hangup_latency_s']:.2f}s "
            f"(last two chunks {res['last_chunks_s']:.2f}s); worker busy {res['busy_s']:.0f}s "
            f"of {res['consult_s']:.0f}s (RTF {res['busy_s'] / res['consult_s']:.3f}; "
            f"{res['cpu_s']:.0f}s CPU)"
        )


if __name__ == "__main__":
    main()
