"""Clinical notes: selectors (reads). The writes are in ``consults.notes.services``."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q, QuerySet

from consults.models import ChunkStatus, ClinicalNote, ConsentPurpose, Speaker, Visit, VisitStatus
from consults.selectors import consent_given
from consults.transcripts.selectors import transcript_lines, transcript_status
from telehealth.lost_work import RESEND_WITHIN


def note_utterances(*, visit: Visit) -> tuple[list, list[dict]]:
    """The transcript as engine utterances (physician corrections win) and a line table."""
    from consults.notes.types import Utterance

    utterances, lines = [], []
    for index, segment in enumerate(transcript_lines(visit=visit).select_related("chunk")):
        speaker = "doctor" if segment.speaker == Speaker.PHYSICIAN else "patient"
        text = segment.shown_text
        utterances.append(Utterance(index, speaker, text, segment.start_s, segment.end_s))
        lines.append(
            {
                "index": index,
                "segment": segment.pk,
                "speaker": segment.speaker,
                "start_s": round(segment.start_s, 2),
                "end_s": round(segment.end_s, 2),
                "text": text,
                # What the recogniser heard where the engine corrected it (drug names, doses),
                # so a note's medicine cites the words said and what they became.
                "heard": segment.heard_text,
                "corrections": [
                    {k: c[k] for k in ("heard", "corrected", "kind", "confidence") if k in c}
                    for c in segment.corrections or []
                    if not c.get("reverted")
                ],
                # Where the line sits in its chunk's audio, so the review page can play it.
                "chunk": segment.chunk_id,
                "offset_s": round(max(0.0, segment.start_s - segment.chunk.start_s), 2),
                "offset_end_s": round(max(0.0, segment.end_s - segment.chunk.start_s), 2),
            }
        )
    return utterances, lines


def note_sections_streamed(*, note: ClinicalNote | None) -> list[dict]:
    """While the note is drafted: every section, written ones with their items, others pending."""
    if note is None or note.status != ClinicalNote.Status.DRAFTING:
        return []
    written = set((note.content or {}).get("written", []))
    return [
        {**section, "done": section["key"] in written}
        for section in note_sections_for_display(note=note)
    ]


def note_sections_for_display(*, note: ClinicalNote) -> list[dict]:
    """Sections in SOAP order with each item's cited lines resolved for the review page."""
    from consults.notes.types import stored_sections

    lines = {line["index"]: line for line in note.content.get("lines", [])}
    sections = note.content.get("sections", {})
    shown = []
    for group, key, title in stored_sections(sections):
        items = [
            {
                **item,
                "position": position,
                "lines": [lines[i] for i in item["evidence"] if i in lines],
            }
            for position, item in enumerate(sections.get(key, []))
        ]
        shown.append({"group": group, "key": key, "title": title, "items": items})
    return shown


def note_progress(*, visit: Visit) -> dict:
    """Where the visit's note stands, for the review page while it is not ready (no health data).

    ``state``: in_consult, transcribing (with ``pending`` audio pieces), drafting, ready
    (a draft or a signed note to show), failed, or no_draft (nothing will be drafted
    automatically, e.g. no consent to AI notes).
    """
    note = ClinicalNote.objects.filter(visit=visit).first()
    if note is not None and note.status in (ClinicalNote.Status.DRAFT, ClinicalNote.Status.SIGNED):
        return {"state": "ready", "pending": 0}
    if note is not None and note.status == ClinicalNote.Status.FAILED:
        return {"state": "failed", "pending": 0}
    if visit.status == VisitStatus.IN_CONSULT:
        return {"state": "in_consult", "pending": 0}
    status = transcript_status(visit=visit)
    if status["state"] == "processing":
        return {"state": "transcribing", "pending": status["pending"]}
    if note is not None:
        # Sections already written (and saved) while the rest is drafted, for the review page.
        written = set((note.content or {}).get("written", []))
        return {"state": "drafting", "pending": 0, "written": written}
    if not consent_given(visit=visit, purpose=ConsentPurpose.AI_NOTES):
        return {"state": "no_consent", "pending": 0}
    return {"state": "no_draft", "pending": 0}


def summary_is_ready(*, visit: Visit) -> bool:
    """Whether the patient may read an after-visit summary (the note is signed)."""
    return ClinicalNote.objects.filter(visit=visit, status=ClinicalNote.Status.SIGNED).exists()


# --- Lost work (the beat sweeper; docs/deploy.md, "Broker durability and lost work") ---------


def visits_note_lost(*, now) -> QuerySet[Visit]:
    """Finished consults whose transcript is complete but whose note was never drafted.

    Either the last chunk's task died between storing its lines and requesting the note (its
    redelivery finds the chunk done), or the draft task's message was lost. Re-drafts that a
    physician asked for are ``visits_redraft_lost``.
    """
    waited = now - timedelta(seconds=settings.LOST_WORK_AFTER)
    return (
        Visit.objects.filter(
            status=VisitStatus.COMPLETED,
            ended_at__gte=now - RESEND_WITHIN,
            ended_at__lt=waited,
            recordings__chunks__isnull=False,
        )
        .filter(
            Q(note__isnull=True)
            | Q(note__status=ClinicalNote.Status.DRAFTING, note__drafted_at__isnull=True)
        )
        .exclude(recordings__chunks__status__in=[ChunkStatus.RECEIVED, ChunkStatus.TRANSCRIBING])
        # The note is requested when the last chunk finishes: give that request time too.
        .exclude(recordings__chunks__created_at__gte=waited)
        .exclude(recordings__chunks__transcribed_at__gte=waited)
        .distinct()
        .order_by("pk")
    )


def visits_redraft_lost(*, now) -> QuerySet[Visit]:
    """Visits whose note a physician asked to re-draft, still drafting LOST_WORK_AFTER later
    (the draft task's time limit is far shorter: its message was lost)."""
    waited = now - timedelta(seconds=settings.LOST_WORK_AFTER)
    return Visit.objects.filter(
        note__status=ClinicalNote.Status.DRAFTING,
        note__drafted_at__isnull=False,
        note__requested_at__gte=now - RESEND_WITHIN,
        note__requested_at__lt=waited,
    ).order_by("pk")
