"""TOTP two-factor sign-in for staff (physicians, administrators, Django staff) with django-otp.

With ``STAFF_TWO_FACTOR_REQUIRED`` on, a staff session that has not passed a TOTP check reaches
only the enrolment and verification pages and sign-out, and opens no socket at all (every socket
carries visit data). Patients are never asked.
"""

import base64
import io
from collections.abc import Callable

from channels.db import database_sync_to_async
from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django_otp import DEVICE_ID_SESSION_KEY, match_token, user_has_device
from django_otp import login as otp_login
from django_otp.models import Device
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.qr import write_qrcode_image

from telehealth.audit import audit_record
from telehealth.models import AuditAction, User

SETUP_URL_NAME = "two_factor_setup"
VERIFY_URL_NAME = "two_factor_verify"


def requires_two_factor(user: User) -> bool:
    """Staff must use a second factor; patients are never asked."""
    return bool(user.is_staff or user.is_superuser or not user.is_patient)


class TokenForm(forms.Form):
    token = forms.RegexField(
        regex=r"^\d{6}$",
        label="6-digit code from your authenticator app",
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}),
        error_messages={"invalid": "Enter the 6 digits your app shows."},
    )


def _next_url(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    safe = url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return candidate if safe else reverse(settings.LOGIN_REDIRECT_URL)


def _with_next(url_name: str, next_url: str) -> str:
    return f"{reverse(url_name)}?{urlencode({'next': next_url})}"


def _qr_data_uri(text: str) -> str:
    out = io.BytesIO()
    write_qrcode_image(text, out)
    return "data:image/svg+xml;base64," + base64.b64encode(out.getvalue()).decode()


@login_required
def setup(request: HttpRequest) -> HttpResponse:
    """Enrol an authenticator app: show its secret, confirm with a first code."""
    user = request.user
    if user_has_device(user):
        return redirect(_with_next(VERIFY_URL_NAME, _next_url(request)))
    device, _ = TOTPDevice.objects.get_or_create(
        user=user, confirmed=False, defaults={"name": "Authenticator app"}
    )
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["token"]):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            otp_login(request, device)
            audit_record(
                actor=user,
                action=AuditAction.WRITE,
                object_type="two_factor_device",
                object_id=device.pk,
                request=request,
                detail="enrolled",
            )
            return redirect(_next_url(request))
        form.add_error("token", "That code did not match. Check the app's clock and try again.")
    secret = base64.b32encode(device.bin_key).decode()
    context = {
        "form": form,
        "qr": _qr_data_uri(device.config_url),
        "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        "next": _next_url(request),
    }
    return render(request, "registration/two_factor_setup.html", context)


@login_required
def verify(request: HttpRequest) -> HttpResponse:
    """Ask a signed-in staff member for the current code (django-otp throttles guesses)."""
    if not user_has_device(request.user):
        return redirect(_with_next(SETUP_URL_NAME, _next_url(request)))
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = match_token(request.user, form.cleaned_data["token"])
        if device is not None:
            otp_login(request, device)
            return redirect(_next_url(request))
        form.add_error("token", "That code did not match, or too many tries: wait and retry.")
    return render(
        request, "registration/two_factor_verify.html", {"form": form, "next": _next_url(request)}
    )


class StaffTwoFactorMiddleware:
    """Send unverified staff sessions to enrolment or verification before anything else."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self._must_verify(request):
            target = VERIFY_URL_NAME if user_has_device(request.user) else SETUP_URL_NAME
            return redirect(_with_next(target, request.path))
        return self.get_response(request)

    @staticmethod
    def _must_verify(request: HttpRequest) -> bool:
        if not getattr(settings, "STAFF_TWO_FACTOR_REQUIRED", False):
            return False
        user = request.user
        if not user.is_authenticated or user.is_verified() or not requires_two_factor(user):
            return False
        open_paths = {reverse(SETUP_URL_NAME), reverse(VERIFY_URL_NAME), reverse("logout")}
        return request.path not in open_paths and not request.path.startswith(
            f"/{settings.STATIC_URL.lstrip('/')}"
        )


CLOSE_SECOND_FACTOR = 4401


def session_passed_second_factor(*, user: User, session) -> bool:
    """Whether ``session`` holds a confirmed device of ``user``: what django-otp's OTPMiddleware
    decides for ``request.user.is_verified()``."""
    persistent_id = session.get(DEVICE_ID_SESSION_KEY)
    if not persistent_id:
        return False
    device = Device.from_persistent_id(persistent_id)
    return device is not None and device.user_id == user.pk and device.confirmed


def socket_must_verify(*, user: User, session) -> bool:
    """StaffTwoFactorMiddleware's rule for a socket: no socket path is open to an unverified
    staff session."""
    if not getattr(settings, "STAFF_TWO_FACTOR_REQUIRED", False):
        return False
    if not user.is_authenticated or not requires_two_factor(user):
        return False
    return not session_passed_second_factor(user=user, session=session)


class SocketTwoFactorMiddleware:
    """Refuse the handshake (close 4401) of a staff socket whose session has not passed the
    second factor. Goes inside AuthMiddlewareStack, which puts the user and session in scope."""

    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and await self._must_verify(scope):
            message = await receive()
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.close", "code": CLOSE_SECOND_FACTOR})
            return
        await self.inner(scope, receive, send)

    @staticmethod
    async def _must_verify(scope) -> bool:
        if not getattr(settings, "STAFF_TWO_FACTOR_REQUIRED", False):
            return False  # no database hop when two-factor is off
        user, session = scope.get("user"), scope.get("session")
        if user is None or not user.is_authenticated:
            return False  # consumers refuse anonymous sockets themselves
        if session is None:
            return True
        return await database_sync_to_async(socket_must_verify)(user=user, session=session)
