"""The base for every page socket: text frames only, a size limit, bad JSON answered in-band.

When Redis (the channel layer) or the database is unreachable, a socket is closed with 1013
"try again later" instead of crashing: the pages reconnect with backoff and show their degraded
state meanwhile (static/js/live.js, consult.js). Before the handshake completes, that close is a
refused connection.
"""

import logging

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.db import InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

CLOSE_TRY_AGAIN = 1013
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
            await super().dispatch(message)
        except SERVICE_ERRORS as error:
            _log_failure(self.scope, message.get("type", ""), error)
            if message.get("type") == "websocket.disconnect":
                raise StopConsumer from None
            await self.close(code=CLOSE_TRY_AGAIN)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
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
