"""Clinical notes: drafting from the transcript, physician edits, signing, after-visit summary.

Services (writes) and selectors (reads) for notes. The drafting engine (consults.notes) runs in
the ml worker; the web process only edits and signs stored JSON.
"""

from __future__ import annotations

from dataclasses import asdict

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from consults.models import (
    ClinicalNote,
    ConsentPurpose,
    NoteRevision,
    Speaker,
    Visit,
    VisitStatus,
)
from consults.realtime import room_push
from consults.selectors import consent_given
from consults.transcription import transcript_lines, transcript_status
from telehealth.lost_work import send_on_commit
from telehealth.models import User
from triage.realtime import queue_changed

MAX_ITEM_CHARS = 1000
# Items the engine must never write without a cited line (the grounding check enforces it).
FACT_SECTIONS = ("medications", "allergies")


class NoteError(Exception):
    """A note request that cannot be carried out; the message is shown to the physician."""


# --- Selectors --------------------------------------------------------------------------------


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
                # Where the line sits in its chunk's audio, so the review page can play it.
                "chunk": segment.chunk_id,
                "offset_s": round(max(0.0, segment.start_s - segment.chunk.start_s), 2),
                "offset_end_s": round(max(0.0, segment.end_s - segment.chunk.start_s), 2),
            }
        )
    return utterances, lines


def note_sections_for_display(*, note: ClinicalNote) -> list[dict]:
    """Sections in SOAP order with each item's cited lines resolved for the review page."""
    from consults.notes.types import SECTION_TITLES, SOAP_GROUPS

    lines = {line["index"]: line for line in note.content.get("lines", [])}
    sections = note.content.get("sections", {})
    shown = []
    for group, keys in SOAP_GROUPS.items():
        for key in keys:
            items = [
                {
                    **item,
                    "position": position,
                    "lines": [lines[i] for i in item["evidence"] if i in lines],
                }
                for position, item in enumerate(sections.get(key, []))
            ]
            shown.append({"group": group, "key": key, "title": SECTION_TITLES[key], "items": items})
    return shown


# --- Services ---------------------------------------------------------------------------------


def note_request(*, visit: Visit, redraft: bool = False) -> ClinicalNote | None:
    """Queue drafting once the consult is over and its transcript complete (AI consent needed).

    Called automatically when the last chunk finishes (drafts once) and by the physician's
    re-draft button (``redraft``) after transcript corrections.
    """
    if visit.status != VisitStatus.COMPLETED:
        return None
    if not consent_given(visit=visit, purpose=ConsentPurpose.AI_NOTES):
        return None
    if transcript_status(visit=visit)["state"] != "complete":
        return None
    note, created = ClinicalNote.objects.get_or_create(visit=visit)
    if note.status == ClinicalNote.Status.SIGNED or not (created or redraft):
        return note
    ClinicalNote.objects.filter(pk=note.pk).update(
        status=ClinicalNote.Status.DRAFTING, requested_at=timezone.now()
    )
    from consults.tasks import draft_note_for_visit

    send_on_commit(draft_note_for_visit, visit.pk)
    return note


def note_draft(*, visit_id: int) -> ClinicalNote | None:
    """Draft (or re-draft) the note from the transcript in the worker; never over a signed note."""
    from consults.notes.grounding import ground_note

    visit = Visit.objects.get(pk=visit_id)
    if not consent_given(visit=visit, purpose=ConsentPurpose.AI_NOTES):
        return None
    utterances, lines = note_utterances(visit=visit)
    draft, _problems = ground_note(
        note=_drafter().draft(utterances=utterances), utterances=utterances
    )
    content = {
        "sections": {
            key: [{**asdict(item), "origin": "engine"} for item in items]
            for key, items in draft.sections.items()
        },
        "lines": lines,
        "facts": asdict(draft.facts),
        # Shown on the review page: why the rules wrote it, or that there was nothing to say.
        "notices": list(draft.notices),
        # Sentences the grounding check left out, with the reasons, for the review page.
        "dropped": list(draft.dropped),
        "dropped_count": len(draft.dropped),
    }
    with transaction.atomic():
        note, _ = ClinicalNote.objects.select_for_update().get_or_create(visit=visit)
        if note.status == ClinicalNote.Status.SIGNED:
            return note
        note.version += 1
        note.content = content
        note.engine_version = draft.engine_version
        note.status = ClinicalNote.Status.DRAFT
        note.drafted_at = timezone.now()
        note.failure_reason = ""
        note.save()
        NoteRevision.objects.create(
            note=note, version=note.version, kind=NoteRevision.Kind.DRAFTED, content=content
        )
    room_push(visit_id=visit.pk, payload={"type": "note.drafted"}, staff_only=True)
    # Staff pages (the note review waiting for it, the physician's "to sign" list) refresh.
    queue_changed(visit=visit, event="note_drafted")
    return note


def _drafter():
    """The configured note backend, with the NOTES_LLM_* settings when it is the model."""
    from consults.notes.backends import LLM_BACKEND, get_drafter, resolve_backend

    path = resolve_backend(settings.NOTES_BACKEND)
    options: tuple = ()
    if path == LLM_BACKEND:
        options = (
            ("model_path", settings.NOTES_LLM_MODEL_PATH or None),
            ("base_url", settings.NOTES_LLM_BASE_URL or None),
            ("api_model", settings.NOTES_LLM_API_MODEL),
            ("timeout_s", float(settings.NOTES_LLM_TIMEOUT_S)),
            ("threads", settings.NOTES_LLM_THREADS),
            ("context_tokens", settings.NOTES_LLM_CONTEXT),
            ("cache_dir", settings.NOTES_MODEL_CACHE_DIR),
        )
    return get_drafter(path=path, options=options)


def note_mark_failed(*, visit_id: int, reason: str) -> None:
    ClinicalNote.objects.filter(visit_id=visit_id).exclude(
        status=ClinicalNote.Status.SIGNED
    ).update(status=ClinicalNote.Status.FAILED, failure_reason=reason[:300])
    visit = Visit.objects.filter(pk=visit_id).first()
    if visit is not None:
        queue_changed(visit=visit, event="note_drafted")


def _require_author(*, note: ClinicalNote, physician: User) -> None:
    if physician.pk != note.visit.physician_id:
        raise NoteError("Only the visit's physician can edit or sign its note.")
    if note.status == ClinicalNote.Status.SIGNED:
        raise NoteError("This note is signed and locked.")
    if note.status != ClinicalNote.Status.DRAFT:
        raise NoteError("The draft is not ready yet.")


def note_edit(
    *, note: ClinicalNote, physician: User, edits: dict[str, list[str]], added: dict[str, str]
) -> ClinicalNote:
    """Apply the physician's edits: item texts per section (empty removes), plus new items.

    Edited engine items keep their cited lines; physician-added items carry none and say so.
    """
    _require_author(note=note, physician=physician)
    sections = note.content.get("sections", {})
    for key, texts in edits.items():
        items = sections.get(key, [])
        if len(texts) != len(items):
            raise NoteError("The note changed while you were editing it. Reload and try again.")
        kept = []
        for item, text in zip(items, texts, strict=True):
            text = text.strip()[:MAX_ITEM_CHARS]
            if not text:
                continue
            if text != item["text"]:
                item = {**item, "text": text, "origin": "physician", "needs_review": False}
            kept.append(item)
        sections[key] = kept
    for key, text in added.items():
        text = text.strip()[:MAX_ITEM_CHARS]
        if text and key in sections:
            sections[key].append(
                {
                    "text": text,
                    "evidence": [],
                    "needs_review": False,
                    "kind": "statement",
                    "confidence": 1.0,
                    "origin": "physician",
                }
            )
    return _save_revision(
        note=note,
        physician=physician,
        content={**note.content, "sections": sections},
        kind=NoteRevision.Kind.EDITED,
    )


def note_sign(*, note: ClinicalNote, physician: User) -> ClinicalNote:
    """Sign and lock the note, and write the patient's after-visit summary from it."""
    _require_author(note=note, physician=physician)
    note.signed_by = physician
    note.signed_at = timezone.now()
    note.after_visit_summary = after_visit_summary(content=note.content)
    note = _save_revision(
        note=note,
        physician=physician,
        content=note.content,
        kind=NoteRevision.Kind.SIGNED,
        status=ClinicalNote.Status.SIGNED,
    )
    # The patient's visit page learns (live) that their after-visit summary is ready; the
    # physician's "to sign" list drops the visit.
    queue_changed(visit=note.visit, event="summary_ready")
    return note


def _save_revision(
    *, note: ClinicalNote, physician: User, content: dict, kind: str, status: str | None = None
) -> ClinicalNote:
    with transaction.atomic():
        locked = ClinicalNote.objects.select_for_update().get(pk=note.pk)
        if locked.status == ClinicalNote.Status.SIGNED:
            raise NoteError("This note is signed and locked.")
        note.version = locked.version + 1
        note.content = content
        if status:
            note.status = status
        note.save()
        NoteRevision.objects.create(
            note=note, version=note.version, kind=kind, content=content, author=physician
        )
    return note


SAFETY_NET = (
    "Seek urgent care (call emergency services) if you have chest pain, trouble breathing, "
    "fainting, confusion, heavy bleeding, or if you feel much worse."
)


def after_visit_summary(*, content: dict) -> str:
    """Plain-language summary for the patient, built only from the signed note's items."""
    sections = content.get("sections", {})

    def texts(key: str) -> list[str]:
        return [item["text"] for item in sections.get(key, [])]

    parts = []
    reason = texts("chief_complaint")
    if reason:
        parts.append("Why you were seen: " + "; ".join(reason))
    found = texts("assessment")
    if found:
        parts.append("What we found: " + " ".join(found))
    plan = texts("plan")
    if plan:
        parts.append("What to do next:\n" + "\n".join(f"- {t}" for t in plan))
    meds = texts("medications")
    if meds:
        parts.append("Your medicines as discussed:\n" + "\n".join(f"- {t}" for t in meds))
    parts.append("When to get help: " + SAFETY_NET)
    return "\n\n".join(parts)


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
        return {"state": "drafting", "pending": 0}
    if not consent_given(visit=visit, purpose=ConsentPurpose.AI_NOTES):
        return {"state": "no_consent", "pending": 0}
    return {"state": "no_draft", "pending": 0}


def summary_is_ready(*, visit: Visit) -> bool:
    """Whether the patient may read an after-visit summary (the note is signed)."""
    return ClinicalNote.objects.filter(visit=visit, status=ClinicalNote.Status.SIGNED).exists()
