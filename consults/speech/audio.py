"""Identify and decode uploaded audio to float32 mono 16 kHz samples with PyAV."""

from __future__ import annotations

import io

import numpy as np

SAMPLE_RATE = 16_000
# Real recordings run from 8 kHz (telephone) to 384 kHz; a header outside this range is forged
# or damaged, and a 1 Hz one would turn each input byte into 16,000 output samples.
MIN_SOURCE_RATE = 4_000
MAX_SOURCE_RATE = 768_000
# A consult is well under this; more is a decompression bomb (FLAC or Opus silence) or not
# one consult. At 16 kHz float32 this caps the decoded samples at 660 MiB.
MAX_DECODED_SECONDS = 3 * 3600

# Matroska/WebM element ids that matter when sniffing browser chunks.
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_CLUSTER_ID = b"\x1f\x43\xb6\x75"


class UnsupportedAudio(ValueError):
    """The bytes are not one of the audio formats the engine accepts."""


class CorruptAudio(ValueError):
    """The bytes look like a supported format but cannot be decoded."""


class AudioTooLong(CorruptAudio):
    """The audio decodes to more than ``max_seconds`` (a CorruptAudio, so callers fail it)."""


def sniff_audio(data: bytes) -> str:
    """Return "wav", "mp3", "m4a", "ogg", "webm" or "flac" from the content's magic bytes."""
    head = data[:64]
    if len(head) < 4:
        raise UnsupportedAudio(f"too short to be audio ({len(data)} bytes)")
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"fLaC":
        return "flac"
    if head[4:8] == b"ftyp":
        return "m4a"
    if head[:4] == _EBML_MAGIC:
        if b"webm" in head or b"matroska" in head:
            return "webm"
        raise UnsupportedAudio("EBML file that is neither WebM nor Matroska")
    if head[:4] == _CLUSTER_ID:
        # MediaRecorder's timeslice chunks after the first carry no header and cannot be
        # decoded alone; the client must restart the recorder for each chunk.
        raise UnsupportedAudio(
            "WebM continuation chunk without its header; record each chunk as a complete file"
        )
    if head[:3] == b"ID3" or _is_mpeg_audio_frame(head):
        return "mp3"
    raise UnsupportedAudio(f"unrecognised audio format (starts with {head[:8].hex()})")


def _is_mpeg_audio_frame(head: bytes) -> bool:
    # 11 sync bits, then a layer field that is not 00 (00 is AAC ADTS, which we do not take).
    return len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06 != 0


def decode_audio(data: bytes, *, max_seconds: float = MAX_DECODED_SECONDS) -> np.ndarray:
    """Decode any supported format to float32 mono 16 kHz; raise CorruptAudio with a reason.

    UnsupportedAudio: not a format we take. CorruptAudio: anything that does not decode to
    finite samples from a plausible sample rate; AudioTooLong (a CorruptAudio) past max_seconds.
    """
    kind = sniff_audio(data)
    import av  # imported here so the web process only pays for it when it decodes

    try:
        # Tags are never used; a damaged one must not fail the decode (UnicodeDecodeError).
        container = av.open(io.BytesIO(data), mode="r", metadata_errors="replace")
    except av.FFmpegError as exc:
        raise CorruptAudio(f"cannot open the {kind} data: {_reason(exc)}") from exc
    with container:
        if not container.streams.audio:
            raise CorruptAudio(f"the {kind} data has no audio stream")
        limit = int(max_seconds * SAMPLE_RATE)
        parts = _decode_stream(container, kind=kind, limit=limit)
    if not parts:
        raise CorruptAudio(f"the {kind} data holds no audio samples")
    samples = np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
    if samples.size > limit:  # the resampler's last few samples
        raise AudioTooLong(f"the {kind} audio is longer than {limit / SAMPLE_RATE:g} s")
    if not np.isfinite(samples).all():  # float PCM of garbage: NaN and infinity
        raise CorruptAudio(f"the {kind} data holds invalid (not finite) samples")
    return samples


def _decode_stream(container, *, kind: str, limit: int) -> list[np.ndarray]:
    import av

    stream = container.streams.audio[0]
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    parts: list[np.ndarray] = []
    total = 0
    try:
        for frame in container.decode(stream):
            # Checked per frame, before resampling: the rate may change mid-stream.
            if not MIN_SOURCE_RATE <= frame.sample_rate <= MAX_SOURCE_RATE:
                raise CorruptAudio(
                    f"the {kind} data has an implausible rate ({frame.sample_rate} Hz)"
                )
            frame.pts = None  # browser chunks often have gaps; let the resampler re-time
            for part in resampler.resample(frame):
                parts.append(part.to_ndarray().reshape(-1))
                total += parts[-1].size
            if total > limit:
                raise AudioTooLong(f"the {kind} audio is longer than {limit / SAMPLE_RATE:g} s")
        parts.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    except av.FFmpegError as exc:
        # A chunk cut mid-packet still carries useful speech: keep what decoded.
        if not parts:
            raise CorruptAudio(f"cannot decode the {kind} audio: {_reason(exc)}") from exc
    return parts


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc)
