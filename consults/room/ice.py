"""ICE servers for a call: the clinic's STUN servers, and TURN with credentials minted per user.

TURN credentials follow coturn's REST-API scheme (``use-auth-secret``): the username is
``<expiry unix time>:<user id>`` and the password is base64(HMAC-SHA1(secret, username)). coturn
checks both with the shared secret alone and refuses them after the expiry, so nothing static
reaches a page, and a leaked credential is useless after TURN_TTL seconds.
"""

import base64
import hashlib
import hmac
import time

from django.conf import settings


def turn_credential(*, secret: str, user_id: int | str, ttl: int, now: float | None = None) -> dict:
    """A username and password that coturn accepts until ``now + ttl``."""
    expiry = int(now if now is not None else time.time()) + ttl
    username = f"{expiry}:{user_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return {"username": username, "credential": base64.b64encode(digest).decode()}


def ice_servers_for(*, user_id: int) -> list[dict]:
    """What RTCPeerConnection's ``iceServers`` gets for this user's call (the welcome frame)."""
    servers = [dict(server) for server in settings.WEBRTC_ICE_SERVERS]
    if settings.TURN_URLS and settings.TURN_SECRET:
        credential = turn_credential(
            secret=settings.TURN_SECRET, user_id=user_id, ttl=settings.TURN_TTL
        )
        servers.append({"urls": list(settings.TURN_URLS), **credential})
    return servers
