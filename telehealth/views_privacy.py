"""Privacy pages: the retention policy and a patient's erasure requests; administrators process
them."""

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from telehealth import retention
from telehealth.models import ErasureRequest, Role
from telehealth.permissions import not_found_and_audit, role_required


class ErasureRequestForm(forms.Form):
    confirm = forms.BooleanField(
        label="I ask the clinic to erase my data as described above",
        help_text="This cannot be undone. Your signed medical record is kept, as the law requires.",
    )


def _erasure_or_404(request: HttpRequest, request_id: int) -> ErasureRequest:
    erasure = retention.erasure_requests_visible_to(user=request.user).filter(pk=request_id).first()
    if erasure is None:
        raise not_found_and_audit(
            request=request, object_type="erasure_request", object_id=request_id
        )
    return erasure


@role_required(Role.PATIENT)
def privacy(request: HttpRequest) -> HttpResponse:
    form = ErasureRequestForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        erasure = retention.erasure_request_file(patient=request.user)
        messages.success(request, "Your request has been sent to the clinic.")
        return redirect("erasure_request", request_id=erasure.pk)
    requests = list(retention.erasure_requests_visible_to(user=request.user))
    context = {
        "form": form,
        "policy": retention.retention_policy(),
        "requests": requests,
        "pending": any(r.status == ErasureRequest.Status.PENDING for r in requests),
        "active_visits": retention.active_visit_count(patient=request.user),
    }
    return render(request, "telehealth/privacy.html", context)


@role_required(Role.PATIENT, Role.ADMIN)
def erasure_request(request: HttpRequest, request_id: int) -> HttpResponse:
    erasure = _erasure_or_404(request, request_id)
    context = {
        "erasure": erasure,
        "active_visits": retention.active_visit_count(patient=erasure.patient),
    }
    return render(request, "telehealth/erasure_request.html", context)


@role_required(Role.ADMIN)
def erasure_requests(request: HttpRequest) -> HttpResponse:
    requests = retention.erasure_requests_visible_to(user=request.user).order_by(
        "-status", "created_at"
    )
    return render(request, "telehealth/erasure_requests.html", {"requests": requests})


@require_POST
@role_required(Role.ADMIN)
def erasure_process(request: HttpRequest, request_id: int) -> HttpResponse:
    erasure = _erasure_or_404(request, request_id)
    try:
        retention.erasure_process(erasure=erasure, admin=request.user)
    except retention.ErasureBlocked as blocked:
        messages.error(request, str(blocked))
    else:
        messages.success(request, "The request has been processed.")
    return redirect("erasure_request", request_id=erasure.pk)
