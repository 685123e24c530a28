"""Session and browser hardening that Django does not ship: idle sign-out, Permissions-Policy,
and the login-lockout key for django-axes."""

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse

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
