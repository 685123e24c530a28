"""Checks for chat attachments: the same rules as patient photos, plus PDF documents."""

from dataclasses import dataclass

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024


class AttachmentRejected(ValueError):
    """The file cannot be accepted; the message is shown to the user."""


@dataclass(frozen=True)
class CleanAttachment:
    data: bytes
    content_type: str
    suffix: str


def attachment_clean(*, data: bytes) -> CleanAttachment:
    """Accept JPEG/PNG/WebP photos (re-encoded, metadata stripped) and PDFs, by content."""
    if not data:
        raise AttachmentRejected("The file is empty.")
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise AttachmentRejected("The file is larger than 10 MB.")
    if data.startswith(b"%PDF-"):
        return CleanAttachment(data, "application/pdf", ".pdf")
    from triage.vision.imageio import ImageError, load_image

    try:
        # Only the re-encoded JPEG is kept: no full-size copy of the pixels is wanted.
        image = load_image(
            data, max_bytes=MAX_ATTACHMENT_BYTES, max_pixels=40_000_000, rgb_max_side=64
        )
    except ImageError as exc:
        raise AttachmentRejected(
            f"{exc} Attach a photo (JPEG, PNG or WebP) or a PDF document."
        ) from exc
    return CleanAttachment(image.jpeg, "image/jpeg", ".jpg")
