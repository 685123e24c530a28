"""Safe image loading: type by content, limits, bombs, EXIF handling."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image

from tests.vision.conftest import FIXTURES, jpeg_bytes
from triage.vision.imageio import (
    CorruptImage,
    ImageTooLarge,
    UnsupportedImage,
    decode_cost,
    load_image,
)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


def _bomb_png(side: int) -> bytes:
    """A ~100-byte PNG that declares side x side RGB pixels."""
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def test_jpeg_is_loaded_as_rgb_and_reencoded():
    data = (FIXTURES / "ham_nv.jpg").read_bytes()
    loaded = load_image(data)
    assert loaded.rgb.dtype == np.uint8 and loaded.rgb.shape == (150, 200, 3)
    assert (loaded.width, loaded.height) == (200, 150)
    assert loaded.jpeg.startswith(b"\xff\xd8\xff")
    assert loaded.source_format == "JPEG"


def test_png_with_transparency_is_composited_on_white():
    image = Image.new("RGBA", (120, 100), (0, 0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    loaded = load_image(buffer.getvalue())
    assert loaded.rgb.min() == 255


def test_corrupt_bytes_raise_corrupt_image_with_readable_message():
    data = (FIXTURES / "ham_nv.jpg").read_bytes()[:300]
    with pytest.raises(CorruptImage, match="could not be read"):
        load_image(data)
    with pytest.raises(CorruptImage):
        load_image(b"")


@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.7\n1 0 obj <<>> endobj", b"GIF89a\x01\x00\x01\x00\x00\x00\x00", b"hello world"],
)
def test_wrong_type_raises_unsupported_image(data):
    with pytest.raises(UnsupportedImage, match="JPEG or PNG"):
        load_image(data)


def test_png_bytes_named_as_jpeg_are_read_by_content():
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(buffer, format="PNG")
    assert load_image(buffer.getvalue()).source_format == "PNG"


def test_oversized_file_is_refused_before_decoding():
    with pytest.raises(ImageTooLarge, match="limit is 1 MB"):
        load_image(b"\xff\xd8\xff" + b"\x00" * 2_000_000, max_bytes=1_000_000)


def test_decompression_bomb_is_refused_without_allocating_pixels():
    bomb = _bomb_png(30000)
    assert len(bomb) < 200
    tracemalloc.start()
    with pytest.raises(ImageTooLarge, match="megapixels"):
        load_image(bomb)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 5 * 2**20  # 30000^2 RGB would be 2.7 GB


def test_bomb_below_our_limit_but_above_pillows_is_still_refused():
    with pytest.raises(ImageTooLarge):
        load_image(_bomb_png(12000), max_pixels=10**9)


def test_exif_orientation_is_applied_and_gps_is_stripped():
    image = Image.new("RGB", (200, 100), (180, 120, 100))
    image.paste((0, 0, 255), (0, 0, 20, 20))  # marker in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (51.0, 30.0, 0.0)
    gps[3] = "W"
    gps[4] = (0.0, 7.0, 0.0)
    data = jpeg_bytes(image, exif=exif.tobytes(), quality=95)
    assert b"PhoneMaker" in data

    loaded = load_image(data)

    assert (loaded.width, loaded.height) == (100, 200)
    # After a clockwise rotation the stored top-left corner is displayed at the top right.
    assert loaded.rgb[5, -5, 2] > 200 and loaded.rgb[5, 5, 2] < 150
    stored = Image.open(io.BytesIO(loaded.jpeg))
    assert len(stored.getexif()) == 0
    assert b"Exif" not in loaded.jpeg and b"PhoneMaker" not in loaded.jpeg
    assert stored.size == (100, 200)


# --- Memory: the decode budget -----------------------------------------------------------------


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def test_decode_cost_counts_what_decoding_holds_from_the_header_alone():
    rgb = Image.new("RGB", (100, 50), (200, 150, 130))
    plain = Image.open(io.BytesIO(_encoded(rgb, "JPEG")))
    assert decode_cost(plain) == 100 * 50 * 4  # RGB is held 4 bytes a pixel
    assert decode_cost(plain, scale=2) == 50 * 25 * 4
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = Image.open(io.BytesIO(_encoded(rgb, "JPEG", exif=exif.tobytes())))
    assert decode_cost(rotated) == 2 * 100 * 50 * 4  # the rotated copy
    progressive = Image.open(io.BytesIO(_encoded(rgb, "JPEG", progressive=True)))
    assert decode_cost(progressive, scale=2) == 50 * 25 * 4 + 100 * 50 * 3 * 2  # coefficients
    webp = Image.open(io.BytesIO(_encoded(rgb, "WEBP")))
    assert decode_cost(webp) == 100 * 50 * (4 + 12)  # libwebp's own buffers
    grey = Image.open(io.BytesIO(_encoded(rgb.convert("L"), "PNG")))
    assert decode_cost(grey) == 100 * 50 * (1 + 1 + 4)  # pixels, maybe rotated, RGB copy


def test_jpeg_over_the_budget_is_decoded_at_a_smaller_scale():
    data = jpeg_bytes(Image.new("RGB", (800, 600), (200, 150, 130)))
    loaded = load_image(data, max_decoded_bytes=800 * 600 * 4 // 3)
    assert (loaded.width, loaded.height) == (400, 300)
    assert Image.open(io.BytesIO(loaded.jpeg)).size == (400, 300)
    assert loaded.rgb.shape == (300, 400, 3)


def test_png_over_the_budget_is_refused_before_decoding_and_says_what_to_send():
    data = _encoded(Image.new("RGB", (800, 600)), "PNG")
    tracemalloc.start()
    with pytest.raises(ImageTooLarge) as refused:
        load_image(data, max_decoded_bytes=800 * 600 * 4)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert "800x600 pixels" in str(refused.value) and "JPEG" in str(refused.value)
    assert peak < 2**20


def test_the_budget_is_off_for_files_we_wrote_ourselves():
    data = jpeg_bytes(Image.new("RGB", (800, 600), (200, 150, 130)))
    assert load_image(data, max_decoded_bytes=None).width == 800


def test_a_reduced_rgb_copy_leaves_the_stored_jpeg_full_size():
    data = jpeg_bytes(Image.new("RGB", (1000, 400), (200, 150, 130)))
    loaded = load_image(data, rgb_max_side=256)
    assert (loaded.width, loaded.height) == (1000, 400)
    assert loaded.rgb.shape == (100, 250, 3)  # box-averaged by 4
    assert Image.open(io.BytesIO(loaded.jpeg)).size == (1000, 400)
