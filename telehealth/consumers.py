"""The base for every page socket: text frames only, a size limit, bad JSON answered in-band,
per-user limits on frames and connects (past either, the socket is closed with 4429).

When Redis (the channel layer) or the database is unreachable, a socket is closed with 1013
"try again later" instead of crashing: the pages reconnect with backoff and show their degraded
state meanwhile (static/js/live.js, consult.js). Before the handshake completes, that close is a
refused connection.
"""

import logging
import time
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

CLOSE_TRY_AGAIN = 1013
CLOSE_TOO_MANY = 4429
# The deepest page message (a signal with a candidate) nests 2 levels.
MAX_JSON_DEPTH = 8
SERVICE_ERRORS = (
    RedisConnectionError,
    RedisTimeoutError,
    OperationalError,
    InterfaceError,
    ConnectionError,
)


class BoundedJsonConsumer(AsyncJsonWebsocketConsumer):
    """Rejects binary, oversized, undecodable and too deeply nested frames with an error frame."""

    max_frame_chars = 1024
    # Message types whose handlers touch no database: dispatched without Channels' per-message
    # close_old_connections, a hop onto the one database thread that every socket shares.
    relay_messages: frozenset[str] = frozenset()
    # Whether websocket_connect counts the connect here; a consumer that authorizes in a database
    # hop of its own counts it there (socket_connect_allowed) and sets this to False.
    count_connects = True
    closing = False

    async def __call__(self, scope, receive, send):
        # Errors in handlers are caught in dispatch(); what reaches here failed before the first
        # message, typically subscribing the socket's own channel while Redis is down.
        try:
            await super().__call__(scope, receive, send)
        except SERVICE_ERRORS as error:
            _log_failure(scope, "setup", error)
            await send({"type": "websocket.close", "code": CLOSE_TRY_AGAIN})

    async def dispatch(self, message):
        try:
            if message["type"] in self.relay_messages:
                await getattr(self, get_handler_name(message))(message)
            else:
                await super().dispatch(message)
        except SERVICE_ERRORS as error:
            _log_failure(self.scope, message.get("type", ""), error)
            if message.get("type") == "websocket.disconnect":
                raise StopConsumer from None
            await self.close(code=CLOSE_TRY_AGAIN)

    async def websocket_connect(self, message):
        user = self.scope.get("user")
        if self.count_connects and user is not None and user.is_authenticated:
            # The shared cache, not the database: no wait on the database thread.
            allowed = await sync_to_async(socket_connect_allowed, thread_sensitive=False)(user.pk)
            if not allowed:
                await self.close(code=CLOSE_TOO_MANY)
                return
        await super().websocket_connect(message)

    async def close(self, code=None, reason=None):
        self.closing = True
        await super().close(code=code, reason=reason)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if self.closing:
            return  # frames already on the wire when the socket was closed
        user = self.scope.get("user")
        if user is not None and not socket_frame_allowed(user.pk):
            await self.close(code=CLOSE_TOO_MANY)
            return
        if bytes_data is not None or text_data is None or len(text_data) > self.max_frame_chars:
            await self.send_json({"type": "error", "error": "Message too large or not text."})
            return
        # Decoded here rather than in super().receive(), which raises on an empty frame.
        try:
            content = await self.decode_json(text_data)
        except ValueError as error:
            await self.send_json({"type": "error", "error": f"Messages must be JSON ({error})."})
            return
        await self.receive_json(content, **kwargs)

    @classmethod
    async def decode_json(cls, text_data):
        """Parse a frame; ValueError if it is not JSON or is nested deeper than MAX_JSON_DEPTH."""
        try:
            content = await super().decode_json(text_data)
        except RecursionError:
            # How deep json.loads gets depends on the caller's stack: refuse by depth instead.
            raise ValueError("nested too deeply") from None
        except ValueError:
            raise ValueError("not valid JSON") from None
        if json_depth(content) > MAX_JSON_DEPTH:
            raise ValueError("nested too deeply")
        return content


def json_depth(value) -> int:
    """How deeply lists and objects nest in ``value`` (0 for a scalar), without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, level)
        if deepest > MAX_JSON_DEPTH:
            break
        pending.extend((child, level + 1) for child in item)
    return deepest


def _log_failure(scope, stage: str, error: Exception) -> None:
    # The class name only: driver messages may name hosts; the path carries ids, never PHI.
    log.warning("socket %s closed at %s: %s", scope.get("path", ""), stage, type(error).__name__)


@dataclass
class _Bucket:
    tokens: float
    stamp: float


# Per user, in this process: a socket server holds a user's sockets of one page at most a few.
_frame_buckets: dict[int, _Bucket] = {}
_MAX_BUCKETS = 50_000


def socket_frame_allowed(user_id: int) -> bool:
    """Take one frame from the user's bucket (SOCKET_FRAME_RATE per second, SOCKET_FRAME_BURST
    at once); False when it is empty."""
    rate, burst = settings.SOCKET_FRAME_RATE, settings.SOCKET_FRAME_BURST
    now = time.monotonic()
    bucket = _frame_buckets.get(user_id)
    if bucket is None:
        if len(_frame_buckets) >= _MAX_BUCKETS:
            _frame_buckets.clear()  # forgetting full buckets loses nothing; a flood refills one
        bucket = _frame_buckets[user_id] = _Bucket(tokens=burst, stamp=now)
    bucket.tokens = min(burst, bucket.tokens + (now - bucket.stamp) * rate)
    bucket.stamp = now
    if bucket.tokens < 1:
        return False
    bucket.tokens -= 1
    return True


def socket_connect_allowed(user_id: int) -> bool:
    """Count one socket connect of the user in the shared cache (every process sees it); False
    past SOCKET_CONNECTS_PER_MINUTE in this clock minute."""
    key = f"socket-connects:{user_id}:{int(time.time() // 60)}"
    cache.add(key, 0, timeout=120)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=120)
        count = 1
    return count <= settings.SOCKET_CONNECTS_PER_MINUTE
