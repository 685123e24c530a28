from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from telehealth.forms import SignupForm
from telehealth.models import Role, User
from telehealth.permissions import role_required
from telehealth.security import RateLimit, rate_limit_hit
from telehealth.selectors import (
    audit_events,
    record_access_days,
    record_access_summary,
    user_from_activation_link,
)
from telehealth.services import login_lockouts_clear, patient_activate, patient_sign_up

RECORD_ACCESS_DAYS_PER_PAGE = 7


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    if user.is_clinic_admin:
        return redirect("triage:board")
    if user.is_physician:
        return redirect("triage:queue")
    return redirect("consults:visit_list")


def _rate_limited(request: HttpRequest, *, limit: RateLimit, what: str) -> HttpResponse:
    context = {"what": what, "minutes_left": limit.minutes_left}
    return render(request, "registration/rate_limited.html", context, status=429)


def _base_url(request: HttpRequest) -> str:
    return f"{request.scheme}://{request.get_host()}"


def signup(request: HttpRequest) -> HttpResponse:
    form = SignupForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        limit = rate_limit_hit(
            request=request, scope="signup", per_hour=settings.SIGNUP_RATE_PER_HOUR
        )
        if not limit.allowed:
            return _rate_limited(request, limit=limit, what="sign-ups")
        data = form.cleaned_data
        patient_sign_up(
            email=data["email"],
            password=data["password1"],
            first_name=data["first_name"],
            last_name=data["last_name"],
            date_of_birth=data["date_of_birth"],
            time_zone=data["time_zone"],
            base_url=_base_url(request),
        )
        return redirect("signup_sent")
    return render(request, "registration/signup.html", {"form": form})


def signup_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "registration/signup_sent.html")


def signup_activate(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    """The link in the activation e-mail: a button, so that mail scanners opening it activate
    nothing and sign nobody in."""
    user = user_from_activation_link(uidb64=uidb64, token=token)
    if user is not None and request.method == "POST":
        patient_activate(user=user)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, "Your account is active. Welcome!")
        return redirect("consults:visit_list")
    return render(request, "registration/signup_activate.html", {"valid": user is not None})


class PasswordResetView(auth_views.PasswordResetView):
    """Django's view, limited per address: each request can send an e-mail."""

    def form_valid(self, form):
        limit = rate_limit_hit(
            request=self.request,
            scope="password_reset",
            per_hour=settings.PASSWORD_RESET_RATE_PER_HOUR,
        )
        if not limit.allowed:
            return _rate_limited(self.request, limit=limit, what="password reset requests")
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's view; a new password also lifts the account's sign-in lockout."""

    def form_valid(self, form):
        response = super().form_valid(form)
        login_lockouts_clear(user=form.user)
        return response


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
    days = record_access_days(patient=request.user)
    page = Paginator(days, RECORD_ACCESS_DAYS_PER_PAGE).get_page(request.GET.get("page"))
    summary = record_access_summary(patient=request.user, days=list(page))
    return render(request, "telehealth/record_access.html", {"page": page, "days": summary})
