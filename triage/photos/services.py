"""Services and selectors for patient photos: intake checks, analysis, physician review.

The web process runs only the cheap checks (safe decoding, photo quality); the models run in
the ml worker through ``photo_analyse``.
"""

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from consults.models import ConsentPurpose, Visit
from consults.selectors import consent_given, visits_visible_to
from telehealth.audit import audit_record
from telehealth.lost_work import RESEND_WITHIN, send_on_commit
from telehealth.models import AuditAction, User
from telehealth.observability import model_timer
from telehealth.private_media import private_read, private_save
from triage.models import Photo, PhotoAnalysis, PhotoConcern, PhotoKind, UrgencyChange
from triage.photos.summary import (
    AreaPoint,
    Diagnosis,
    QualityWords,
    WoundSize,
    WoundTrend,
    differential,
    quality_words,
    wound_size,
    wound_trend_words,
)
from triage.realtime import queue_changed
from triage.services import TriageError, visit_urgency_override, visit_urgency_raise

if TYPE_CHECKING:
    from triage.vision.imageio import LoadedImage

MAX_PHOTO_BYTES = 15 * 1024 * 1024
MAX_PHOTO_PIXELS = 40_000_000
# The memory one photo's decode may hold (imageio.decode_cost): larger JPEGs are decoded at a
# reduced scale, other formats refused. The quality check needs no more than a reduced copy.
MAX_PHOTO_DECODED_BYTES = 128 * 2**20
QUALITY_PREVIEW_SIDE = 1024
MAX_PHOTOS_PER_CONCERN = 3
# Wound beds are red, yellow or black: the "is this skin?" check does not apply to them.
WOUND_IGNORED_FLAGS = {"not_skin", "not_centred", "subject_too_small"}


@dataclass(frozen=True)
class RejectedPhoto:
    name: str
    reasons: list[str]


def _blocking_reasons(*, kind: str, flags) -> list[str]:
    ignored = WOUND_IGNORED_FLAGS if kind == PhotoKind.WOUND else set()
    return [flag.message for flag in flags if flag.blocking and flag.code not in ignored]


def photo_load_upload(data: bytes) -> "LoadedImage":
    """Decode an uploaded photo as the web process does: size, pixel and decoded-memory budgets
    checked from the header, and ``rgb`` reduced for the quality check (triage.vision.imageio)."""
    from triage.vision.imageio import load_image

    return load_image(
        data,
        max_bytes=MAX_PHOTO_BYTES,
        max_pixels=MAX_PHOTO_PIXELS,
        max_decoded_bytes=MAX_PHOTO_DECODED_BYTES,
        rgb_max_side=QUALITY_PREVIEW_SIDE,
    )


def photos_submit(
    *,
    visit: Visit,
    uploader: User,
    kind: str,
    body_site: str,
    files: list[tuple[str, bytes]],
    duration: str = "",
    stated_area_cm2: float | None = None,
) -> tuple[list[Photo], list[RejectedPhoto]]:
    """Check each photo at once; keep the good ones (metadata stripped) and queue analysis."""
    from triage.vision.imageio import ImageError
    from triage.vision.quality import assess_quality

    if uploader.pk not in (visit.patient_id, visit.physician_id):
        raise TriageError("Only the patient or their physician can add photos to this visit.")
    if not visit.is_active:
        raise TriageError("Photos can be added only before or during the visit.")
    if not 1 <= len(files) <= MAX_PHOTOS_PER_CONCERN:
        raise TriageError(f"Choose between 1 and {MAX_PHOTOS_PER_CONCERN} photos.")
    if kind not in PhotoKind.values:
        raise TriageError("Say whether this is a skin lesion or a wound.")
    accepted: list[tuple[bytes, int, int, object]] = []
    rejected: list[RejectedPhoto] = []
    for name, data in files:
        try:
            image = photo_load_upload(data)
        except ImageError as exc:
            rejected.append(RejectedPhoto(name, [str(exc)]))
            continue
        quality = assess_quality(image.rgb, size=(image.width, image.height))
        reasons = _blocking_reasons(kind=kind, flags=quality.flags)
        if reasons:
            rejected.append(RejectedPhoto(name, reasons))
            continue
        accepted.append((image.jpeg, image.width, image.height, quality))
    if not accepted:
        return [], rejected
    analyse = consent_given(visit=visit, purpose=ConsentPurpose.AI_PHOTOS)
    with transaction.atomic():
        concern = PhotoConcern.objects.create(
            patient=visit.patient, kind=kind, body_site=body_site.strip()[:100]
        )
        photos = [
            Photo.objects.create(
                visit=visit,
                concern=concern,
                uploaded_by=uploader,
                file_path=private_save(category="photos", data=jpeg, suffix=".jpg"),
                sha256=hashlib.sha256(jpeg).hexdigest(),
                width=width,
                height=height,
                duration=duration[:100],
                stated_area_cm2=stated_area_cm2,
                quality_score=quality.score,
                quality_flags=[{"code": f.code, "message": f.message} for f in quality.flags],
                quality_checks=quality.checks,
                status=Photo.Status.QUEUED if analyse else Photo.Status.STORED,
            )
            for jpeg, width, height, quality in accepted
        ]
        if analyse:
            for photo in photos:
                send_on_commit("triage.tasks.analyse_photo", photo.pk)
    queue_changed(visit=visit, event="photos")
    return photos, rejected


def photo_analyse(*, photo_id: int) -> PhotoAnalysis | None:
    """Run the model for one photo (in the ml worker). Idempotent: a second run is a no-op."""
    photo = Photo.objects.select_related("visit", "concern").get(pk=photo_id)
    existing = PhotoAnalysis.objects.filter(photo=photo).first()
    if existing is not None:
        return existing
    if not consent_given(visit=photo.visit, purpose=ConsentPurpose.AI_PHOTOS):
        Photo.objects.filter(pk=photo.pk).update(status=Photo.Status.STORED)
        return None
    from triage.vision.imageio import load_image

    # Our own JPEG, at its stored size: the scale and the wound area are in its pixels.
    rgb = load_image(
        private_read(photo.file_path), max_bytes=MAX_PHOTO_BYTES, max_decoded_bytes=None
    ).rgb
    if photo.concern.kind == PhotoKind.SKIN:
        fields = _skin_fields(rgb)
    else:
        fields = _wound_fields(rgb, stated_area_cm2=photo.stated_area_cm2)
    try:
        # One commit: nobody sees the photo analysed while its visit still has the old urgency.
        with transaction.atomic():
            analysis = PhotoAnalysis.objects.create(photo=photo, **fields)
            Photo.objects.filter(pk=photo.pk).update(status=Photo.Status.ANALYSED)
            if analysis.can_assess:
                visit_urgency_raise(
                    visit=photo.visit,
                    level=analysis.urgency,
                    reason=f"Photo triage ({photo.concern.body_site}): {analysis.urgency_reason}",
                    source=UrgencyChange.Source.PHOTO,
                )
    except IntegrityError:
        # A redelivered task raced us; the first analysis stands.
        return PhotoAnalysis.objects.get(photo=photo)
    queue_changed(visit=photo.visit, event="photo_analysed")
    return analysis


def photo_mark_failed(*, photo_id: int, reason: str) -> None:
    Photo.objects.filter(pk=photo_id).update(
        status=Photo.Status.FAILED, failure_reason=reason[:300]
    )


def _skin_fields(rgb) -> dict:
    from triage.vision.skin import assess_skin_image

    with model_timer("skin"):
        result = assess_skin_image(rgb, backend=settings.VISION_SKIN_BACKEND)
    heatmap = (
        private_save(category="heatmaps", data=result.heatmap_png, suffix=".png")
        if result.heatmap_png
        else ""
    )
    return {
        "model_version": result.model_version,
        "can_assess": result.can_assess,
        "reason": (result.reason or "")[:500],
        "label": result.label or "",
        "probabilities": {k: round(float(v), 4) for k, v in result.probabilities.items()},
        "urgency": result.urgency.level,
        "urgency_reason": result.urgency.reason[:300],
        "heatmap_path": heatmap,
    }


def _wound_fields(rgb, *, stated_area_cm2: float | None) -> dict:
    from triage.vision.wound import segment_wound

    with model_timer("wound"):
        result = segment_wound(
            rgb, stated_area_cm2=stated_area_cm2, backend=settings.VISION_WOUND_BACKEND
        )
    # Pixels are not a size: without a scale or a stated area the reason names no number.
    size = f", about {result.area_cm2:.1f} cm² as stated" if result.area_cm2 else ""
    return {
        "model_version": result.model_version,
        "can_assess": result.can_assess,
        "reason": result.reason[:500],
        "probabilities": result.type_probabilities or {},
        "urgency": "standard",
        "urgency_reason": (
            f"Wound outlined{size}; review the trend across visits."
            if result.can_assess
            else "The wound could not be outlined automatically; a clinician will review it."
        ),
        "heatmap_path": private_save(category="wounds", data=result.overlay_png, suffix=".png"),
        "mask_path": private_save(category="wounds", data=result.mask_png, suffix=".png"),
        "area_px": result.area_px,
        "area_cm2": result.area_cm2,
        "wound_type": result.wound_type or "",
    }


def photo_review(
    *, analysis: PhotoAnalysis, physician: User, decision: str, note: str = "", level: str = ""
) -> PhotoAnalysis:
    """The physician confirms or overrules the model; overruling may set the urgency."""
    if physician.pk != analysis.photo.visit.physician_id:
        raise TriageError("Only the visit's physician can review its photos.")
    if decision not in (PhotoAnalysis.Review.CONFIRMED, PhotoAnalysis.Review.OVERRULED):
        raise TriageError("Choose confirm or overrule.")
    if decision == PhotoAnalysis.Review.OVERRULED and not note.strip():
        raise TriageError("Say why you overrule the photo triage.")
    analysis.review = decision
    analysis.review_note = note.strip()[:300]
    analysis.reviewed_by = physician
    analysis.reviewed_at = timezone.now()
    analysis.save(update_fields=["review", "review_note", "reviewed_by", "reviewed_at"])
    if decision == PhotoAnalysis.Review.OVERRULED and level:
        visit_urgency_override(
            visit=analysis.photo.visit,
            level=level,
            reason=f"Photo triage overruled: {analysis.review_note}",
            actor=physician,
        )
    return analysis


def photos_for_visit(*, visit: Visit) -> list[Photo]:
    return list(
        Photo.objects.filter(visit=visit)
        .select_related("concern", "analysis")
        .order_by("concern_id", "created_at")
    )


def photo_may_measure(*, user: User, visit: Visit) -> bool:
    """Only the visit's physician or an administrator sets a photo's scale."""
    return user.is_clinic_admin or (user.is_physician and user.pk == visit.physician_id)


def photo_get_for_measuring(*, user: User, photo_id: int) -> Photo | None:
    """The photo if this user may set its scale (the visit's physician, or an admin), else None."""
    photo = Photo.objects.select_related("visit", "concern").filter(pk=photo_id).first()
    if photo is None or not photo_may_measure(user=user, visit=photo.visit):
        return None
    return photo


MIN_SCALE_PX = 10
MAX_SCALE_LENGTH_CM = 50.0


def photo_scale_set(
    *,
    photo: Photo,
    user: User,
    start: tuple[float, float],
    end: tuple[float, float],
    length_cm: float,
) -> Photo:
    """Store the photo's scale from two points a known length apart (e.g. 1 cm on a ruler)."""
    from triage.vision.wound import scale_from_points

    if not photo_may_measure(user=user, visit=photo.visit):
        raise TriageError("Only the visit's physician or an administrator can set a scale.")
    if photo.concern.kind != PhotoKind.WOUND:
        raise TriageError("Only wound photos are measured.")
    if not 0 < length_cm <= MAX_SCALE_LENGTH_CM:
        raise TriageError(f"Give the known length in cm, up to {MAX_SCALE_LENGTH_CM:.0f} cm.")
    for x, y in (start, end):
        if not (0 <= x <= photo.width and 0 <= y <= photo.height):
            raise TriageError("Both points must be on the photo.")
    px_per_cm = scale_from_points(start, end, length_cm=length_cm)
    if px_per_cm * length_cm < MIN_SCALE_PX:
        raise TriageError("The two points are too close: mark the ends of a longer length.")
    photo.scale_px_per_cm = round(px_per_cm, 3)
    photo.scale_points = [[round(v, 1) for v in start], [round(v, 1) for v in end]]
    photo.scale_length_cm = length_cm
    photo.scale_set_by = user
    photo.scale_set_at = timezone.now()
    photo.save(
        update_fields=[
            "scale_px_per_cm",
            "scale_points",
            "scale_length_cm",
            "scale_set_by",
            "scale_set_at",
        ]
    )
    audit_record(
        actor=user,
        action=AuditAction.WRITE,
        object_type="photo_scale",
        object_id=photo.pk,
        patient=photo.visit.patient,
        detail=f"{length_cm:g} cm = {px_per_cm:.1f} px",
    )
    return photo


def _measured_cm2(photo: Photo) -> float | None:
    analysis = getattr(photo, "analysis", None)
    if analysis is None or not analysis.can_assess or analysis.area_px is None:
        return None
    size = wound_size(area_px=analysis.area_px, px_per_cm=photo.scale_px_per_cm, stated_cm2=None)
    return size.cm2


def wound_area_points(*, concern: PhotoConcern, viewer: User) -> list[AreaPoint]:
    """Measured area of this wound at each visit the viewer may see, one point per visit.

    A wound is followed across visits by patient and body site (each upload starts a concern).
    """
    photos = (
        Photo.objects.filter(
            concern__patient_id=concern.patient_id,
            concern__kind=PhotoKind.WOUND,
            concern__body_site__iexact=concern.body_site.strip(),
            visit__in=visits_visible_to(viewer),
            scale_px_per_cm__isnull=False,
        )
        .select_related("analysis")
        .order_by("created_at", "id")
    )
    by_visit: dict[int, list[tuple[datetime, float]]] = {}
    for photo in photos:
        cm2 = _measured_cm2(photo)
        if cm2 is not None:
            by_visit.setdefault(photo.visit_id, []).append((photo.created_at, cm2))
    return [
        AreaPoint(when=values[0][0], cm2=sum(v for _, v in values) / len(values))
        for values in by_visit.values()
    ]


@dataclass(frozen=True)
class PhotoItem:
    """One photo and, for staff only, what the models and the physician made of it."""

    photo: Photo
    quality: QualityWords
    analysis: PhotoAnalysis | None = None
    differential: list[Diagnosis] = field(default_factory=list)
    size: WoundSize | None = None


@dataclass(frozen=True)
class PhotoGroup:
    concern: PhotoConcern
    items: list[PhotoItem]
    trend: WoundTrend | None = None


def photos_page(*, visit: Visit, viewer: User) -> list[PhotoGroup]:
    """The photo page's content. Nothing a model produced is included for a patient."""
    show_ai = not viewer.is_patient
    groups: dict[int, PhotoGroup] = {}
    for photo in photos_for_visit(visit=visit):
        group = groups.setdefault(photo.concern_id, PhotoGroup(concern=photo.concern, items=[]))
        ignored = WOUND_IGNORED_FLAGS if photo.concern.kind == PhotoKind.WOUND else ()
        quality = quality_words(
            score=photo.quality_score,
            flags=photo.quality_flags,
            checks=photo.quality_checks,
            ignored=ignored,
        )
        if not show_ai:
            group.items.append(PhotoItem(photo=photo, quality=quality))
            continue
        analysis = getattr(photo, "analysis", None)
        size = None
        if photo.concern.kind == PhotoKind.WOUND:
            outlined = analysis is not None and analysis.can_assess
            size = wound_size(
                area_px=analysis.area_px if outlined else None,
                px_per_cm=photo.scale_px_per_cm,
                stated_cm2=photo.stated_area_cm2,
            )
        probabilities = analysis.probabilities if analysis is not None else {}
        group.items.append(
            PhotoItem(
                photo=photo,
                quality=quality,
                analysis=analysis,
                differential=differential(probabilities)
                if photo.concern.kind == PhotoKind.SKIN
                else [],
                size=size,
            )
        )
    if show_ai:
        for key, group in groups.items():
            if group.concern.kind == PhotoKind.WOUND:
                points = wound_area_points(concern=group.concern, viewer=viewer)
                groups[key] = replace(group, trend=wound_trend_words(points))
    return list(groups.values())


# --- Lost work (the beat sweeper; docs/deploy.md, "Broker durability and lost work") ---------


def photos_lost(*, now) -> QuerySet[Photo]:
    """Photos whose analysis message may be lost: still queued LOST_WORK_AFTER after upload."""
    return Photo.objects.filter(
        status=Photo.Status.QUEUED,
        analysis__isnull=True,
        created_at__gte=now - RESEND_WITHIN,
        created_at__lt=now - timedelta(seconds=settings.LOST_WORK_AFTER),
    ).order_by("created_at", "id")


def photos_resend_lost(*, now) -> list[int]:
    """Re-send the analysis of lost photos; call it through ``lost_work_resend``.

    That checks first that no message is merely waiting. One analysis per photo is a database
    constraint, so a re-send that meets a slow original adds nothing.
    """
    ids = list(photos_lost(now=now).values_list("pk", flat=True))
    for pk in ids:
        send_on_commit("triage.tasks.analyse_photo", pk)
    return ids
