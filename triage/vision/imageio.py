"""Safe loading of uploaded photos: content-typed, size- and bomb-limited, metadata stripped."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

DEFAULT_MAX_BYTES = 15 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000  # a 48 MP phone photo is ~48e6; 40e6 leaves room under a 24 GiB box
JPEG_QUALITY = 90
MAX_SIDE = 65_500  # the JPEG the photo is stored as cannot be wider or taller


class ImageError(ValueError):
    """Base class; `str(error)` is a message that can be shown to the patient."""


class UnsupportedImage(ImageError):
    """The bytes are not a JPEG, PNG or WebP (or HEIC when pillow-heif is installed)."""


class CorruptImage(ImageError):
    """The bytes claim a supported type but cannot be decoded."""


class ImageTooLarge(ImageError):
    """The file or its declared pixel count exceeds the configured limits."""


@dataclass(frozen=True)
class LoadedImage:
    """Decoded RGB pixels (orientation applied) and a metadata-free JPEG for storage."""

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


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in {"RGBA", "LA", "PA"} or (image.mode == "P" and "transparency" in image.info):
        # Transparent areas become white, not black, so they are not read as a dark photo.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def load_image(
    data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS
) -> LoadedImage:
    """Decode an uploaded photo safely; raises UnsupportedImage, CorruptImage or ImageTooLarge."""
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
            image.load()
            # In place, and no copy for an RGB photo: a 40 MP photo held three times over
            # peaked at 700 MiB; see tests/fuzz/test_decoders.py.
            ImageOps.exif_transpose(image, in_place=True)
            rgb_image = _to_rgb(image)
            del image
            # Re-encoding bare pixels drops EXIF (GPS, device), XMP and ICC, which save() writes
            # only when asked; the comment it would take from info goes with info.
            rgb_image.info = {}
            buffer = io.BytesIO()
            rgb_image.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
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
    rgb = np.array(rgb_image, dtype=np.uint8)  # a writable copy
    return LoadedImage(
        rgb=rgb,
        jpeg=buffer.getvalue(),
        width=rgb.shape[1],
        height=rgb.shape[0],
        source_format=kind,
    )
