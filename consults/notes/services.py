"""Clinical notes: drafting from the transcript, physician edits, signing, after-visit summary.

Services (writes) for notes; the reads are in ``consults.notes.selectors``. The drafting engine
(the plain-Python modules beside this one) runs in the ml worker; the web process only edits and
signs stored JSON.
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
    Visit,
    VisitStatus,
)
from consults.notes.selectors import note_utterances
from consults.realtime import room_push
from consults.selectors import consent_given
from consults.transcripts.selectors import transcript_status
from telehealth.lost_work import send_on_commit
from telehealth.models import User
from triage.realtime import queue_changed

MAX_ITEM_CHARS = 1000
# Items the engine must never write without a cited line (the grounding check enforces it).
FACT_SECTIONS = ("medications", "allergies")


class NoteError(Exception):
    """A note request that cannot be carried out; the message is shown to the physician."""


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
    from consults.notes.tasks import draft_note_for_visit

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
