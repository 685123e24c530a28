"""Retention of the visit's health data: the kinds consults keeps (notes, chat, transcripts,
audio) and the visits retention works on. Registered with the core's ``telehealth.retention`` in
``ConsultsConfig.ready()``; docs/privacy.md gives the reasons.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
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
from telehealth.models import AuditEvent, User
from telehealth.retention import (
    POLICY,
    Policy,
    Removed,
    RetentionScope,
    purge_rows,
    retention_kind_register,
    retention_scope_register,
    years_before,
)

# What each of consults' kinds is and why it is kept (settings.RETENTION gives how long).
KINDS = {
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
    "chat_messages": Policy(
        "Chat messages of visits without a signed note",
        "Part of no medical record; kept as long as the intake of the same visit.",
    ),
    "chat_attachments": Policy(
        "Files sent in the consult chat",
        "Looked at during the consult; what matters clinically is written into the signed note.",
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
# Counted in the erasure report beside the signed notes ("N intake(s) and M chat message(s) of
# those visits"): apps above consults add theirs, first, in their AppConfig.ready().
SIGNED_VISIT_EXTRAS: list[tuple[str, Callable[[QuerySet[Visit]], int]]] = []


def closed_before(visits: QuerySet[Visit], before: datetime | None) -> QuerySet[Visit]:
    """The visits that closed (ended, were cancelled, or were due) before ``before``."""
    if before is None:
        return visits
    closed = Coalesce("ended_at", "cancelled_at", "scheduled_start", "created_at")
    return visits.alias(closed=closed).filter(closed__lt=before)


def without_signed_note(visits: QuerySet[Visit]) -> QuerySet[Visit]:
    return visits.exclude(note__status=ClinicalNote.Status.SIGNED)


def _signed_notes(visits: QuerySet[Visit], before: datetime | None) -> Removed:
    notes = ClinicalNote.objects.filter(visit__in=visits, status=ClinicalNote.Status.SIGNED)
    if before is not None:
        # A minor's record counts from the age of majority: born before this date, an adult
        # already at the cutoff.
        adult_if_born_before = years_before(before.date(), settings.RETENTION_AGE_OF_MAJORITY)
        notes = notes.filter(
            Q(visit__patient__date_of_birth__isnull=True)
            | Q(visit__patient__date_of_birth__lt=adult_if_born_before),
            signed_at__lt=before,
        )
    return purge_rows("signed_notes", notes, patient="visit__patient_id")


def _unsigned_drafts(visits: QuerySet[Visit], before: datetime | None) -> Removed:
    notes = ClinicalNote.objects.filter(visit__in=visits).exclude(status=ClinicalNote.Status.SIGNED)
    if before is not None:
        last_drafted = Coalesce("drafted_at", "visit__ended_at", "visit__created_at")
        notes = notes.alias(last_drafted=last_drafted).filter(last_drafted__lt=before)
    return purge_rows("unsigned_drafts", notes, patient="visit__patient_id")


def _chat_messages(visits: QuerySet[Visit], before: datetime | None) -> Removed:
    messages = ChatMessage.objects.filter(
        visit__in=closed_before(without_signed_note(visits), before)
    )
    return purge_rows(
        "chat_messages", messages, patient="visit__patient_id", files=("attachment_path",)
    )


def _chat_attachments(visits: QuerySet[Visit], before: datetime | None) -> Removed:
    messages = ChatMessage.objects.filter(visit__in=visits).exclude(attachment_path="")
    if before is not None:
        messages = messages.filter(created_at__lt=before)

    def remove(batch: QuerySet[ChatMessage]) -> None:
        batch.filter(text="").delete()
        batch.update(attachment_path="", attachment_name="", attachment_type="")

    return purge_rows(
        "chat_attachments",
        messages,
        patient="visit__patient_id",
        files=("attachment_path",),
        remove=remove,
    )


def _transcripts(visits: QuerySet[Visit], before: datetime | None) -> Removed:
    segments = TranscriptSegment.objects.filter(visit__in=visits)
    if before is not None:
        segments = segments.filter(chunk__created_at__lt=before)
    return purge_rows("transcripts", segments, patient="visit__patient_id")


def _audio(visits: QuerySet[Visit], before: datetime | None) -> Removed:
    chunks = AudioChunk.objects.filter(recording__visit__in=visits).exclude(path="")
    if before is not None:
        chunks = chunks.filter(created_at__lt=before)

    def remove(batch: QuerySet[AudioChunk]) -> None:
        # Deleting a chunk deletes its transcript lines: one that still has lines keeps its
        # row, without its file, until they expire.
        batch.filter(segments__isnull=True).delete()
        batch.update(path="")

    result = purge_rows(
        "audio", chunks, patient="recording__visit__patient_id", files=("path",), remove=remove
    )
    AudioChunk.objects.filter(recording__visit__in=visits, path="", segments__isnull=True).delete()
    recordings = Recording.objects.filter(visit__in=visits, chunks__isnull=True)
    if before is not None:
        recordings = recordings.filter(created_at__lt=before)
    recordings.delete()
    return result


def _kept(patient: User, visits: QuerySet[Visit]) -> list[dict]:
    notes = ClinicalNote.objects.filter(visit__in=visits, status=ClinicalNote.Status.SIGNED)
    signed_visits = visits.filter(note__status=ClinicalNote.Status.SIGNED)
    until = [
        _record_kept_until(signed_at=signed_at, date_of_birth=patient.date_of_birth)
        for signed_at in notes.values_list("signed_at", flat=True)
    ]
    until = [day for day in until if day is not None]
    extras = [(label, count(signed_visits)) for label, count in SIGNED_VISIT_EXTRAS] + [
        ("chat message(s)", ChatMessage.objects.filter(visit__in=signed_visits).count())
    ]
    counts = {
        "signed_notes": notes.count(),
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
            "extra": " and ".join(f"{n} {label}" for label, n in extras) + " of those visits",
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
        majority = years_before(date_of_birth, -settings.RETENTION_AGE_OF_MAJORITY)
        start = max(start, majority)
    return start + timedelta(days=days)


def _closed_visits() -> QuerySet[Visit]:
    return Visit.objects.exclude(status__in=ACTIVE_STATUSES)


def _patient_visits(patient: User) -> QuerySet[Visit]:
    return Visit.objects.filter(patient=patient).exclude(status__in=ACTIVE_STATUSES)


def _active_count(patient: User) -> int:
    return Visit.objects.filter(patient=patient, status__in=ACTIVE_STATUSES).count()


def retention_register() -> None:
    """Declare consults' kinds and the visit scope (ConsultsConfig.ready())."""
    retention_scope_register(
        RetentionScope(
            closed=_closed_visits,
            of_patient=_patient_visits,
            active_count=_active_count,
            kept=_kept,
        )
    )
    # The order of the daily purge (triage's kinds sit between): signed notes first, so that the
    # intake and chat of a visit whose note has expired go in the same run; transcripts before
    # audio, because a chunk row is kept while its transcript lines exist.
    for order, kind, purge, erasable in (
        (10, "signed_notes", _signed_notes, False),
        (20, "unsigned_drafts", _unsigned_drafts, True),
        (40, "chat_messages", _chat_messages, True),
        (50, "chat_attachments", _chat_attachments, True),
        (70, "transcripts", _transcripts, True),
        (80, "audio", _audio, True),
    ):
        retention_kind_register(
            kind, order=order, policy=KINDS[kind], purge=purge, erasable=erasable
        )
