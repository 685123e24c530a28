"""The note review page: grounded draft, edit, sign; the patient's after-visit summary."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from consults.models import ClinicalNote
from consults.notes import selectors, services
from consults.permissions import visit_or_404
from consults.selectors import visits_to_sign
from telehealth.audit import audit_read, audit_record
from telehealth.models import AuditAction, Role
from telehealth.permissions import not_found_and_audit, role_required


def _note_or_none(visit) -> ClinicalNote | None:
    return ClinicalNote.objects.filter(visit=visit).first()


def _next_steps(request: HttpRequest, visit) -> dict:
    """After signing: the next note waiting for this physician, and their queue."""
    if request.user.pk != visit.physician_id:
        return {}
    to_sign = list(visits_to_sign(physician=request.user).exclude(pk=visit.pk)[:1])
    return {"next_to_sign": to_sign[0] if to_sign else None}


@role_required(Role.PHYSICIAN, Role.ADMIN)
def note_detail(request: HttpRequest, visit_id: int) -> HttpResponse:
    visit = visit_or_404(request, visit_id)
    note = _note_or_none(visit)
    audit_read(request=request, object_type="note", object_id=visit.pk, patient=visit.patient)
    progress = selectors.note_progress(visit=visit)
    context = {
        "visit": visit,
        "note": note,
        "progress": progress,
        "sections": selectors.note_sections_for_display(note=note) if note else [],
        "streamed": selectors.note_sections_streamed(note=note),
        "can_edit": (
            note is not None
            and note.status == ClinicalNote.Status.DRAFT
            and request.user.pk == visit.physician_id
        ),
        **(_next_steps(request, visit) if note and note.status == "signed" else {}),
    }
    return render(request, "consults/note.html", context)


@role_required(Role.PHYSICIAN, Role.ADMIN)
def note_progress(request: HttpRequest, visit_id: int) -> HttpResponse:
    """The review page's live part while the note is not ready: counts and states only."""
    visit = visit_or_404(request, visit_id)
    context = {
        "visit": visit,
        "progress": selectors.note_progress(visit=visit),
        "streamed": selectors.note_sections_streamed(note=_note_or_none(visit)),
    }
    return render(request, "consults/_note_progress.html", context)


@role_required(Role.PHYSICIAN)
def notes_to_sign(request: HttpRequest) -> HttpResponse:
    """The queue page's "to sign" list: this physician's unsigned notes, oldest first."""
    visits = list(visits_to_sign(physician=request.user)[:50])
    return render(request, "consults/_to_sign.html", {"visits": visits})


@require_POST
@role_required(Role.PHYSICIAN)
def note_save(request: HttpRequest, visit_id: int) -> HttpResponse:
    """Save edits; with ``sign`` in the form, save then sign and lock."""
    visit = visit_or_404(request, visit_id)
    note = _note_or_none(visit)
    if note is None:
        raise not_found_and_audit(request=request, object_type="note", object_id=visit_id)
    keys = {key for key in note.content.get("sections", {})}
    edits = {
        key: request.POST.getlist(f"item-{key}") for key in keys if f"item-{key}" in request.POST
    }
    added = {key: request.POST.get(f"add-{key}", "") for key in keys}
    try:
        note = services.note_edit(note=note, physician=request.user, edits=edits, added=added)
        if "sign" in request.POST:
            services.note_sign(note=note, physician=request.user)
            messages.success(request, "The note is signed. The patient can now see their summary.")
        else:
            messages.success(request, "Your changes are saved.")
    except services.NoteError as exc:
        messages.error(request, str(exc))
    audit_record(
        actor=request.user,
        action=AuditAction.WRITE,
        object_type="note",
        object_id=visit.pk,
        patient=visit.patient,
        request=request,
    )
    return redirect("consults:note", visit_id=visit.pk)


@require_POST
@role_required(Role.PHYSICIAN)
def note_redraft(request: HttpRequest, visit_id: int) -> HttpResponse:
    visit = visit_or_404(request, visit_id)
    if request.user.pk != visit.physician_id:
        raise not_found_and_audit(request=request, object_type="note", object_id=visit_id)
    note = services.note_request(visit=visit, redraft=True)
    if note is None:
        messages.error(
            request,
            "A draft needs a finished consult, a complete transcript and the patient's consent "
            "to AI notes.",
        )
    elif note.status == ClinicalNote.Status.SIGNED:
        messages.error(request, "This note is signed and locked.")
    else:
        messages.success(request, "Drafting again from the corrected transcript…")
    return redirect("consults:note", visit_id=visit.pk)


@role_required(Role.PATIENT)
def after_visit_summary(request: HttpRequest, visit_id: int) -> HttpResponse:
    visit = visit_or_404(request, visit_id)
    note = _note_or_none(visit)
    signed = note is not None and note.status == ClinicalNote.Status.SIGNED
    if signed:
        audit_read(
            request=request, object_type="summary", object_id=visit.pk, patient=visit.patient
        )
    return render(
        request,
        "consults/after_visit_summary.html",
        {"visit": visit, "note": note if signed else None},
    )


@role_required(Role.PHYSICIAN, Role.ADMIN)
def note_fhir(request: HttpRequest, visit_id: int) -> HttpResponse:
    """Download the signed note as a FHIR document Bundle (audited as an export)."""
    from django.http import JsonResponse

    from consults.notes.fhir import FhirExportError, note_to_fhir

    visit = visit_or_404(request, visit_id)
    note = _note_or_none(visit)
    try:
        bundle = note_to_fhir(note=note) if note else None
    except FhirExportError as exc:
        return JsonResponse({"error": str(exc)}, status=409)
    if bundle is None:
        return JsonResponse({"error": "There is no note for this visit."}, status=404)
    audit_record(
        actor=request.user,
        action=AuditAction.EXPORT,
        object_type="note_fhir",
        object_id=visit.pk,
        patient=visit.patient,
        request=request,
    )
    response = JsonResponse(bundle, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="visit-{visit.pk}-note.fhir.json"'
    response["Cache-Control"] = "private, no-store"
    return response
