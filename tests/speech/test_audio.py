"""Content sniffing and decoding of uploaded audio."""

from __future__ import annotations

import numpy as np
import pytest

from consults.speech import SAMPLE_RATE, CorruptAudio, UnsupportedAudio, decode_audio, sniff_audio
from tests.speech.audio_helpers import encode

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def tone(seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "wav"),
        (b"OggS\x00\x02" + b"\x00" * 20, "ogg"),
        (b"fLaC\x00\x00\x00\x22", "flac"),
        (b"\x00\x00\x00\x20ftypM4A \x00\x00", "m4a"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "webm"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", "mp3"),
        (b"\xff\xfb\x90\x64" + b"\x00" * 8, "mp3"),
    ],
)
def test_sniff_audio_identifies_format_by_content(head: bytes, kind: str) -> None:
    assert sniff_audio(head) == kind


@pytest.mark.parametrize(
    "data",
    [PNG, b"%PDF-1.7\n", b"hello, this is text", b"\xff\xf1\x50\x80", b"", b"\x00\x01"],
)
def test_sniff_audio_rejects_other_content(data: bytes) -> None:
    with pytest.raises(UnsupportedAudio):
        sniff_audio(data)


def test_decode_audio_rejects_png_as_unsupported_not_corrupt() -> None:
    with pytest.raises(UnsupportedAudio, match="unrecognised audio format"):
        decode_audio(PNG)


def test_webm_continuation_chunk_says_why_it_cannot_be_decoded() -> None:
    with pytest.raises(UnsupportedAudio, match="without its header"):
        decode_audio(b"\x1f\x43\xb6\x75" + b"\x01" * 100)


@pytest.mark.parametrize(
    "data",
    [
        b"RIFF\x24\x00\x00\x00WAVE" + b"\x07" * 200,
        b"OggS" + b"\x13" * 300,
        b"\x1a\x45\xdf\xa3" + b"webm" + b"\xee" * 300,
        b"\x00\x00\x00\x20ftypM4A " + b"\x42" * 300,
    ],
)
def test_corrupt_bytes_raise_corrupt_audio_with_reason(data: bytes) -> None:
    with pytest.raises(CorruptAudio) as info:
        decode_audio(data)
    assert str(info.value)


def test_standalone_webm_opus_chunk_decodes_to_16k_mono(penicillin_ogg: bytes) -> None:
    samples = decode_audio(penicillin_ogg)
    chunk = encode(samples, container="webm", codec="libopus")
    assert sniff_audio(chunk) == "webm"

    decoded = decode_audio(chunk)

    assert decoded.dtype == np.float32
    assert decoded.ndim == 1
    assert abs(decoded.size - samples.size) < 0.1 * SAMPLE_RATE


@pytest.mark.parametrize(
    ("container", "codec", "kind"),
    [("wav", "pcm_s16le", "wav"), ("ogg", "libopus", "ogg"), ("mp4", "aac", "m4a")],
)
def test_common_formats_round_trip(container: str, codec: str, kind: str) -> None:
    data = encode(tone(), container=container, codec=codec)
    assert sniff_audio(data) == kind
    decoded = decode_audio(data)
    assert abs(decoded.size - SAMPLE_RATE) < 0.1 * SAMPLE_RATE
    assert 0.2 < float(np.max(np.abs(decoded))) < 0.4


def test_mp3_round_trip() -> None:
    import av

    if "libmp3lame" not in av.codecs_available and "mp3" not in av.codecs_available:
        pytest.skip("this PyAV build has no mp3 encoder")
    data = encode(tone(), container="mp3", codec="libmp3lame")
    assert sniff_audio(data) == "mp3"
    assert abs(decode_audio(data).size - SAMPLE_RATE) < 0.15 * SAMPLE_RATE
