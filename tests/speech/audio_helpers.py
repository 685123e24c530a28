"""Encode test audio with PyAV the way browsers and phones would send it."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from consults.speech import SAMPLE_RATE
from consults.speech.types import Segment, Word

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "speech"


def encode(samples: np.ndarray, *, container: str, codec: str, rate: int = 48_000) -> bytes:
    """Encode float32 mono 16 kHz samples with PyAV, as a browser or phone would send them."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=rate)
        frame = av.AudioFrame.from_ndarray(
            samples.reshape(1, -1).astype(np.float32), format="flt", layout="mono"
        )
        frame.sample_rate = SAMPLE_RATE
        # Encoders want fixed-size frames; the audio FIFO hands them over in that size.
        fifo = av.AudioFifo()
        for resampled in resampler.resample(frame) + resampler.resample(None):
            resampled.pts = None
            fifo.write(resampled)
        size = stream.codec_context.frame_size or 1024
        while chunk := fifo.read(size):
            out.mux(stream.encode(chunk))
        if rest := fifo.read():
            out.mux(stream.encode(rest))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def noises(*, seconds: float = 8.0, seed: int = 11) -> dict[str, np.ndarray]:
    """Clips with no speech in them: silence, hiss, loud white noise, mains hum, a tone, beeps."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    beeps = 0.3 * np.sin(2 * np.pi * 1000 * t) * (np.sin(2 * np.pi * t) > 0.6)
    clips = {
        "digital silence": np.zeros(n),
        "room hiss": 0.003 * rng.standard_normal(n),
        "white noise": 0.2 * rng.standard_normal(n),
        "hum": 0.1 * np.sin(2 * np.pi * 50 * t),
        "tone": 0.3 * np.sin(2 * np.pi * 440 * t),
        "beeps": beeps,
    }
    return {name: samples.astype(np.float32) for name, samples in clips.items()}


def recognised(*words: tuple[str, float]) -> Segment:
    """A recognised segment with one second per word and the given word probabilities."""
    timed = tuple(
        Word(start=float(i), end=i + 0.8, text=f" {text}", probability=p)
        for i, (text, p) in enumerate(words)
    )
    return Segment(
        start=0.0,
        end=float(len(words)),
        text="".join(w.text for w in timed).strip(),
        avg_logprob=-0.3,
        no_speech_prob=0.05,
        words=timed,
    )
