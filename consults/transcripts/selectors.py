"""Consult audio and transcripts: selectors (reads). The writes are in ``services``."""

from __future__ import annotations

import re
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from consults.models import (
    FINISHED_CHUNK_STATUSES,
    AudioChunk,
    ChunkStatus,
    ClinicalNote,
    Recording,
    Speaker,
    TranscriptSegment,
    Visit,
    VisitStatus,
)
from telehealth.lost_work import RESEND_WITHIN
from telehealth.models import User

# Chunks still in flight when the physician hangs up are accepted this long afterwards.
HANG_UP_GRACE = timedelta(minutes=2)


def capture_visit(*, user: User, visit_id: int) -> Visit | None:
    """The visit if ``user`` is its patient or physician and its audio may still arrive."""
    if not user.is_authenticated:
        return None
    recent = timezone.now() - HANG_UP_GRACE
    return (
        Visit.objects.select_related("patient", "physician")
        .filter(pk=visit_id)
        .filter(Q(patient=user) | Q(physician=user))
        .filter(
            Q(status=VisitStatus.IN_CONSULT) | Q(status=VisitStatus.COMPLETED, ended_at__gte=recent)
        )
        .first()
    )


def transcript_visit(*, user: User, visit_id: int, allow_admin: bool = False) -> Visit | None:
    """The visit if ``user`` may read its transcript: its physician (and admins if allowed)."""
    if not user.is_authenticated or not user.is_active:
        return None
    visits = Visit.objects.select_related("patient", "physician").filter(pk=visit_id)
    if allow_admin and user.is_clinic_admin:
        return visits.first()
    if not user.is_physician:
        return None
    return visits.filter(physician=user).first()


def speech_known_terms(*, visit: Visit, formulary: tuple[str, ...]) -> tuple[str, ...]:
    """Medicines and allergies already known for the patient: their last signed note's facts
    and every formulary name in the visit's reason and intake answers (medicines, allergies)."""
    terms: list[str] = []
    note = (
        ClinicalNote.objects.filter(
            visit__patient_id=visit.patient_id, status=ClinicalNote.Status.SIGNED
        )
        .exclude(visit=visit)
        .order_by("-signed_at")
        .first()
    )
    if note is not None:
        facts = (note.content or {}).get("facts") or {}
        terms += [str(m.get("name", "")) for m in facts.get("medications") or []]
        terms += [str(a.get("substance", "")) for a in facts.get("allergies") or []]
    said = f" {_words(' '.join((visit.reason, *_intake_answers(visit))))} "
    terms += [name for name in formulary if f" {_words(name)} " in said]
    return tuple(t for t in terms if t)


def speech_patient_words(*, visit: Visit) -> tuple[str, ...]:
    """The names the patient wrote for their medicines and allergies at intake, each item's
    leading words ("Eliquis" from "Eliquis 5mg twice a day"): hints for the transcriber, not
    names to correct towards (a patient may misspell them)."""
    names = []
    for answer in _intake_answers(visit):
        for item in re.split(r"[,;\n/]|\band\b", answer):
            words = []
            for word in item.split()[:4]:
                if not word.isalpha():
                    break  # a dose ("5mg", "500") ends the name
                words.append(word)
            name = " ".join(words)
            if 3 <= len(name) <= 30:
                names.append(name)
    return tuple(names)


def _intake_answers(visit: Visit) -> tuple[str, str]:
    # The reverse accessor: consults does not import triage, which owns the intake.
    intake = getattr(visit, "intake", None)
    return (intake.medicines, intake.allergies) if intake is not None else ("", "")


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def speech_previous_text(*, visit: Visit, before_s: float, lines: int = 6) -> str:
    """The visit's last few transcript lines (both speakers) before ``before_s``, oldest first."""
    rows = list(
        TranscriptSegment.objects.filter(visit=visit, start_s__lt=before_s).order_by(
            "-start_s", "-id"
        )[:lines]
    )
    return " ".join(row.shown_text for row in reversed(rows))


def transcript_lines(*, visit: Visit) -> QuerySet[TranscriptSegment]:
    """Both speakers' lines merged in consult-time order."""
    return TranscriptSegment.objects.filter(visit=visit).order_by("start_s", "id")


def transcript_alerts(*, lines: list[TranscriptSegment]) -> list[tuple[TranscriptSegment, list]]:
    """Patient lines with red-flag phrases, with the flags found."""
    from consults.notes.red_flags import detect_red_flags

    found = []
    for line in lines:
        if line.speaker == Speaker.PATIENT:
            flags = detect_red_flags(line.shown_text)
            if flags:
                found.append((line, flags))
    return found


def transcript_status(*, visit: Visit) -> dict:
    """Chunk counts and whether the transcript is complete (call over, every chunk finished)."""
    counts = dict(
        AudioChunk.objects.filter(recording__visit=visit)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    pending = sum(n for status, n in counts.items() if status not in FINISHED_CHUNK_STATUSES)
    if visit.status == VisitStatus.IN_CONSULT:
        state = "live"
    elif pending:
        state = "processing"
    else:
        state = "complete"
    return {"state": state, "pending": pending, "counts": counts}


def next_chunk_index(*, visit: Visit, user: User) -> int:
    """The index after the last chunk this user's live track holds (0 when none)."""
    last = (
        AudioChunk.objects.filter(
            recording__visit=visit, recording__user=user, recording__source=Recording.Source.LIVE
        )
        .order_by("-index")
        .values_list("index", flat=True)
        .first()
    )
    return 0 if last is None else last + 1


def recordings_for_visit(*, visit: Visit) -> QuerySet[Recording]:
    return Recording.objects.filter(visit=visit).annotate(n_chunks=Count("chunks"))


# --- Lost work (the beat sweeper; docs/deploy.md, "Broker durability and lost work") ---------


def chunks_lost(*, now) -> QuerySet[AudioChunk]:
    """Chunks whose task message may be lost: still waiting LOST_WORK_AFTER after arriving.

    A chunk a worker already claimed is redelivered by the broker itself once the visibility
    timeout passes (the worker died), so it counts as lost only after that as well.
    """
    waited = now - timedelta(seconds=settings.LOST_WORK_AFTER)
    claimed = waited - timedelta(seconds=settings.BROKER_VISIBILITY_TIMEOUT)
    return (
        AudioChunk.objects.filter(created_at__gte=now - RESEND_WITHIN)
        .filter(
            Q(status=ChunkStatus.RECEIVED, created_at__lt=waited)
            | Q(status=ChunkStatus.TRANSCRIBING, created_at__lt=claimed)
        )
        .select_related("recording")
        .order_by("created_at", "id")
    )
