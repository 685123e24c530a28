"""Shared pieces of the fuzz suite: the hypothesis profile, the input counter, a memory probe,
and byte strategies (mutated real fixtures, forged headers, polyglots, odd file names).

``FUZZ_EXAMPLES_SCALE`` (default 1) multiplies every target's ``max_examples``: CI runs the
default (about a minute on 2 cores); ``FUZZ_EXAMPLES_SCALE=20`` is a long local run.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MiB = 1024 * 1024

settings.register_profile(
    "fuzz",
    deadline=None,  # wall time per example depends on the machine; the bound is max_examples
    print_blob=True,  # a failure prints the blob that replays it with @reproduce_failure
    database=None,  # CI starts from a fresh clone: nothing to replay, nothing to write
    suppress_health_check=[
        # The logged-in client, the visit and the open sockets are shared by every example
        # on purpose; each example resets what it changes (a rolled-back transaction).
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
SCALE = float(os.environ.get("FUZZ_EXAMPLES_SCALE", "1"))


def fuzz_settings(max_examples: int) -> settings:
    """The fuzz profile with this target's example budget (scaled by FUZZ_EXAMPLES_SCALE)."""
    return settings(settings.get_profile("fuzz"), max_examples=max(1, round(max_examples * SCALE)))


# --- Counting what was tried ------------------------------------------------------------------

COUNTS: Counter[str] = Counter()
MEMORY: dict[str, tuple[int, int, int]] = {}  # test -> (peak growth, retained growth, bound)


def tally(target: str) -> None:
    """Count one input tried against ``target`` (generation, shrinking and replay alike)."""
    COUNTS[target] += 1


# --- Memory -----------------------------------------------------------------------------------


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise OSError(f"{field} not in /proc/self/status")


def memory_bound(mib: int):
    """Give one test its own peak RSS bound instead of its module's MEMORY_BOUND_MIB."""

    def mark(test):
        test.memory_bound_mib = mib
        return test

    return mark


def reset_peak_rss() -> bool:
    """Reset the peak RSS (VmHWM) to the current RSS; False where /proc cannot do it."""
    try:
        _status_bytes("VmHWM")
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    except OSError:
        return False
    return True


def rss() -> int:
    return _status_bytes("VmRSS")


def peak_rss() -> int:
    return _status_bytes("VmHWM")


# --- Database state per example ---------------------------------------------------------------


@contextmanager
def rolled_back():
    """Run one example in a transaction that is always rolled back (on_commit never fires)."""
    from django.db import transaction

    with transaction.atomic():
        yield
        transaction.set_rollback(True)


# --- Byte mutations ---------------------------------------------------------------------------

INTERESTING_U32 = [
    0,
    1,
    2,
    0x7F,
    0x80,
    0xFF,
    0x100,
    0x7FFF,
    0x8000,
    0xFFFF,
    0x10000,
    0x7FFFFFFF,
    0x80000000,
    0xFFFFFFFE,
    0xFFFFFFFF,
]


@st.composite
def mutated(draw, seeds: list[bytes], *, head: int = 512) -> bytes:
    """A seed with 1-4 edits: bit flips, truncation, inserts, deletes, odd 32-bit fields,
    duplicated regions. Positions favour the header, where parsers make their decisions."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        size = len(data)
        if size == 0:
            data += draw(st.binary(max_size=16))
            continue
        pos = draw(st.one_of(st.integers(0, min(size - 1, head)), st.integers(0, size - 1)))
        op = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "field", "repeat"]))
        if op == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=64))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 256))]
        elif op == "field":
            order = draw(st.sampled_from(["<I", ">I"]))
            data[pos : pos + 4] = struct.pack(order, draw(st.sampled_from(INTERESTING_U32)))
        else:
            end = min(size, pos + draw(st.integers(1, 512)))
            data[pos:pos] = data[pos:end] * draw(st.integers(1, 3))
    return bytes(data)


# --- Polyglot tails ---------------------------------------------------------------------------


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.html", "<script>alert(document.cookie)</script>")
    return buffer.getvalue()


TAILS = [
    _zip_bytes(),
    b"<html><body><script>alert(document.cookie)</script></body></html>",
    b"%PDF-1.7\n1 0 obj<</Type/Catalog/OpenAction<</S/JavaScript/JS(app.alert(1))>>>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n",
    b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 48 + b"PE\x00\x00",
    b"<?php system($_GET['c']); ?>",
    b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
    b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
    b"\x00" * 1024,
]


@st.composite
def polyglot(draw, heads: list[bytes]) -> bytes:
    """A real file (whole or cut short) with another format glued on after it, or before it."""
    head = draw(st.sampled_from(heads))
    tail = draw(st.sampled_from(TAILS))
    if draw(st.booleans()):
        head = head[: draw(st.integers(0, len(head)))]
    return tail + head if draw(st.integers(0, 4)) == 0 else head + tail


# --- Audio ------------------------------------------------------------------------------------


def wav(
    *,
    channels: int = 1,
    rate: int = 16_000,
    bits: int = 16,
    format_tag: int = 1,
    body: bytes = b"",
    declared_len: int | None = None,
) -> bytes:
    """A RIFF/WAVE file with the given header fields (any values, consistent or not)."""
    block_align = (channels * bits // 8) & 0xFFFF
    fmt = struct.pack(
        "<HHIIHH",
        format_tag & 0xFFFF,
        channels & 0xFFFF,
        rate & 0xFFFFFFFF,
        (rate * block_align) & 0xFFFFFFFF,
        block_align,
        bits & 0xFFFF,
    )
    data_len = len(body) if declared_len is None else declared_len
    chunks = b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", data_len) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def tone_wav(seconds: float = 0.25, rate: int = 16_000) -> bytes:
    frames = int(rate * seconds)
    body = b"".join(struct.pack("<h", (n * 2654435761) % 16000 - 8000) for n in range(frames))
    return wav(rate=rate, body=body)


AUDIO_SEEDS = [
    (FIXTURES / "audio" / "chest_pain.wav").read_bytes()[:64_000],  # 2 s: enough to mutate
    (FIXTURES / "audio" / "chest_pain.webm").read_bytes(),
    (FIXTURES / "speech" / "penicillin.ogg").read_bytes(),
    tone_wav(),
]

AUDIO_MAGIC_HEADS = [
    b"RIFF\x24\x00\x00\x00WAVE",
    b"RF64\xff\xff\xff\xffWAVE",
    b"OggS\x00\x02",
    b"fLaC\x00\x00\x00\x22",
    b"\x00\x00\x00\x20ftypM4A ",
    b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01webm",
    b"\x1a\x45\xdf\xa3matroska",
    b"\x1f\x43\xb6\x75\x01\xff",  # a WebM cluster without its header
    b"ID3\x04\x00\x00\x00\x00\x00\x00",
    b"\xff\xfb\x90\x64",  # an MPEG-1 layer III frame header
]


@st.composite
def forged_wav(draw) -> bytes:
    """WAV headers with any channel count, sample rate, sample size, codec and length."""
    return wav(
        channels=draw(st.sampled_from([0, 1, 2, 3, 8, 64, 255, 0xFFFF]) | st.integers(0, 0xFFFF)),
        rate=draw(
            st.sampled_from([0, 1, 7, 3999, 4000, 8000, 16_000, 44_100, 0xFFFFFFFF])
            | st.integers(0, 0xFFFFFFFF)
        ),
        bits=draw(st.sampled_from([0, 1, 7, 8, 12, 16, 24, 32, 64, 0xFFFF])),
        format_tag=draw(st.sampled_from([0, 1, 2, 3, 6, 7, 0x11, 0x55, 0xFFFE, 0xFFFF])),
        body=draw(st.binary(max_size=2048)),
        declared_len=draw(st.none() | st.sampled_from(INTERESTING_U32)),
    )


def audio_bytes() -> st.SearchStrategy[bytes]:
    """Everything the audio endpoints and the decoder get fuzzed with."""
    return st.one_of(
        mutated(AUDIO_SEEDS),
        forged_wav(),
        st.builds(bytes.__add__, st.sampled_from(AUDIO_MAGIC_HEADS), st.binary(max_size=512)),
        polyglot(AUDIO_SEEDS + AUDIO_MAGIC_HEADS),
        st.binary(max_size=256),
        st.sampled_from(AUDIO_SEEDS),
    )


# --- Images -----------------------------------------------------------------------------------


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


WIDE_PNG = _encode(Image.new("RGB", (65_501, 1), (200, 150, 120)), "PNG")  # too wide for JPEG


def _synthesized_images() -> list[bytes]:
    # Skin-toned noise, big enough to pass the quality check, so odd modes reach storage.
    rgb = ImageOps.colorize(Image.effect_noise((128, 112), 48), (110, 60, 45), (235, 185, 160))
    rotated = Image.Exif()
    rotated[0x0112] = 6
    bogus_orientation = Image.Exif()
    bogus_orientation[0x0112] = 9
    palette = rgb.convert("P")
    palette.info["transparency"] = 0
    return [
        _encode(rgb, "JPEG", quality=60),
        _encode(rgb, "JPEG", progressive=True),
        _encode(rgb, "JPEG", exif=rotated),
        _encode(rgb, "JPEG", exif=bogus_orientation),
        _encode(rgb.convert("CMYK"), "JPEG"),
        _encode(rgb.convert("L"), "JPEG"),
        _encode(rgb.convert("RGBA"), "PNG"),
        _encode(palette, "PNG"),
        _encode(rgb.convert("LA"), "PNG"),
        _encode(rgb.convert("1"), "PNG"),
        _encode(rgb.convert("I;16"), "PNG"),
        _encode(Image.new("RGB", (1, 1)), "PNG"),
        WIDE_PNG,
        _encode(rgb, "GIF"),  # a real image of a format we do not take
        _encode(rgb, "WEBP", quality=50),
        _encode(rgb.convert("RGBA"), "WEBP", lossless=True),
    ]


IMAGE_SEEDS = [
    *(FIXTURES / "vision").glob("*.jpg"),
    FIXTURES / "wounds" / "fuseg_0021.jpg",
    FIXTURES / "wounds" / "fuseg_0021_mask.png",
]
IMAGE_SEEDS = [path.read_bytes() for path in sorted(IMAGE_SEEDS)] + _synthesized_images()

IMAGE_MAGIC_HEADS = [
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    b"\xff\xd8\xff\xdb",
    b"\x89PNG\r\n\x1a\n",
    b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    b"RIFF\xff\xff\xff\xffWEBPVP8L",
    b"\x00\x00\x00\x18ftypheic",
]


def png_chunk(kind: bytes, payload: bytes, *, crc_ok: bool = True) -> bytes:
    crc = zlib.crc32(kind + payload) if crc_ok else zlib.crc32(kind + payload) ^ 1
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


@st.composite
def forged_png(draw) -> bytes:
    """PNGs whose header declares any size (up to 4 Gi x 4 Gi), depth and colour type."""
    side = st.sampled_from([0, 1, 2, 96, 6_000, 6_325, 65_500, 65_501, 100_000, 2**31 - 1])
    side = side | st.integers(0, 2**32 - 1)
    width, height = draw(side), draw(side)
    ihdr = struct.pack(
        ">IIBBBBB",
        width,
        height,
        draw(st.sampled_from([1, 2, 4, 8, 16, 0, 3, 255])),
        draw(st.sampled_from([0, 2, 3, 4, 6, 1, 7, 255])),
        0,
        0,
        draw(st.sampled_from([0, 1, 2])),
    )
    rows = draw(st.integers(0, 64))
    idat = draw(
        st.sampled_from([zlib.compress(b"\x00" * rows * 64), b""]) | st.binary(max_size=256)
    )
    chunks = [png_chunk(b"IHDR", ihdr, crc_ok=draw(st.booleans()))]
    if draw(st.booleans()):
        chunks.append(png_chunk(b"PLTE", draw(st.binary(max_size=96))))
    if draw(st.booleans()):
        chunks.append(png_chunk(b"tRNS", draw(st.binary(max_size=16))))
    if draw(st.booleans()):
        chunks.append(png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"A" * 100_000)))
    chunks.append(png_chunk(b"IDAT", idat, crc_ok=draw(st.booleans())))
    if draw(st.booleans()):
        chunks.append(png_chunk(b"IEND", b""))
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


@st.composite
def forged_jpeg(draw) -> bytes:
    """A JPEG whose frame header (SOF0) declares any size and component count."""
    seed = IMAGE_SEEDS[0]
    sof = seed.find(b"\xff\xc0")
    if sof < 0:
        return seed
    height = draw(st.sampled_from([0, 1, 96, 8_000, 65_535]) | st.integers(0, 65_535))
    width = draw(st.sampled_from([0, 1, 96, 8_000, 65_535]) | st.integers(0, 65_535))
    patched = bytearray(seed)
    patched[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    if draw(st.booleans()):
        patched[sof + 9] = draw(st.integers(0, 255))  # number of components
    return bytes(patched)


def image_bytes() -> st.SearchStrategy[bytes]:
    """Everything the photo and attachment endpoints and the image loader get fuzzed with."""
    return st.one_of(
        mutated(IMAGE_SEEDS),
        forged_png(),
        forged_jpeg(),
        polyglot(IMAGE_SEEDS),
        st.builds(bytes.__add__, st.sampled_from(IMAGE_MAGIC_HEADS), st.binary(max_size=512)),
        st.binary(max_size=256),
        st.sampled_from(IMAGE_SEEDS),
    )


# --- Upload metadata --------------------------------------------------------------------------

# Shown back to the user on refusal: must come out escaped, never as markup.
MARKUP_NAME = "<b id=fuzzname>.jpg"


def _no_surrogates(max_size: int) -> st.SearchStrategy[str]:
    return st.text(st.characters(exclude_categories=["Cs"]), max_size=max_size)


def file_names() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(
            [
                "photo.jpg",
                "chunk.webm",
                "visit.wav",
                "notes.pdf",
                "../../etc/passwd",
                "..\\..\\boot.ini",
                "..",
                "invoice.pdf.exe",
                MARKUP_NAME,
                'quo"te.jpg',
                "semi;colon=1.png",
                "nul\x00byte.jpg",
                "new\r\nline.jpg",
                "x" * 300 + ".jpg",
                "évé 😀.webm",
                "%2e%2e%2fetc.png",
                "&lt;script&gt;.jpg",
            ]
        ),
        _no_surrogates(40),
    )


def content_types() -> st.SearchStrategy[str]:
    return st.sampled_from(
        [
            "image/jpeg",
            "image/png",
            "image/svg+xml",
            "audio/webm",
            "audio/wav",
            "video/mp4",
            "application/pdf",
            "application/octet-stream",
            "application/x-msdownload",
            "text/html",
            "multipart/mixed; boundary=zz",
            "image/jpeg; charset=utf-7",
            "x" * 300,
            "",
        ]
    )


def form_text(max_size: int = 60) -> st.SearchStrategy[str]:
    """Form values: ordinary text, numbers as text, control characters, very long values."""
    return st.one_of(
        _no_surrogates(max_size),
        st.integers().map(str),
        st.sampled_from(
            ["", " ", "-1", "1e9", "NaN", "inf", "0x10", "١٢", "1_000", "\x00", "9" * 5000]
        ),
    )
