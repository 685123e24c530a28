"""Database outages: a clean 503 page with Retry-After instead of a 500, and one log line each.

Django's connection handling recovers by itself: a connection that failed is closed at the end of
the request, and the next request opens a new one. The page is rendered without the request or the
database (no user, no session, no messages), so it cannot fail the same way.
"""

import logging

from django.contrib.auth.models import AnonymousUser
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

log = logging.getLogger(__name__)

DATABASE_ERRORS = (OperationalError, InterfaceError)
RETRY_AFTER_S = 30


def unavailable_response() -> HttpResponse:
    body = render_to_string("503.html", {"retry_after": RETRY_AFTER_S})
    response = HttpResponse(body, status=503)
    response["Retry-After"] = str(RETRY_AFTER_S)
    response["Cache-Control"] = "no-store"
    return response


class DatabaseOutageMiddleware:
    """Answer 503 when the database cannot be reached, whether first touched here or in the view.

    Placed right after the authentication middlewares: resolving ``request.user`` is the first
    database access of most requests (session, user, OTP device), and an error raised inside a
    later middleware would reach the client as a 500 before any process_exception hook ran.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            request.user.is_authenticated  # noqa: B018 - resolves the lazy user now
        except DATABASE_ERRORS as error:
            # Nobody is signed in as far as this response goes: the access log and the outer
            # middlewares must not retry the lookup that just failed.
            request.user = AnonymousUser()
            return self._unavailable(request, error)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception):
        if isinstance(exception, DATABASE_ERRORS):
            return self._unavailable(request, exception)
        return None

    @staticmethod
    def _unavailable(request: HttpRequest, error: Exception) -> HttpResponse:
        # The class name only: driver messages may carry hosts, and SQL may carry health data.
        log.warning(
            "database unavailable: %s on %s %s",
            type(error).__name__,
            request.method,
            request.path,
        )
        return unavailable_response()


class RefuseSocketsWhenUnavailable:
    """ASGI wrapper: a socket whose handshake meets an unreachable database is refused cleanly.

    Channels' AuthMiddleware loads the session before any consumer runs, so telehealth.consumers
    cannot catch that error; without this wrapper the server logs a traceback and answers 500.
    The close code is 1013 "try again later"; pages reconnect with backoff.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        accepted = False

        async def tracking_send(message):
            nonlocal accepted
            accepted = accepted or message["type"] == "websocket.accept"
            await send(message)

        try:
            return await self.app(scope, receive, tracking_send)
        except DATABASE_ERRORS as error:
            if accepted:
                raise
            log.warning(
                "database unavailable: %s on socket %s", type(error).__name__, scope["path"]
            )
            await send({"type": "websocket.close", "code": 1013})
            return None
