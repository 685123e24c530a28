"""Clinical notes: drafting from the transcript, physician edits, signing, after-visit summary.

Services (writes) for notes; the reads are in ``consults.notes.selectors``. The drafting engine
(the plain-Python modules beside this one) runs in the ml worker; the web process only edits and
signs stored JSON.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from consults import hooks
from consults.models import (
    ClinicalNote,
    ConsentPurpose,
    NoteRevision,
    Visit,
    VisitStatus,
)
from consults.notes.selectors import note_utterances, visits_note_lost, visits_redraft_lost
from consults.realtime import room_push
from consults.selectors import consent_given
from consults.transcripts.selectors import transcript_status
from telehealth.lost_work import send_on_commit
from telehealth.models import User

logger = logging.getLogger(__name__)

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
    send_on_commit("consults.tasks.draft_note_for_visit", visit.pk)
    return note


def note_prepare_request(*, visit: Visit) -> bool:
    """During the consult: let the note model read the final lines so far (at most every
    NOTES_PREPARE_EVERY_S per visit), so that after hang-up it only writes the sections."""
    every = settings.NOTES_PREPARE_EVERY_S
    if every <= 0 or visit.status != VisitStatus.IN_CONSULT or not _model_backend():
        return False
    if not consent_given(visit=visit, purpose=ConsentPurpose.AI_NOTES):
        return False
    if not cache.add(f"notes:prepare:{visit.pk}", 1, timeout=every):
        return False
    send_on_commit("consults.tasks.prepare_note_for_visit", visit.pk)
    return True


def note_prepare(*, visit_id: int) -> int:
    """In the worker, during the consult: the model evaluates the final transcript lines so far.

    Best effort: a model that cannot load here is left to the draft, which falls back to the
    rules with a notice. Returns the prompt tokens evaluated.
    """
    visit = Visit.objects.get(pk=visit_id)
    if visit.status != VisitStatus.IN_CONSULT:
        return 0
    if not consent_given(visit=visit, purpose=ConsentPurpose.AI_NOTES):
        return 0
    drafter = _drafter()
    if not hasattr(drafter, "prepare"):
        return 0
    utterances, _ = note_utterances(visit=visit)
    try:
        return drafter.prepare(utterances=utterances, key=_prefix_key(visit))
    except Exception as exc:  # noqa: BLE001 - the draft reports it, with the rules' note
        logger.warning("note model could not prepare visit %s: %s", visit.pk, type(exc).__name__)
        return 0


def _prefix_key(visit: Visit) -> str:
    return f"visit-{visit.pk}"


def _engine_items(items) -> list[dict]:
    return [{**asdict(item), "origin": "engine"} for item in items]


def note_draft(*, visit_id: int) -> ClinicalNote | None:
    """Draft (or re-draft) the note from the transcript in the worker; never over a signed note.

    Sections are saved and announced to the visit's staff (never the patient) one by one as the
    backend writes them, so the review page shows them while the rest is written. On a re-draft,
    a section the physician edited or added to stays as the physician left it.
    """
    from consults.notes.grounding import ground_note

    visit = Visit.objects.get(pk=visit_id)
    if not consent_given(visit=visit, purpose=ConsentPurpose.AI_NOTES):
        return None
    utterances, lines = note_utterances(visit=visit)
    with transaction.atomic():
        note, _ = ClinicalNote.objects.select_for_update().get_or_create(visit=visit)
        if note.status == ClinicalNote.Status.SIGNED:
            return note
        previous = (note.content or {}).get("sections", {})
        edited = {
            key: items
            for key, items in previous.items()
            if any(item.get("origin") == "physician" for item in items)
        }
        note.status = ClinicalNote.Status.DRAFTING
        note.content = {"sections": dict(edited), "lines": lines, "written": sorted(edited)}
        note.save(update_fields=["status", "content"])

    def on_section(key: str, items: list, dropped: list[dict]) -> None:
        with transaction.atomic():
            locked = ClinicalNote.objects.select_for_update().get(pk=note.pk)
            if locked.status != ClinicalNote.Status.DRAFTING:
                return
            content = locked.content
            if key not in edited:
                content["sections"][key] = _engine_items(items)
            content["written"] = sorted({*content.get("written", []), key})
            content["dropped"] = content.get("dropped", []) + list(dropped)
            locked.content = content
            locked.save(update_fields=["content"])
        room_push(
            visit_id=visit.pk, payload={"type": "note.section", "section": key}, staff_only=True
        )
        # The review page follows the visit's staff group: it re-fetches the written sections.
        hooks.visit_changed(visit=visit, event="note_section")

    drafter = _drafter()
    if hasattr(drafter, "prepare"):
        draft = drafter.draft(utterances=utterances, on_section=on_section, key=_prefix_key(visit))
    else:
        draft = drafter.draft(utterances=utterances)
    draft, _problems = ground_note(note=draft, utterances=utterances)
    notices = list(draft.notices)
    if edited:
        from consults.notes.types import SECTION_TITLES

        notices.append(
            "Kept as you edited them: "
            + ", ".join(SECTION_TITLES.get(key, key).lower() for key in sorted(edited))
            + "."
        )
    content = {
        "sections": {
            key: edited.get(key) or _engine_items(items) for key, items in draft.sections.items()
        },
        "lines": lines,
        "facts": asdict(draft.facts),
        # Shown on the review page: why the rules wrote it, or that there was nothing to say.
        "notices": notices,
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
    hooks.visit_changed(visit=visit, event="note_drafted")
    return note


def _model_backend() -> bool:
    """Whether the configured note backend is the language model."""
    from consults.notes.backends import LLM_BACKEND, resolve_backend

    return resolve_backend(settings.NOTES_BACKEND) == LLM_BACKEND


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
        hooks.visit_changed(visit=visit, event="note_drafted")


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
    hooks.visit_changed(visit=note.visit, event="summary_ready")
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


def note_request_when_settled(*, visit: Visit, **_signal) -> None:
    """The last chunk of a finished consult queues the note draft (once); during the consult,
    the note model reads the final lines so far (at most every NOTES_PREPARE_EVERY_S).
    Connected to ``consults.transcripts.services.transcript_settled`` in ConsultsConfig.ready()."""
    note_request(visit=visit)
    note_prepare_request(visit=visit)


# --- Lost work (the beat sweeper; docs/deploy.md, "Broker durability and lost work") ---------


def _note_resend(*, visit: Visit) -> bool:
    if not ClinicalNote.objects.filter(visit=visit).exists():
        return note_request(visit=visit) is not None
    send_on_commit("consults.tasks.draft_note_for_visit", visit.pk)
    return True


def notes_resend_lost(*, now) -> list[int]:
    """Re-send lost note drafts; the lost-work sweeper calls it (``lost_work_register``), after
    the chunks. A re-sent draft replaces the unsigned draft."""
    lost = {*visits_note_lost(now=now), *visits_redraft_lost(now=now)}
    return sorted(visit.pk for visit in lost if _note_resend(visit=visit))
