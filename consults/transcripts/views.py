"""Consult audio and transcripts: chunk uploads from the call, the physician's live panel,
the transcript page with corrections, audio files added after the call."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from consults.models import AudioChunk, Speaker
from consults.transcripts import selectors, services
from consults.transcripts.services import AudioRejected
from telehealth.audit import audit_read
from telehealth.models import Role
from telehealth.permissions import not_found_and_audit, role_required
from telehealth.private_media import private_response


def _transcript_visit_or_404(request: HttpRequest, visit_id: int, *, allow_admin: bool = False):
    visit = selectors.transcript_visit(
        user=request.user, visit_id=visit_id, allow_admin=allow_admin
    )
    if visit is None:
        raise not_found_and_audit(request=request, object_type="transcript", object_id=visit_id)
    return visit


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


@require_http_methods(["GET", "POST"])
@role_required(Role.PATIENT, Role.PHYSICIAN)
def chunk_upload(request: HttpRequest, visit_id: int) -> HttpResponse:
    """POST one chunk of the caller's own microphone (multipart ``audio``, ``index``,
    ``start_ms``, optional ``head_overlap_ms``/``tail_overlap_ms``); GET the next index of the
    caller's track (after a page reload)."""
    visit = selectors.capture_visit(user=request.user, visit_id=visit_id)
    if visit is None:
        raise not_found_and_audit(request=request, object_type="audio", object_id=visit_id)
    if request.method == "GET":
        return JsonResponse(
            {"next_index": selectors.next_chunk_index(visit=visit, user=request.user)}
        )
    upload = request.FILES.get("audio")
    index, start_ms = _int(request.POST.get("index")), _int(request.POST.get("start_ms"))
    if upload is None or index is None or start_ms is None:
        return JsonResponse({"error": "Send the audio with its index and start_ms."}, status=400)
    # Optional: how much audio this chunk shares with the previous and the next one.
    head_overlap_ms = _int(request.POST.get("head_overlap_ms") or "0")
    tail_overlap_ms = _int(request.POST.get("tail_overlap_ms") or "0")
    if head_overlap_ms is None or tail_overlap_ms is None:
        return JsonResponse({"error": "The chunk overlaps must be whole milliseconds."}, status=400)
    if upload.size > services.MAX_CHUNK_BYTES:
        return JsonResponse({"error": "The chunk is larger than 2 MB."}, status=413)
    try:
        receipt = services.chunk_receive(
            visit=visit,
            user=request.user,
            index=index,
            start_ms=start_ms,
            data=upload.read(),
            head_overlap_ms=head_overlap_ms,
            tail_overlap_ms=tail_overlap_ms,
        )
    except AudioRejected as exc:
        return JsonResponse({"error": str(exc)}, status=exc.status)
    chunk = receipt.chunk
    return JsonResponse(
        {"index": chunk.index, "status": chunk.status, "duplicate": not receipt.created},
        status=201 if receipt.created else 200,
    )


@require_GET
@role_required(Role.PHYSICIAN)
def transcript_live(request: HttpRequest, visit_id: int) -> HttpResponse:
    """The physician's live panel in the room (fragment)."""
    visit = _transcript_visit_or_404(request, visit_id)
    audit_read(request=request, object_type="transcript", object_id=visit.pk, patient=visit.patient)
    lines = list(selectors.transcript_lines(visit=visit))
    context = {
        "lines": lines,
        "alerts": selectors.transcript_alerts(lines=lines),
        "status": selectors.transcript_status(visit=visit),
    }
    return render(request, "consults/_transcript_lines.html", context)


@role_required(Role.PHYSICIAN, Role.ADMIN)
def transcript_page(request: HttpRequest, visit_id: int) -> HttpResponse:
    """The whole transcript after (or during) the call; the physician corrects lines here."""
    visit = _transcript_visit_or_404(request, visit_id, allow_admin=True)
    audit_read(request=request, object_type="transcript", object_id=visit.pk, patient=visit.patient)
    lines = list(selectors.transcript_lines(visit=visit).select_related("corrected_by"))
    context = {
        "visit": visit,
        "lines": lines,
        "alerts": selectors.transcript_alerts(lines=lines),
        "status": selectors.transcript_status(visit=visit),
        "recordings": selectors.recordings_for_visit(visit=visit),
        "can_edit": request.user.pk == visit.physician_id,
        "speakers": Speaker.choices,
        "max_upload_mb": services.MAX_UPLOAD_BYTES // (1024 * 1024),
    }
    return render(request, "consults/transcript.html", context)


@require_GET
@role_required(Role.PHYSICIAN, Role.ADMIN)
def transcript_status(request: HttpRequest, visit_id: int) -> HttpResponse:
    """Polled by the transcript page: completion state and upload progress (no health data)."""
    visit = _transcript_visit_or_404(request, visit_id, allow_admin=True)
    status = selectors.transcript_status(visit=visit)
    uploads = [
        {"id": r.pk, "status": r.status, "progress": r.progress}
        for r in selectors.recordings_for_visit(visit=visit).filter(source="upload")
    ]
    return JsonResponse(
        {"state": status["state"], "pending": status["pending"], "uploads": uploads}
    )


def _segment_change(request: HttpRequest, visit_id: int, segment_id: int, change) -> HttpResponse:
    """One of the visit's transcript lines (404, audited, if not), changed by
    ``change(segment)``; back to that line, or the service's refusal as JSON."""
    visit = _transcript_visit_or_404(request, visit_id)
    segment = selectors.transcript_lines(visit=visit).filter(pk=segment_id).first()
    if segment is None:
        raise not_found_and_audit(request=request, object_type="transcript", object_id=segment_id)
    try:
        change(segment)
    except AudioRejected as exc:
        return JsonResponse({"error": str(exc)}, status=exc.status)
    return redirect(f"{reverse('consults:transcript', args=[visit.pk])}#line-{segment.pk}")


@require_POST
@role_required(Role.PHYSICIAN)
def segment_correct(request: HttpRequest, visit_id: int, segment_id: int) -> HttpResponse:
    return _segment_change(
        request,
        visit_id,
        segment_id,
        lambda segment: services.segment_correct(
            segment=segment, physician=request.user, text=request.POST.get("text", "")
        ),
    )


@require_POST
@role_required(Role.PHYSICIAN)
def segment_correction_revert(
    request: HttpRequest, visit_id: int, segment_id: int, index: int
) -> HttpResponse:
    """Revert one automatic correction of a line (the physician of the visit only)."""
    return _segment_change(
        request,
        visit_id,
        segment_id,
        lambda segment: services.segment_correction_revert(
            segment=segment, physician=request.user, index=index
        ),
    )


@require_POST
@role_required(Role.PHYSICIAN)
def recording_upload(request: HttpRequest, visit_id: int) -> HttpResponse:
    """The physician adds an audio file of the visit; it is transcribed in the background."""
    visit = _transcript_visit_or_404(request, visit_id)
    upload = request.FILES.get("audio")
    if upload is None:
        return JsonResponse({"error": "Choose an audio file."}, status=400)
    if upload.size > services.MAX_UPLOAD_BYTES:
        return JsonResponse({"error": "The file is larger than 50 MB."}, status=413)
    try:
        services.recording_upload(
            visit=visit,
            physician=request.user,
            data=upload.read(),
            speaker=request.POST.get("speaker", ""),
        )
    except AudioRejected as exc:
        return JsonResponse({"error": str(exc)}, status=exc.status)
    return redirect("consults:transcript", visit_id=visit.pk)


@require_GET
@role_required(Role.PHYSICIAN, Role.ADMIN)
def chunk_audio(request: HttpRequest, visit_id: int, chunk_id: int) -> HttpResponse:
    visit = _transcript_visit_or_404(request, visit_id, allow_admin=True)
    # A chunk whose audio the retention policy already removed has no file ("" path).
    chunk = AudioChunk.objects.filter(pk=chunk_id, recording__visit=visit).exclude(path="").first()
    if chunk is None:
        raise not_found_and_audit(request=request, object_type="audio", object_id=chunk_id)
    audit_read(request=request, object_type="audio", object_id=chunk.pk, patient=visit.patient)
    suffix = chunk.path.rsplit(".", 1)[-1]
    return private_response(
        relative=chunk.path,
        content_type=chunk.content_type,
        download_name=f"visit-{visit.pk}-{chunk.recording.speaker}-{chunk.index}.{suffix}",
    )
