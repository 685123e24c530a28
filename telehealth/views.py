from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from telehealth.forms import SignupForm
from telehealth.models import Role, User
from telehealth.permissions import role_required
from telehealth.selectors import audit_events, record_openers_for_patient
from telehealth.services import patient_register


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    if user.is_clinic_admin:
        return redirect("triage:board")
    if user.is_physician:
        return redirect("triage:queue")
    return redirect("consults:visit_list")


def signup(request: HttpRequest) -> HttpResponse:
    form = SignupForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        user = patient_register(form=form)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("consults:visit_list")
    return render(request, "registration/signup.html", {"form": form})


@role_required(Role.ADMIN)
def audit_log(request: HttpRequest) -> HttpResponse:
    def as_int(name: str) -> int | None:
        value = request.GET.get(name, "")
        return int(value) if value.isdigit() else None

    patient_id, actor_id = as_int("patient"), as_int("user")
    page = Paginator(audit_events(patient_id=patient_id, actor_id=actor_id), 50).get_page(
        request.GET.get("page")
    )
    context = {
        "page": page,
        "patients": User.objects.filter(role=Role.PATIENT),
        "users": User.objects.exclude(role=Role.PATIENT),
        "patient_id": patient_id,
        "actor_id": actor_id,
    }
    return render(request, "telehealth/audit_log.html", context)


@role_required(Role.PATIENT)
def my_record_access(request: HttpRequest) -> HttpResponse:
    page = Paginator(record_openers_for_patient(patient=request.user), 50).get_page(
        request.GET.get("page")
    )
    return render(request, "telehealth/record_access.html", {"page": page})
