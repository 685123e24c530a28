"""The base for every page socket: text frames only, a size limit, bad JSON answered in-band,
per-user limits on frames and connects in each process (past either, the socket is closed with
4429).

When Redis (the channel layer) or the database is unreachable, a socket is closed with 1013
"try again later" instead of crashing: the pages reconnect with backoff and show their degraded
state meanwhile (static/js/live.js, consult.js). Before the handshake completes, that close is a
refused connection.
"""

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import import_module
from types import SimpleNamespace

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import get_user
from django.db import InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from telehealth.two_factor import socket_must_verify

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
    closing = False

    async def __call__(self, scope, receive, send):
        # Errors in handlers are caught in dispatch(); what reaches here failed before the first
        # message, typically subscribing the socket's own channel while Redis is down.
        try:
            await self._consume(scope, receive, send)
        except SERVICE_ERRORS as error:
            _log_failure(scope, "setup", error)
            await send({"type": "websocket.close", "code": CLOSE_TRY_AGAIN})

    async def _consume(self, scope, receive, send) -> None:
        """Channels' ``AsyncConsumer.__call__``, dispatching with ``dispatch_serially``."""
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        sources = [receive]
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
            sources.append(self.channel_receive)
        self.base_send = send
        with contextlib.suppress(StopConsumer):
            await dispatch_serially(sources, self.dispatch)

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
        if user is not None and user.is_authenticated and not connect_limiter.allow(user.pk):
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
        if user is not None and not frame_limiter.allow(user.pk):
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


async def dispatch_serially(
    sources: list[Callable[[], Awaitable[dict]]], dispatch: Callable[[dict], Awaitable[None]]
) -> None:
    """Hand every message of ``sources`` (the client's socket, the channel layer) to
    ``dispatch``, one at a time, in each source's order, until a handler raises.

    Channels' ``await_many_dispatch`` does the same with a new task per message and
    ``asyncio.wait`` over them: a message reaches its handler three turns of the event loop
    after it arrived (the task wakes, its done-callback runs, the waiting consumer wakes), and
    under load each turn waits behind every other socket's work. Here each source has one
    long-lived reader that dispatches what it got itself: one turn. A lock keeps handlers from
    running side by side, as before; taking a free lock costs no turn.
    """
    lock = asyncio.Lock()

    async def read(source: Callable[[], Awaitable[dict]]) -> None:
        while True:
            message = await source()
            async with lock:
                await dispatch(message)

    readers = [asyncio.ensure_future(read(source)) for source in sources]
    try:
        done, _ = await asyncio.wait(readers, return_when=asyncio.FIRST_EXCEPTION)
        for reader in done:
            reader.result()  # a reader only ends by raising (StopConsumer, a handler's error)
    finally:
        for reader in readers:
            reader.cancel()
        # Their errors were raised above or are cancellations; this one's own still propagates.
        await asyncio.gather(*readers, return_exceptions=True)


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


class RateLimiter:
    """Token buckets per user, in this process: ``rate`` per second sustained, ``burst`` at once.

    In memory on purpose: a check is a few arithmetic operations, no I/O and no thread hop, so a
    limit on every frame costs nothing measurable. With N server processes a user can reach N
    times the limit, which still stops a flood.
    """

    def __init__(self, rate_setting: str, burst_setting: str, per: float = 1.0) -> None:
        self.rate_setting, self.burst_setting, self.per = rate_setting, burst_setting, per
        self.buckets: dict[int, _Bucket] = {}

    def allow(self, user_id: int) -> bool:
        """Take one token from the user's bucket; False when it is empty."""
        rate = getattr(settings, self.rate_setting) / self.per
        burst = getattr(settings, self.burst_setting)
        now = time.monotonic()
        bucket = self.buckets.get(user_id)
        if bucket is None:
            if len(self.buckets) >= _MAX_BUCKETS:
                self.buckets.clear()  # forgetting full buckets loses nothing; a flood refills one
            bucket = self.buckets[user_id] = _Bucket(tokens=burst, stamp=now)
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.stamp) * rate)
        bucket.stamp = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    def clear(self) -> None:
        self.buckets.clear()


_MAX_BUCKETS = 50_000
frame_limiter = RateLimiter("SOCKET_FRAME_RATE", "SOCKET_FRAME_BURST")
# A page reconnects with backoff; a burst of a minute's worth is a reload storm at most.
connect_limiter = RateLimiter("SOCKET_CONNECTS_PER_MINUTE", "SOCKET_CONNECTS_PER_MINUTE", per=60)


def session_signs_in(scope) -> bool:
    """Whether the socket's session still signs in the socket's user, decided as the next page
    request would be: not signed out or expired, password unchanged, and past the second factor
    where staff need it. Call from a database thread."""
    session = scope.get("session")
    key = getattr(session, "session_key", None)
    if key is None:
        return True  # no session cookie: a user put in the scope by a test, nothing to re-check
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=key)
    user = get_user(SimpleNamespace(session=store))
    if not user.is_authenticated or user.pk != scope["user"].pk:
        return False
    return not socket_must_verify(user=user, session=store)
