"""ASGI entry point: Django for HTTP, Channels for WebSockets (authenticated by session)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "telehealth.settings.local")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from consults.routing import websocket_urlpatterns as consults_ws  # noqa: E402
from telehealth.outage import RefuseSocketsWhenUnavailable  # noqa: E402
from telehealth.two_factor import SocketTwoFactorMiddleware  # noqa: E402
from triage.routing import websocket_urlpatterns as triage_ws  # noqa: E402

# A socket opened while the database or Redis is down is refused cleanly (one log line), not
# with a traceback from the session lookup. Staff sockets need the second factor where pages do.
application = RefuseSocketsWhenUnavailable(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": AllowedHostsOriginValidator(
                AuthMiddlewareStack(SocketTwoFactorMiddleware(URLRouter(consults_ws + triage_ws)))
            ),
        }
    )
)
