"""Words at live-chunk boundaries: WER of chunked transcription with and without overlap.

The browser uploads ~5 s chunks. Cutting speech there can damage the word spoken across the
cut; the recorder therefore overlaps consecutive chunks and consults/speech/stitch.py keeps
each word from the chunk that owns the middle of the overlap. This prints the word error rate
(Whisper's English normalizer) of: the whole stream at once, hard 5 s cuts, and overlapped
cuts, on the real speech clips joined into one stream, at several cut phases.

Run: python bench/chunk_stitching.py [--model base] [--beam 5] [--overlaps 0 1 2]
Needs requirements/speech-dev.txt (jiwer and openai-whisper's normalizer).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.transcription import load_clips, normalizer  # noqa: E402
from consults.speech import SAMPLE_RATE, get_transcriber  # noqa: E402
from consults.speech.stitch import keep_window  # noqa: E402


def chunked(transcriber, samples: np.ndarray, *, chunk_s: float, overlap_s: float, phase_s: float):
    """Transcribe like the live recorder: pieces of chunk_s, each starting overlap_s early."""
    starts = [0.0] + list(np.arange(phase_s or chunk_s, samples.size / SAMPLE_RATE, chunk_s))
    text = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else samples.size / SAMPLE_RATE
        begin = max(0.0, start - overlap_s) if i else 0.0
        piece = samples[int(begin * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
        result = transcriber.transcribe_array(samples=np.ascontiguousarray(piece), offset_s=begin)
        segments = result.segments
        if overlap_s:
            segments = keep_window(
                segments,
                keep_from=start - overlap_s / 2 if i else None,
                keep_until=end - overlap_s / 2 if i + 1 < len(starts) else None,
            )
        text.extend(s.text for s in segments)
    return " ".join(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="base", choices=["base", "tiny.en"])
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--chunk-s", type=float, default=5.0)
    parser.add_argument("--overlaps", type=float, nargs="+", default=[0.0, 1.0, 2.0])
    parser.add_argument("--phases", type=float, nargs="+", default=[5.0, 3.7, 2.3, 1.1])
    args = parser.parse_args()
    import jiwer

    norm = normalizer()
    clips = load_clips()
    gap = np.zeros(int(0.3 * SAMPLE_RATE), np.float32)
    stream = np.concatenate([np.concatenate([c.samples, gap]) for c in clips])
    reference = norm(" ".join(c.reference for c in clips))
    transcriber = get_transcriber(model=args.model, beam_size=args.beam, language="en")
    whole = transcriber.transcribe_array(samples=stream)
    print(
        f"{len(clips)} real clips joined: {stream.size / SAMPLE_RATE:.1f}s; "
        f"model {args.model}, beam {args.beam}, {args.chunk_s:g}s chunks"
    )
    print(f"whole stream at once        WER {jiwer.wer(reference, norm(whole.text)) * 100:5.1f}%")
    for overlap in args.overlaps:
        wers = []
        for phase in args.phases:
            hyp = chunked(
                transcriber, stream, chunk_s=args.chunk_s, overlap_s=overlap, phase_s=phase
            )
            wers.append(jiwer.wer(reference, norm(hyp)))
        label = "hard cuts" if not overlap else f"overlap {overlap:g}s, stitched"
        print(
            f"{label:27s} WER {np.mean(wers) * 100:5.1f}% (mean of {len(wers)} cut phases: "
            + ", ".join(f"{w * 100:.1f}" for w in wers)
            + ")"
        )


if __name__ == "__main__":
    main()
