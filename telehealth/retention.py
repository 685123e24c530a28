"""Retention of health data: periods per kind (``settings.RETENTION``), the daily purge, and a
patient's erasure request.

One function per kind removes that kind's rows and private files within a set of visits: those
older than the kind's period (the daily task), or all of them (an erasure). Visits in progress are
never touched. Files go first, then rows: a crash in between leaves rows whose files are already
gone, which the next run removes, and never a file that nothing points to.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from consults.models import (
    ACTIVE_STATUSES,
    AudioChunk,
    ChatMessage,
    ClinicalNote,
    Consent,
    Recording,
    TranscriptSegment,
    Visit,
)
from telehealth.audit import audit_record
from telehealth.models import AuditAction, AuditEvent, ErasureRequest, User
from telehealth.private_media import private_delete
from triage.models import Intake, Photo, PhotoConcern, UrgencyChange

BATCH = 500
# What a visit's free-text reason becomes once its intake is removed.
REMOVED_REASON = "(removed)"


@dataclass(frozen=True)
class Policy:
    label: str
    why: str


# One row per kind of settings.RETENTION, in the order the daily purge runs them (signed notes
# first, so that the intake and chat of a visit whose note has expired go in the same run;
# transcripts before audio, because a chunk row is kept while its transcript lines exist).
POLICY = {
    "signed_notes": Policy(
        "Signed clinical notes and their revisions, with the intake and chat messages of their "
        "visits",
        "The medical record: the law requires the clinic to keep it for a set period, counted "
        "from the signature (for a minor, from the age of majority).",
    ),
    "unsigned_drafts": Policy(
        "AI note drafts that were never signed",
        "A draft that no physician signed is not part of the medical record.",
    ),
    "intakes": Policy(
        "Intake answers, visit reason and urgency history of visits without a signed note",
        "Part of no medical record; kept a while so the clinic can follow up the red flags of a "
        "visit that did not take place.",
    ),
    "chat_messages": Policy(
        "Chat messages of visits without a signed note",
        "Part of no medical record; kept as long as the intake of the same visit.",
    ),
    "chat_attachments": Policy(
        "Files sent in the consult chat",
        "Looked at during the consult; what matters clinically is written into the signed note.",
    ),
    "photos": Policy(
        "Photos, their AI analyses, heat maps and wound outlines",
        "Kept long enough to compare a lesion or a wound across visits.",
    ),
    "transcripts": Policy(
        "Consult transcripts",
        "Used to draft and check the note; the lines a signed note cites are copied into the "
        "note itself.",
    ),
    "audio": Policy(
        "Consult audio (live recording and uploaded files)",
        "The signed note is the record of the consult; the raw audio is only needed to check "
        "the transcript and the draft in the first weeks.",
    ),
    "audit_log": Policy(
        "Audit log (who opened or changed your data, and when)",
        "Append-only proof of every access, kept for security and accountability; it holds "
        "ids, never health data.",
    ),
}

# Kept by an erasure besides the signed record and the audit log.
ERASURE_KEPT = {
    "consents": Policy(
        "Your consent decisions",
        "The clinic must be able to show what you agreed to and refused, and when.",
    ),
    "visits": Policy(
        "Visit dates, physician, kind and status",
        "Needed for billing and accounting; the reason you gave was removed from visits "
        "without a signed note.",
    ),
    "account": Policy(
        "Your account",
        "Keeps the kept records attributable and lets you read this report; ask the clinic to "
        "close it.",
    ),
}


@dataclass
class Removed:
    """What one kind's purge removed: items (rows), files, and items per patient id."""

    kind: str
    items: int = 0
    files: int = 0
    by_patient: Counter = field(default_factory=Counter)


class ErasureBlocked(Exception):
    """The request cannot be processed yet; the message says why."""


# --- Reads ---------------------------------------------------------------------------------


def retention_policy() -> list[dict]:
    """The retention table shown to patients, shortest period first: what, how long, why."""
    days = {kind: settings.RETENTION.get(kind) for kind in POLICY}
    order = sorted(POLICY, key=lambda kind: (days[kind] is None, days[kind] or 0))
    return [
        {
            "kind": kind,
            "label": POLICY[kind].label,
            "period": period_text(days[kind]),
            "why": POLICY[kind].why,
        }
        for kind in order
    ]


def period_text(days: int | None) -> str:
    if days is None:
        return "kept, not deleted by the application"
    if days % 365 == 0:
        years = days // 365
        return f"{years} year{'s' if years > 1 else ''}"
    return f"{days} days"


def erasure_requests_visible_to(*, user: User) -> QuerySet[ErasureRequest]:
    """Administrators see every request, a patient only their own, anyone else none."""
    requests = ErasureRequest.objects.select_related("patient", "processed_by")
    if user.is_clinic_admin:
        return requests
    if user.is_patient:
        return requests.filter(patient=user)
    return requests.none()


def active_visit_count(*, patient: User) -> int:
    return Visit.objects.filter(patient=patient, status__in=ACTIVE_STATUSES).count()


# --- One function per kind -----------------------------------------------------------------


def _purge(
    kind: str,
    items: QuerySet,
    *,
    patient: str,
    files: tuple[str, ...] = (),
    remove: Callable[[QuerySet], object] | None = None,
) -> Removed:
    """Delete the files of ``items`` batch by batch, then ``remove`` their rows (default: delete).

    ``remove`` must take each row out of ``items`` (delete it, or clear what matched).
    """
    result = Removed(kind)
    seen: set[int] = set()
    while True:
        rows = list(items.order_by("pk").values_list("pk", patient, *files)[:BATCH])
        if not rows:
            return result
        pks = [row[0] for row in rows]
        if seen.intersection(pks):
            raise RuntimeError(f"retention of {kind} did not remove its rows")
        seen.update(pks)
        for _pk, patient_id, *paths in rows:
            for path in paths:
                if path:
                    private_delete(path)
                    result.files += 1
            result.by_patient[patient_id] += 1
        batch = items.model.objects.filter(pk__in=pks)
        with transaction.atomic():
            if remove is None:
                batch.delete()
            else:
                remove(batch)
        result.items += len(rows)


def _closed_before(visits: QuerySet[Visit], before: datetime | None) -> QuerySet[Visit]:
    if before is None:
        return visits
    closed = Coalesce("ended_at", "cancelled_at", "scheduled_start", "created_at")
    return visits.alias(closed=closed).filter(closed__lt=before)


def _without_signed_note(visits: QuerySet[Visit]) -> QuerySet[Visit]:
    return visits.exclude(note__status=ClinicalNote.Status.SIGNED)


def _signed_notes(visits: QuerySet[Visit], before: datetime | None) -> Removed:
    notes = ClinicalNote.objects.filter(visit__in=visits, status=ClinicalNote.Status.SIGNED)
    if before is not None:
        # A minor's record counts from the age of majority: born before this date, an adult
        # already at the cutoff.
        adult_if_born_before = _years_before(before.date(), settings.RETENTION_AGE_OF_MAJORITY)
        notes = notes.filter(
            Q(visit__patient__date_of_birth__isnull=True)
            | Q(visit__patient__date_of_birth__lt=adult_if_born_before),
            signed_at__lt=before,
        )
    return _purge("signed_notes", notes, patient="visit__patient_id")


def _unsigned_drafts(visits: QuerySet[Visit], before: datetime | None) -> Removed:
    notes = ClinicalNote.objects.filter(visit__in=visits).exclude(status=ClinicalNote.Status.SIGNED)
    if before is not None:
        last_drafted = Coalesce("drafted_at", "visit__ended_at", "visit__created_at")
        notes = notes.alias(last_drafted=last_drafted).filter(last_drafted__lt=before)
    return _purge("unsigned_drafts", notes, patient="visit__patient_id")


def _intakes(visits: QuerySet[Visit], before: datetime | None) -> Removed:
    targets = _closed_before(_without_signed_note(visits), before).filter(
        Exists(Intake.objects.filter(visit=OuterRef("pk")))
        | Exists(UrgencyChange.objects.filter(visit=OuterRef("pk")))
        | ~Q(reason=REMOVED_REASON)
        | ~Q(urgency_reason="")
    )

    def remove(batch: QuerySet[Visit]) -> None:
        Intake.objects.filter(visit__in=batch).delete()
        UrgencyChange.objects.filter(visit__in=batch).delete()
        batch.update(reason=REMOVED_REASON, urgency_reason="")

    return _purge("intakes", targets, patient="patient_id", remove=remove)


def _chat_messages(visits: QuerySet[Visit], before: datetime | None) -> Removed:
    messages = ChatMessage.objects.filter(
        visit__in=_closed_before(_without_signed_note(visits), before)
    )
    return _purge(
        "chat_messages", messages, patient="visit__patient_id", files=("attachment_path",)
    )


def _chat_attachments(visits: QuerySet[Visit], before: datetime | None) -> Removed:
    messages = ChatMessage.objects.filter(visit__in=visits).exclude(attachment_path="")
    if before is not None:
        messages = messages.filter(created_at__lt=before)

    def remove(batch: QuerySet[ChatMessage]) -> None:
        batch.filter(text="").delete()
        batch.update(attachment_path="", attachment_name="", attachment_type="")

    return _purge(
        "chat_attachments",
        messages,
        patient="visit__patient_id",
        files=("attachment_path",),
        remove=remove,
    )


def _photos(visits: QuerySet[Visit], before: datetime | None) -> Removed:
    photos = Photo.objects.filter(visit__in=visits)
    if before is not None:
        photos = photos.filter(created_at__lt=before)
    result = _purge(
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


def _transcripts(visits: QuerySet[Visit], before: datetime | None) -> Removed:
    segments = TranscriptSegment.objects.filter(visit__in=visits)
    if before is not None:
        segments = segments.filter(chunk__created_at__lt=before)
    return _purge("transcripts", segments, patient="visit__patient_id")


def _audio(visits: QuerySet[Visit], before: datetime | None) -> Removed:
    chunks = AudioChunk.objects.filter(recording__visit__in=visits).exclude(path="")
    if before is not None:
        chunks = chunks.filter(created_at__lt=before)

    def remove(batch: QuerySet[AudioChunk]) -> None:
        # Deleting a chunk deletes its transcript lines: one that still has lines keeps its
        # row, without its file, until they expire.
        batch.filter(segments__isnull=True).delete()
        batch.update(path="")

    result = _purge(
        "audio", chunks, patient="recording__visit__patient_id", files=("path",), remove=remove
    )
    AudioChunk.objects.filter(recording__visit__in=visits, path="", segments__isnull=True).delete()
    recordings = Recording.objects.filter(visit__in=visits, chunks__isnull=True)
    if before is not None:
        recordings = recordings.filter(created_at__lt=before)
    recordings.delete()
    return result


PURGES: dict[str, Callable[[QuerySet[Visit], datetime | None], Removed]] = {
    "signed_notes": _signed_notes,
    "unsigned_drafts": _unsigned_drafts,
    "intakes": _intakes,
    "chat_messages": _chat_messages,
    "chat_attachments": _chat_attachments,
    "photos": _photos,
    "transcripts": _transcripts,
    "audio": _audio,
}
# What a patient's erasure removes: everything but the signed record (and, through the scope
# of these kinds, the intake and chat of visits with a signed note).
ERASABLE = [kind for kind in PURGES if kind != "signed_notes"]


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _summary(results: list[Removed]) -> str:
    parts = [
        f"{r.kind} {r.items}" + (f" ({r.files} files)" if r.files else "")
        for r in results
        if r.items
    ]
    return "; ".join(parts)


# --- The daily purge -----------------------------------------------------------------------


def retention_enforce(*, now: datetime | None = None) -> dict[str, Removed]:
    """Remove every item older than its kind's period; idempotent.

    Records one audit event per patient concerned and one for the run, with counts only.
    """
    now = now or timezone.now()
    visits = Visit.objects.exclude(status__in=ACTIVE_STATUSES)
    results: dict[str, Removed] = {}
    for kind, purge in PURGES.items():
        days = settings.RETENTION.get(kind)
        if days is not None:
            results[kind] = purge(visits, now - timedelta(days=days))
    _audit_purge(list(results.values()))
    return results


def _audit_purge(results: list[Removed]) -> None:
    patient_ids = set().union(*(r.by_patient for r in results))
    patients = User.objects.in_bulk(patient_ids)
    for patient_id in sorted(patient_ids):
        mine = [Removed(r.kind, items=r.by_patient[patient_id]) for r in results]
        audit_record(
            actor=None,
            action=AuditAction.DELETE,
            object_type="retention",
            patient=patients.get(patient_id),
            detail=f"expired: {_summary(mine)}",
        )
    if patient_ids:
        audit_record(
            actor=None,
            action=AuditAction.DELETE,
            object_type="retention",
            detail=f"expired: {_summary(results)}",
        )


# --- Erasure requests ----------------------------------------------------------------------


def erasure_request_file(*, patient: User) -> ErasureRequest:
    """File a patient's erasure request; a second one while the first is pending returns it."""
    if not patient.is_patient:
        raise PermissionError("Only patients file erasure requests")
    with transaction.atomic():
        pending = ErasureRequest.objects.filter(
            patient=patient, status=ErasureRequest.Status.PENDING
        ).first()
        if pending is not None:
            return pending
        erasure = ErasureRequest.objects.create(patient=patient)
        audit_record(
            actor=patient,
            action=AuditAction.WRITE,
            object_type="erasure_request",
            object_id=erasure.pk,
            patient=patient,
            detail="filed",
        )
    return erasure


def erasure_process(*, erasure: ErasureRequest, admin: User) -> ErasureRequest:
    """Remove what policy allows of the patient's data and store the report of what was kept.

    Refused while the patient has a visit booked or in progress (its intake and photos are in
    use). Processing a request already done changes nothing.
    """
    if not admin.is_clinic_admin:
        raise PermissionError("Only clinic administrators process erasure requests")
    with transaction.atomic():
        erasure = ErasureRequest.objects.select_for_update().get(pk=erasure.pk)
        if erasure.status != ErasureRequest.Status.PENDING:
            return erasure
        patient = erasure.patient
        active = active_visit_count(patient=patient)
        if active:
            raise ErasureBlocked(
                f"The patient has {active} visit{'s' if active > 1 else ''} booked or in "
                "progress; process the request once they have ended or been cancelled."
            )
        visits = Visit.objects.filter(patient=patient).exclude(status__in=ACTIVE_STATUSES)
        removed = [PURGES[kind](visits, None) for kind in ERASABLE]
        # Before the report, which counts the audit events kept (this one included).
        audit_record(
            actor=admin,
            action=AuditAction.DELETE,
            object_type="erasure_request",
            object_id=erasure.pk,
            patient=patient,
            detail=f"erased: {_summary(removed)}",
        )
        erasure.report = {
            "removed": [
                {"kind": r.kind, "label": POLICY[r.kind].label, "items": r.items, "files": r.files}
                for r in removed
            ],
            "kept": _kept(patient=patient, visits=visits),
        }
        erasure.status = ErasureRequest.Status.DONE
        erasure.processed_at = timezone.now()
        erasure.processed_by = admin
        erasure.save()
    return erasure


def _kept(*, patient: User, visits: QuerySet[Visit]) -> list[dict]:
    notes = ClinicalNote.objects.filter(visit__in=visits, status=ClinicalNote.Status.SIGNED)
    signed_visits = visits.filter(note__status=ClinicalNote.Status.SIGNED)
    until = [
        _record_kept_until(signed_at=signed_at, date_of_birth=patient.date_of_birth)
        for signed_at in notes.values_list("signed_at", flat=True)
    ]
    until = [day for day in until if day is not None]
    counts = {
        "signed_notes": notes.count(),
        "signed_visit_intakes": Intake.objects.filter(visit__in=signed_visits).count(),
        "signed_visit_chat": ChatMessage.objects.filter(visit__in=signed_visits).count(),
        "audit_log": AuditEvent.objects.filter(patient=patient).count(),
        "consents": Consent.objects.filter(patient=patient).count(),
        "visits": visits.count(),
        "account": 1,
    }
    record = POLICY["signed_notes"]
    kept = [
        {
            "kind": "signed_notes",
            "label": record.label,
            "items": counts["signed_notes"],
            "extra": (
                f"{counts['signed_visit_intakes']} intake(s) and "
                f"{counts['signed_visit_chat']} chat message(s) of those visits"
            ),
            "reason": record.why,
            "until": max(until).isoformat() if until else "",
        },
        {
            "kind": "audit_log",
            "label": POLICY["audit_log"].label,
            "items": counts["audit_log"],
            "reason": POLICY["audit_log"].why,
        },
    ]
    kept += [
        {"kind": kind, "label": p.label, "items": counts[kind], "reason": p.why}
        for kind, p in ERASURE_KEPT.items()
    ]
    return kept


def _record_kept_until(*, signed_at: datetime | None, date_of_birth: date | None) -> date | None:
    days = settings.RETENTION.get("signed_notes")
    if days is None or signed_at is None:
        return None
    start = timezone.localdate(signed_at)
    if date_of_birth is not None:
        majority = _years_before(date_of_birth, -settings.RETENTION_AGE_OF_MAJORITY)
        start = max(start, majority)
    return start + timedelta(days=days)
