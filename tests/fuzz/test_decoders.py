"""The decoders run on uploaded bytes (the audio decode of the transcription worker, the photo
loader and quality check of the web process) raise only their documented error types on fuzzed
input: a request is refused with the reason, a worker task fails the item with it. Nothing else
escapes, and what does decode is sane (finite samples, bounded size, metadata-free JPEG)."""

import io

import numpy as np
import pytest
from hypothesis import example, given
from PIL import Image

from consults.speech.audio import (
    MAX_DECODED_SECONDS,
    SAMPLE_RATE,
    AudioTooLong,
    CorruptAudio,
    UnsupportedAudio,
    decode_audio,
)
from tests.fuzz.support import (
    AUDIO_SEEDS,
    IMAGE_SEEDS,
    WIDE_PNG,
    audio_bytes,
    forged_png,
    fuzz_settings,
    image_bytes,
    memory_bound,
    png_chunk,
    tally,
    tone_wav,
    wav,
)
from triage.photos.services import (
    MAX_PHOTO_DECODED_BYTES,
    MAX_PHOTO_PIXELS,
    QUALITY_PREVIEW_SIDE,
    photo_load_upload,
)
from triage.vision.imageio import (
    MAX_SIDE,
    CorruptImage,
    ImageTooLarge,
    UnsupportedImage,
    decode_cost,
)
from triage.vision.quality import assess_quality

# Decoding is allowed its working set, never more: audio is capped at MAX_DECODED_SECONDS (fuzzed
# clips are far shorter); photos at their decode budget (IMAGE_MEMORY_BOUND_MIB).
MEMORY_BOUND_MIB = 512
# The web process's load_image holds at most MAX_PHOTO_DECODED_BYTES (128 MiB), and only a reduced
# copy of the pixels besides.
IMAGE_MEMORY_BOUND_MIB = 192


@fuzz_settings(1200)
@given(data=audio_bytes())
# Regressions: a 1 Hz WAV resampled to 16 kHz turned 2 KiB into 130 MB of samples (a 2 MB chunk
# would have been 128 GB); an IEEE-float WAV of garbage decoded to NaN and infinity.
@example(data=wav(rate=1, bits=8, body=b"\x80" * 2048))
@example(data=wav(format_tag=3, bits=32, body=b"\xff\xff\xff\x7f" * 512))
@example(data=wav(channels=0xFFFF, body=b"\x00" * 512))  # no channel layout for that
# A bit flip in a WebM tag: PyAV raised UnicodeDecodeError while opening it.
@example(data=AUDIO_SEEDS[1].replace(b"00:00:", b"\x800:00:"))
def test_audio_decoder_raises_only_corrupt_or_unsupported(data):
    tally("decoder: consults.speech.audio.decode_audio")
    try:
        samples = decode_audio(data)
    except (UnsupportedAudio, CorruptAudio) as exc:
        assert str(exc).strip()  # the reason the chunk fails with
        return
    assert samples.dtype == np.float32 and samples.ndim == 1 and samples.size > 0
    assert samples.size <= MAX_DECODED_SECONDS * SAMPLE_RATE
    assert np.isfinite(samples).all()


def test_a_forged_sample_rate_is_refused_before_resampling():
    with pytest.raises(CorruptAudio, match="implausible rate"):
        decode_audio(wav(rate=1, bits=8, body=b"\x80" * 2048))


def test_decoding_stops_at_max_seconds():
    assert decode_audio(tone_wav(seconds=1.0), max_seconds=2).size == SAMPLE_RATE
    with pytest.raises(AudioTooLong, match="longer than 0.5 s"):
        decode_audio(tone_wav(seconds=1.0), max_seconds=0.5)


@fuzz_settings(1000)
@given(data=image_bytes())
@example(data=IMAGE_SEEDS[0] + b"PK\x03\x04" + b"\x00" * 64)  # JPEG + zip tail
# Declares 4 Gi x 4 Gi pixels in 67 bytes: refused from the header, nothing allocated.
@example(
    data=b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", bytes.fromhex("ffffffffffffffff0806000000"))
)
# A PNG 65,501 pixels wide loaded, then failed as a plain OSError when stored as JPEG.
@example(data=WIDE_PNG)
@memory_bound(IMAGE_MEMORY_BOUND_MIB)
def test_image_loader_raises_only_its_image_errors(data):
    tally("decoder: triage.vision.imageio.load_image + quality")
    try:
        # As the web process loads a photo (triage.photos.photos_submit).
        image = photo_load_upload(data)
    except (UnsupportedImage, CorruptImage, ImageTooLarge) as exc:
        assert str(exc).strip()  # shown to the patient as the reason
        return
    assert image.rgb.dtype == np.uint8 and image.rgb.shape[2] == 3
    assert max(image.rgb.shape[:2]) <= QUALITY_PREVIEW_SIDE
    assert image.width * image.height <= MAX_PHOTO_PIXELS
    stored = Image.open(io.BytesIO(image.jpeg))
    assert stored.format == "JPEG" and stored.size == (image.width, image.height)
    assert not stored.getexif() and "icc_profile" not in stored.info
    # The web process runs the quality check on whatever loads; its score is stored.
    report = assess_quality(image.rgb, size=(image.width, image.height))
    assert 0.0 <= report.score <= 1.0
    assert all(flag.message for flag in report.flags)


@fuzz_settings(600)
@given(data=forged_png())
@memory_bound(IMAGE_MEMORY_BOUND_MIB)
def test_declared_png_size_is_checked_before_any_decoding(data):
    tally("decoder: load_image on forged PNG headers")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    try:
        image = photo_load_upload(data)
    except ImageTooLarge:
        assert (
            width * height > MAX_PHOTO_PIXELS
            or max(width, height) > MAX_SIDE
            or decode_cost(Image.open(io.BytesIO(data))) > MAX_PHOTO_DECODED_BYTES
        )
        return
    except (UnsupportedImage, CorruptImage):
        return
    assert (image.width, image.height) == (width, height)
    assert width * height <= MAX_PHOTO_PIXELS and max(width, height) <= MAX_SIDE
