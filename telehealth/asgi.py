"""ASGI entry point: Django for HTTP, Channels for WebSockets (authenticated by session)."""

import gc
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

# What start-up imported and built lives as long as the process. Frozen out of the collector's
# sight, it is no longer walked by every full collection: with Django loaded one took 55-110 ms
# on the 2-core bench machine, a pause of every socket of the process at once, and the largest
# part of the signaling round trip's p99 (docs/signaling.md, "Collector pauses").
gc.collect()
gc.freeze()
