"""Safe loading of uploaded photos: content-typed, size- and bomb-limited, metadata stripped.

Memory is bounded before anything is decoded: from the size and mode in the header,
`decode_cost` says how many bytes decoding will hold at its peak. A JPEG over the budget is decoded
at 1/2, 1/4 or 1/8 scale by libjpeg itself, so its full-size pixels never exist; any other format
over it is refused with a message that says what to send instead.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

DEFAULT_MAX_BYTES = 15 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000  # a 48 MP phone photo is ~48e6; 40e6 leaves room under a 24 GiB box
# The most a decode may hold at its peak (decode_cost): a 24 MP photo, or a 12 MP one to rotate.
DEFAULT_MAX_DECODED_BYTES = 128 * 2**20
JPEG_QUALITY = 90
MAX_SIDE = 65_500  # the JPEG the photo is stored as cannot be wider or taller
JPEG_SCALES = (1, 2, 4, 8)  # the reductions libjpeg decodes at directly
ORIENTATION = 0x0112  # the EXIF tag

# Bytes a pixel takes in Pillow's memory, by mode; any mode not named takes 4 (RGB is padded).
PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
# What a decoder holds besides Pillow's pixels, in bytes a pixel, as bench/upload_memory.py
# measured it with Pillow 13: libwebp keeps its RGBA canvas and hands Pillow a copy (HEIF is
# assumed to be alike). A progressive JPEG buffers every DCT coefficient of the full-size image,
# whatever the scale it is decoded at: 2 bytes each, at most one per band and pixel.
DECODER_BYTES = {"WEBP": 12, "HEIF": 12}
PROGRESSIVE_JPEG_BYTES_PER_BAND = 2


class ImageError(ValueError):
    """Base class; `str(error)` is a message that can be shown to the patient."""


class UnsupportedImage(ImageError):
    """The bytes are not a JPEG, PNG or WebP (or HEIC when pillow-heif is installed)."""


class CorruptImage(ImageError):
    """The bytes claim a supported type but cannot be decoded."""


class ImageTooLarge(ImageError):
    """The file, its declared pixel count or the memory decoding it needs exceeds the limits."""


@dataclass(frozen=True)
class LoadedImage:
    """Decoded RGB pixels (orientation applied) and a metadata-free JPEG for storage.

    ``width`` and ``height`` are the JPEG's; ``rgb`` has that size too unless the caller asked
    for a smaller copy (``rgb_max_side``).
    """

    rgb: np.ndarray
    jpeg: bytes
    width: int
    height: int
    source_format: str


def sniff_format(data: bytes) -> str | None:
    """Return 'JPEG', 'PNG', 'WEBP' or 'HEIF' from magic bytes, None if unknown."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp" and data[8:12] in {b"heic", b"heix", b"mif1", b"msf1", b"heim"}:
        return "HEIF"
    return None


def _enable_heif() -> bool:
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener()
    return True


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in {"RGBA", "LA", "PA"} or (
        image.mode == "P" and "transparency" in image.info
    )


def _to_rgb(image: Image.Image) -> Image.Image:
    if _has_alpha(image):
        # Transparent areas become white, not black, so they are not read as a dark photo.
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")
        rgb = Image.new("RGB", rgba.size, (255, 255, 255))
        rgb.paste(rgba, mask=rgba)
        return rgb
    return image if image.mode == "RGB" else image.convert("RGB")


def _may_rotate(image: Image.Image) -> bool:
    """Whether applying the EXIF orientation may copy the pixels, from what open() has read."""
    if image.format == "PNG":
        return True  # its EXIF may come after the pixels, unread until they are decoded
    exif = Image.Exif()
    if "exif" in image.info:
        exif.load(image.info["exif"])
    xmp = image.info.get("xmp") or b""
    xmp = xmp.encode() if isinstance(xmp, str) else xmp
    return exif.get(ORIENTATION, 1) != 1 or b"Orientation" in xmp


def decode_cost(image: Image.Image, *, scale: int = 1) -> int:
    """Bytes that loading this opened (not yet loaded) image as RGB holds at its peak.

    From the header only: the pixels (at 1/``scale`` of the size, as a JPEG draft decodes
    them), what the decoder keeps besides, a second copy while the EXIF orientation is applied,
    and the RGB copy of another mode (after an RGBA one for a transparent image).
    """
    width, height = image.size
    pixels = -(-width // scale) * -(-height // scale)
    pixel = PIXEL_BYTES.get(image.mode, 4)
    cost = pixels * (pixel + DECODER_BYTES.get(image.format or "", 0))
    if image.format == "JPEG" and image.info.get("progressive"):
        cost += width * height * len(image.getbands()) * PROGRESSIVE_JPEG_BYTES_PER_BAND
    if _may_rotate(image):
        cost += pixels * pixel
    if _has_alpha(image):
        cost += pixels * ((0 if image.mode == "RGBA" else 4) + 4)
    elif image.mode != "RGB":
        cost += pixels * 4
    return cost


def _fit_budget(image: Image.Image, *, max_decoded_bytes: int) -> None:
    """Make a JPEG decode small enough (libjpeg's own scaling); refuse what cannot be."""
    scales = JPEG_SCALES if image.format == "JPEG" else (1,)
    for scale in scales:
        if decode_cost(image, scale=scale) <= max_decoded_bytes:
            if scale > 1:
                width, height = image.size
                image.draft(None, (width // scale, height // scale))
            return
    width, height = image.size
    needed = decode_cost(image, scale=scales[-1])
    raise ImageTooLarge(
        f"The photo is {width}x{height} pixels and would take {needed / 1e6:.0f} MB of memory to"
        f" open; the limit is {max_decoded_bytes / 1e6:.0f} MB. Please send the photo as your"
        " camera took it (JPEG), or a smaller copy."
    )


def _pixels(image: Image.Image, *, max_side: int | None) -> np.ndarray:
    """The pixels as a writable array, box-averaged down to ``max_side`` when that is given."""
    factor = -(-max(image.size) // max_side) if max_side else 1
    if factor > 1:
        image = image.reduce(factor)
    return np.array(image, dtype=np.uint8)


def load_image(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_decoded_bytes: int | None = DEFAULT_MAX_DECODED_BYTES,
    rgb_max_side: int | None = None,
) -> LoadedImage:
    """Decode an uploaded photo safely; raises UnsupportedImage, CorruptImage or ImageTooLarge.

    ``max_decoded_bytes`` bounds the memory the decode holds (None: no bound, for files this
    application wrote itself); ``rgb_max_side`` asks for ``rgb`` reduced to that long side, so
    that the full-size pixels are only encoded to the JPEG and never copied.
    """
    if len(data) > max_bytes:
        raise ImageTooLarge(
            f"The photo is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB."
        )
    if not data:
        raise CorruptImage("The file is empty.")
    kind = sniff_format(data)
    if kind is None:
        raise UnsupportedImage("This file is not a photo we can read. Please send a JPEG or PNG.")
    if kind == "HEIF" and not _enable_heif():
        raise UnsupportedImage(
            "HEIC photos are not supported yet. Please set the camera to 'Most compatible' (JPEG)."
        )
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; make every bomb an error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[kind])
            # open() reads only the header, so the declared size is checked before any decoding.
            width, height = image.size
            if width * height > max_pixels:
                raise ImageTooLarge(
                    f"The photo is {width}x{height} pixels; the limit is {max_pixels / 1e6:.0f}"
                    " megapixels."
                )
            if max(width, height) > MAX_SIDE:
                raise ImageTooLarge(
                    f"The photo is {width}x{height} pixels; a side may be at most {MAX_SIDE:,}."
                )
            if max_decoded_bytes is not None:
                _fit_budget(image, max_decoded_bytes=max_decoded_bytes)
            image.load()
            # In place: the rotated copy replaces the pixels instead of joining them.
            ImageOps.exif_transpose(image, in_place=True)
            rgb_image = _to_rgb(image)
            del image
            # Re-encoding bare pixels drops EXIF (GPS, device), XMP and ICC, which save() writes
            # only when asked; the comment it would take from info goes with info. No Huffman
            # optimisation: it would buffer the whole image's coefficients again (3 bytes a
            # pixel) to save a few per cent of the file.
            rgb_image.info = {}
            buffer = io.BytesIO()
            rgb_image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
            rgb = _pixels(rgb_image, max_side=rgb_max_side)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageTooLarge(
            f"The photo has too many pixels; the limit is {max_pixels / 1e6:.0f} megapixels."
        ) from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise CorruptImage(
            "The photo could not be read; it may be damaged or incomplete."
        ) from error
    return LoadedImage(
        rgb=rgb,
        jpeg=buffer.getvalue(),
        width=rgb_image.width,
        height=rgb_image.height,
        source_format=kind,
    )
