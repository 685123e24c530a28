"""Retention of triage's health data: intake answers with the urgency history, and photos.
Registered with the core's ``telehealth.retention`` in ``TriageConfig.ready()``."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Exists, OuterRef, Q, QuerySet

from consults.models import Visit
from consults.retention import SIGNED_VISIT_EXTRAS, closed_before, without_signed_note
from telehealth.retention import (
    REMOVED_REASON,
    Policy,
    Removed,
    purge_rows,
    retention_kind_register,
)
from triage.models import Intake, Photo, PhotoConcern, UrgencyChange

# What each of triage's kinds is and why it is kept (settings.RETENTION gives how long).
KINDS = {
    "intakes": Policy(
        "Intake answers, visit reason and urgency history of visits without a signed note",
        "Part of no medical record; kept a while so the clinic can follow up the red flags of a "
        "visit that did not take place.",
    ),
    "photos": Policy(
        "Photos, their AI analyses, heat maps and wound outlines",
        "Kept long enough to compare a lesion or a wound across visits.",
    ),
}


def _intakes(visits: QuerySet[Visit], before: datetime | None) -> Removed:
    targets = closed_before(without_signed_note(visits), before).filter(
        Exists(Intake.objects.filter(visit=OuterRef("pk")))
        | Exists(UrgencyChange.objects.filter(visit=OuterRef("pk")))
        | ~Q(reason=REMOVED_REASON)
        | ~Q(urgency_reason="")
    )

    def remove(batch: QuerySet[Visit]) -> None:
        Intake.objects.filter(visit__in=batch).delete()
        UrgencyChange.objects.filter(visit__in=batch).delete()
        batch.update(reason=REMOVED_REASON, urgency_reason="")

    return purge_rows("intakes", targets, patient="patient_id", remove=remove)


def _photos(visits: QuerySet[Visit], before: datetime | None) -> Removed:
    photos = Photo.objects.filter(visit__in=visits)
    if before is not None:
        photos = photos.filter(created_at__lt=before)
    result = purge_rows(
        "photos",
        photos,
        patient="visit__patient_id",
        files=("file_path", "analysis__heatmap_path", "analysis__mask_path"),
    )
    # A lesion or wound with no photo left is only a body site: it goes too.
    concerns = PhotoConcern.objects.filter(
        patient__in=visits.values("patient"), photos__isnull=True
    )
    if before is not None:
        concerns = concerns.filter(created_at__lt=before)
    concerns.delete()
    return result


def _signed_visit_intakes(signed_visits: QuerySet[Visit]) -> int:
    return Intake.objects.filter(visit__in=signed_visits).count()


def retention_register() -> None:
    """Declare triage's kinds (TriageConfig.ready()); the order places them among consults'."""
    retention_kind_register("intakes", order=30, policy=KINDS["intakes"], purge=_intakes)
    retention_kind_register("photos", order=60, policy=KINDS["photos"], purge=_photos)
    # The erasure report says how many intakes it keeps with the signed record.
    SIGNED_VISIT_EXTRAS.insert(0, ("intake(s)", _signed_visit_intakes))
