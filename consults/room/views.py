"""The consult: admit from the lobby, consent, device check, the call page, chat, end."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from consults import selectors
from consults.booking import services as booking_services
from consults.forms import AdmitForm, ChatForm, ConsentForm
from consults.models import VisitStatus
from consults.permissions import visit_or_404
from consults.room import services as room_services
from consults.room.attachments import MAX_ATTACHMENT_BYTES, AttachmentRejected
from telehealth.audit import audit_read
from telehealth.models import Role
from telehealth.permissions import not_found_and_audit, role_required
from telehealth.private_media import private_response


def _roomvisit_or_404(request: HttpRequest, visit_id: int):
    visit = selectors.consult_room_visit(user=request.user, visit_id=visit_id)
    if visit is None:
        raise not_found_and_audit(request=request, object_type="consult", object_id=visit_id)
    return visit


@require_POST
@role_required(Role.PHYSICIAN)
def admit(request: HttpRequest, visit_id: int) -> HttpResponse:
    """Admit from the queue; passing over a more urgent or overdue patient asks for a reason."""
    visit = visit_or_404(request, visit_id)
    form = AdmitForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        room_services.visit_admit(visit=visit, physician=request.user, reason=reason)
    except room_services.AdmitNeedsReason as exc:
        for passed in exc.passed_over:
            other = passed.entry.visit
            audit_read(
                request=request,
                object_type="queue_entry",
                object_id=other.pk,
                patient=other.patient,
            )
        context = {
            "visit": visit,
            "passed_over": exc.passed_over,
            "form": form,
            # The queue's Admit button sends no reason; this page's form sends one.
            "asked": "reason" in request.POST,
        }
        return render(request, "consults/admit_reason.html", context, status=409)
    except booking_services.BookingError as exc:
        messages.error(request, str(exc))
        return redirect("triage:queue")
    return redirect("consults:room", visit_id=visit.pk)


@role_required(Role.PATIENT, Role.PHYSICIAN)
def room(request: HttpRequest, visit_id: int) -> HttpResponse:
    visit = selectors.visit_get_for_user(user=request.user, visit_id=visit_id)
    if visit is not None and visit.status == VisitStatus.COMPLETED:
        return render(request, "consults/room_ended.html", {"visit": visit})
    visit = _roomvisit_or_404(request, visit_id)
    audit_read(request=request, object_type="consult", object_id=visit.pk, patient=visit.patient)
    context = {
        "visit": visit,
        "role": "physician" if request.user.pk == visit.physician_id else "patient",
        "consent": selectors.consent_state(visit=visit),
        "max_attachment_mb": MAX_ATTACHMENT_BYTES // (1024 * 1024),
    }
    return render(request, "consults/room.html", context)


@require_POST
@role_required(Role.PHYSICIAN)
def end(request: HttpRequest, visit_id: int) -> HttpResponse:
    visit = _roomvisit_or_404(request, visit_id)
    try:
        room_services.visit_end(visit=visit, actor=request.user)
    except booking_services.BookingError as exc:
        messages.error(request, str(exc))
        return redirect("consults:visit_detail", visit_id=visit.pk)
    # Hang-up lands on the note review, which shows drafting progress until the draft is ready.
    return redirect("consults:note", visit_id=visit.pk)


@require_POST
@role_required(Role.PATIENT)
def leave(request: HttpRequest, visit_id: int) -> HttpResponse:
    """The patient hangs up; the visit goes on, and their visit page offers to rejoin."""
    visit = selectors.visit_get_for_user(user=request.user, visit_id=visit_id)
    if visit is not None and visit.status != VisitStatus.IN_CONSULT:
        # Ended while they were leaving: nothing to leave.
        return redirect("consults:visit_detail", visit_id=visit.pk)
    visit = _roomvisit_or_404(request, visit_id)
    room_services.visit_leave(visit=visit, user=request.user)
    return redirect("consults:visit_detail", visit_id=visit.pk)


@role_required(Role.PATIENT)
def consent(request: HttpRequest, visit_id: int) -> HttpResponse:
    visit = visit_or_404(request, visit_id)
    current = selectors.consent_state(visit=visit)
    form = ConsentForm(request.POST if request.method == "POST" else None, current=current)
    if request.method == "POST" and form.is_valid():
        room_services.consent_record(visit=visit, patient=request.user, choices=form.cleaned_data)
        messages.success(request, "Your choices are saved. You can change them at any time.")
        target = "consults:room" if request.POST.get("next") == "room" else "consults:visit_detail"
        return redirect(target, visit_id=visit.pk)
    return render(request, "consults/consent.html", {"visit": visit, "form": form})


@role_required(Role.PATIENT, Role.PHYSICIAN)
def device_check(request: HttpRequest, visit_id: int) -> HttpResponse:
    visit = visit_or_404(request, visit_id)
    return render(request, "consults/device_check.html", {"visit": visit})


@role_required(Role.PATIENT, Role.PHYSICIAN)
def chat(request: HttpRequest, visit_id: int) -> HttpResponse:
    """GET: the messages (fragment). POST: send one, with an optional attachment."""
    visit = _roomvisit_or_404(request, visit_id)
    if request.method == "POST":
        form = ChatForm(request.POST, request.FILES)
        if not form.is_valid():
            # The form's own words: "limited to 2,000" for a NUL byte or an empty file misleads.
            error = next(iter(form.errors.values()))[0]
            return JsonResponse({"error": error}, status=400)
        upload = form.cleaned_data["attachment"]
        if upload is not None and upload.size > MAX_ATTACHMENT_BYTES:
            return JsonResponse({"error": "The file is larger than 10 MB."}, status=400)
        try:
            room_services.chat_post(
                visit=visit,
                sender=request.user,
                text=form.cleaned_data["text"],
                attachment=upload.read() if upload is not None else None,
                filename=upload.name if upload is not None else "",
            )
        except (booking_services.BookingError, AttachmentRejected) as exc:
            return JsonResponse({"error": str(exc)}, status=400)
        return JsonResponse({"ok": True}, status=201)
    audit_read(request=request, object_type="chat", object_id=visit.pk, patient=visit.patient)
    return render(request, "consults/_chat.html", {"chat": visit.chat_messages.all()})


@role_required(Role.PATIENT, Role.PHYSICIAN, Role.ADMIN)
def chat_attachment(request: HttpRequest, visit_id: int, message_id: int) -> HttpResponse:
    visit = visit_or_404(request, visit_id)
    message = visit.chat_messages.filter(pk=message_id).exclude(attachment_path="").first()
    if message is None:
        raise not_found_and_audit(request=request, object_type="attachment", object_id=message_id)
    audit_read(
        request=request, object_type="attachment", object_id=message.pk, patient=visit.patient
    )
    return private_response(
        relative=message.attachment_path,
        content_type=message.attachment_type,
        download_name=message.attachment_name,
    )
