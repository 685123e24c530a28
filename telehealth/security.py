"""Session and browser hardening that Django does not ship: idle sign-out, Permissions-Policy,
the login lockout (django-axes, plus a per-address limit) and per-address rate limits."""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_cool_off
from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth import logout
from django.core.cache import cache
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

_LAST_SEEN = "_telehealth_last_seen"
_SIGNED_IN = "_telehealth_signed_in"
# Rewriting the session on every request would be a database write per request; a minute of
# slack on the idle clock is harmless.
_TOUCH_EVERY = 60


def axes_username(request: HttpRequest, credentials: dict | None = None) -> str | None:
    """The email a login attempt is for, lower-cased so case variants share one failure count.

    The login form posts ``username``; ``authenticate(email=...)`` (tests, scripts) passes
    ``email``.
    """
    source = credentials if credentials else getattr(request, "POST", {})
    value = source.get("username") or source.get("email")
    return value.strip().lower() if isinstance(value, str) else None


@dataclass(frozen=True)
class Lockout:
    """What a lockout covers: one account from one address, or every account from one address."""

    scope: Literal["account", "address"]
    until: datetime

    @property
    def minutes_left(self) -> int:
        return max(1, math.ceil((self.until - timezone.now()).total_seconds() / 60))


class ClinicLockoutHandler(AxesDatabaseHandler):
    """Axes' database handler, plus a much higher limit on failures from one address.

    Axes locks the (account, address) pair (``AXES_LOCKOUT_PARAMETERS``), so one person's typos
    lock nobody else on a clinic's shared network. Axes takes one limit only, so the address
    limit (password spraying from one address across many accounts) is added here: the sum of
    every account's recent failures from the address.
    """

    def is_locked(self, request, credentials: dict | None = None) -> bool:
        return login_lockout(request, credentials) is not None

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        super().user_login_failed(sender, credentials, request, **kwargs)
        if request is None or request.axes_locked_out:
            return
        if _address_failures(request) >= settings.LOGIN_ADDRESS_FAILURE_LIMIT:
            request.axes_locked_out = True
            request.axes_credentials = credentials
            user_locked_out.send(
                "axes",
                request=request,
                username=axes_username(request, credentials),
                ip_address=request.axes_ip_address,
            )


def _recent_attempts(request: HttpRequest):
    cool_off = get_cool_off(request)
    return AccessAttempt.objects.filter(
        ip_address=request.axes_ip_address,
        attempt_time__gte=request.axes_attempt_time - cool_off,
    )


def _address_failures(request: HttpRequest) -> int:
    total = _recent_attempts(request).aggregate(total=Sum("failures_since_start"))["total"]
    return total or 0


def login_lockout(request: HttpRequest, credentials: dict | None = None) -> Lockout | None:
    """The lockout that applies to this sign-in attempt, if any, and when it ends.

    Each attempt row counts its failures at its latest failure time, as axes counts them; the
    lockout ends when enough of them are older than the cool-off to fall below the limit.
    """
    cool_off = get_cool_off(request)
    recent = _recent_attempts(request).values_list("attempt_time", "failures_since_start")
    username = axes_username(request, credentials)
    if username:
        pair = list(recent.filter(username=username))
        if sum(failures for _at, failures in pair) >= settings.AXES_FAILURE_LIMIT:
            return Lockout(scope="account", until=max(at for at, _failures in pair) + cool_off)
    rows = list(recent.order_by("attempt_time"))
    total = sum(failures for _at, failures in rows)
    if total < settings.LOGIN_ADDRESS_FAILURE_LIMIT:
        return None
    for at, failures in rows:
        total -= failures
        if total < settings.LOGIN_ADDRESS_FAILURE_LIMIT:
            return Lockout(scope="address", until=at + cool_off)
    return Lockout(scope="address", until=rows[-1][0] + cool_off)


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials=None
) -> HttpResponse:
    """The lockout page (AXES_LOCKOUT_CALLABLE): says what is paused, and for how long."""
    lockout = login_lockout(request, credentials) or Lockout(
        scope="account", until=timezone.now() + get_cool_off(request)
    )
    context = {
        "lockout": lockout,
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "address_failure_limit": settings.LOGIN_ADDRESS_FAILURE_LIMIT,
        "cooloff_minutes": int(get_cool_off(request).total_seconds() // 60),
    }
    return render(request, "registration/locked_out.html", context, status=429)


_RATE_WINDOW = 3600


@dataclass(frozen=True)
class RateLimit:
    allowed: bool
    minutes_left: int


def rate_limit_hit(*, request: HttpRequest, scope: str, per_hour: int) -> RateLimit:
    """Count one use of ``scope`` (sign-up, password reset) from the request's address.

    Clock-hour windows in the shared cache: an atomic add-and-increment needs no lock, and the
    page can say truthfully when the next hour starts.
    """
    now = time.time()
    window = int(now // _RATE_WINDOW)
    key = f"rate:{scope}:{request.META.get('REMOTE_ADDR', '')}:{window}"
    cache.add(key, 0, timeout=_RATE_WINDOW)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=_RATE_WINDOW)
        count = 1
    minutes_left = math.ceil(((window + 1) * _RATE_WINDOW - now) / 60)
    return RateLimit(allowed=count <= per_hour, minutes_left=minutes_left)


class IdleSessionTimeoutMiddleware:
    """Sign out a session idle for SESSION_IDLE_TIMEOUT seconds, or older than SESSION_COOKIE_AGE.

    The absolute limit matters because keeping an idle clock rewrites the session, and every
    write would otherwise push the cookie's expiry forward.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            self._check(request)
        return self.get_response(request)

    @staticmethod
    def _check(request: HttpRequest) -> None:
        now = int(time.time())
        session = request.session
        signed_in = session.setdefault(_SIGNED_IN, now)
        last_seen = session.get(_LAST_SEEN, now)
        idle = now - last_seen > settings.SESSION_IDLE_TIMEOUT
        too_old = now - signed_in > settings.SESSION_COOKIE_AGE
        if idle or too_old:
            logout(request)
            return
        if _LAST_SEEN not in session or now - last_seen >= _TOUCH_EVERY:
            session[_LAST_SEEN] = now


class PermissionsPolicyMiddleware:
    """Send the Permissions-Policy header from settings.PERMISSIONS_POLICY."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = getattr(settings, "PERMISSIONS_POLICY", "")
        if policy:
            response.headers.setdefault("Permissions-Policy", policy)
        return response
