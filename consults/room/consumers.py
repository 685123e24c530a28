"""The consult room socket: WebRTC signaling between the visit's patient and physician.

Thin: authorization and everything the room needs are loaded at connect in one database hop;
frames are validated and relayed to the other side through the channel layer group without
touching the database. Access is re-checked while the socket is open: at once when a service
changes who may be in the visit (a "room.recheck" to the group), and every ROOM_ACCESS_RECHECK_S
seconds, which also keeps the socket's presence fresh (ROOM_PRESENCE_TTL).
"""

import asyncio
import logging
import random
from collections.abc import Iterator

from channels.db import database_sync_to_async
from django.conf import settings

from consults.realtime import room_side_group
from consults.room import services
from consults.room.ice import ice_servers_for
from consults.room.signaling import MAX_FRAME_CHARS, InvalidMessage, validate_inbound
from telehealth.consumers import (
    CLOSE_TRY_AGAIN,
    SERVICE_ERRORS,
    BoundedJsonConsumer,
    session_signs_in,
)

log = logging.getLogger(__name__)

CLOSE_FORBIDDEN = 4403


def recheck_waits(every: float) -> Iterator[float]:
    """The waits between one socket's re-checks: spread out, not in step. Sockets that connected
    together (every room reconnecting after a deploy, a clinic's morning start) would otherwise
    re-check together for as long as they stay open, a burst of database work on every process
    each period that relayed frames wait behind (docs/signaling.md, "spread re-checks"). The
    first wait falls anywhere in the period, the later ones at 80-100 % of it: never longer than
    ``every``, so presence stays as fresh as before."""
    yield random.uniform(0.1, 1.0) * every  # noqa: S311 - spreading load, not a secret
    while True:
        yield random.uniform(0.8, 1.0) * every  # noqa: S311


class ConsultRoomConsumer(BoundedJsonConsumer):
    max_frame_chars = MAX_FRAME_CHARS
    relay_messages = frozenset({"websocket.receive", "room.relay", "room.push"})
    visit_id: int | None = None
    role: str = ""
    present = False  # this socket's presence row is open
    revoked = False
    watcher: asyncio.Task | None = None

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            # A socket whose peer vanished mid-handshake ends here without disconnect() (the
            # server swallows the error): its presence must not stay open.
            try:
                await self._release()
            except SERVICE_ERRORS as error:
                log.warning("room socket cleanup failed: %s", type(error).__name__)

    async def connect(self):
        user = self.scope.get("user")
        entry = None
        if user is not None and user.is_authenticated:
            entry = await database_sync_to_async(self._enter)(user)
        if entry is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.present = True
        self.visit_id, self.role = entry.visit_id, entry.role
        for group in self._groups():
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        self.watcher = asyncio.create_task(self._watch())
        await self.send_json(
            {
                "type": "welcome",
                "role": self.role,
                "peers": entry.peers,
                "consent": entry.consent,
                "iceServers": ice_servers_for(user_id=user.pk),
                "iceTransportPolicy": settings.WEBRTC_ICE_TRANSPORT_POLICY,
            }
        )

    def _enter(self, user):
        return services.room_enter(
            user=user,
            visit_id=self.scope["url_route"]["kwargs"]["visit_id"],
            channel_name=self.channel_name,
        )

    def _groups(self) -> list[str]:
        """This socket's side of the room: the physician's is the staff group, which also hears
        staff-only pushes (AI output)."""
        return [room_side_group(self.visit_id, self.role)]

    async def disconnect(self, code):
        if self.visit_id is None:
            return
        await self._release()
        if not self.revoked:
            await self._relay({"type": "peer.left", "role": self.role})

    async def _release(self) -> None:
        """Stop re-checking, close presence and leave the groups; safe to call more than once."""
        if self.watcher is not None and self.watcher is not asyncio.current_task():
            self.watcher.cancel()
        self.watcher = None
        if self.present:
            self.present = False
            # Presence first: with Redis down the layer calls below raise, and the room must
            # not go on showing this side as present.
            await database_sync_to_async(services.presence_leave)(channel_name=self.channel_name)
        if self.visit_id is not None:
            for group in self._groups():
                await self.channel_layer.group_discard(group, self.channel_name)

    async def _watch(self) -> None:
        every = min(settings.ROOM_ACCESS_RECHECK_S, settings.ROOM_PRESENCE_TTL / 3)
        failures = 0
        waits = recheck_waits(every)
        while not self.revoked:
            await asyncio.sleep(next(waits))
            try:
                await self._recheck()
                failures = 0
            except SERVICE_ERRORS as error:
                # One failure is a busy database; access unconfirmed for a whole presence TTL
                # closes the socket, and the page reconnects with backoff.
                failures += 1
                log.warning("room socket re-check failed: %s", type(error).__name__)
                if failures >= 3:
                    await self.close(code=CLOSE_TRY_AGAIN)
                    return

    async def room_recheck(self, event):
        await self._recheck()

    async def _recheck(self) -> None:
        if self.revoked or self.visit_id is None:
            return
        if not await database_sync_to_async(self._stay)():
            await self._revoke()

    def _stay(self) -> bool:
        if not session_signs_in(self.scope):  # signed out, expired, password changed…
            services.presence_leave(channel_name=self.channel_name)
            return False
        return services.room_stay(
            user=self.scope["user"], visit_id=self.visit_id, channel_name=self.channel_name
        )

    async def _revoke(self) -> None:
        """Access lost: hear nothing more from the room and close (room_stay closed presence)."""
        self.revoked, self.present = True, False
        await self.close(code=CLOSE_FORBIDDEN)
        await self._release()

    async def receive_json(self, content, **kwargs):
        if self.revoked:
            return
        try:
            message = validate_inbound(content)
        except InvalidMessage as exc:
            await self.send_json({"type": "error", "error": str(exc)})
            return
        kind = message["type"]
        if kind == "ping":
            await self.send_json({"type": "pong", "t": message["t"]})
        elif kind == "hello":
            await self._relay({**message, "type": "peer.joined", "role": self.role})
        else:
            await self._relay({**message, "from": self.role})

    async def _relay(self, payload: dict) -> None:
        """To the other side only: the peer's process alone receives it."""
        other = "patient" if self.role == "physician" else "physician"
        await self.channel_layer.group_send(
            room_side_group(self.visit_id, other),
            {"type": "room.relay", "sender": self.channel_name, "payload": payload},
        )

    async def room_relay(self, event):
        if event["sender"] != self.channel_name and not self.revoked:
            await self.send_json(event["payload"])

    async def room_push(self, event):
        if self.revoked:
            return
        await self.send_json(event["payload"])
        if event["payload"].get("type") == "ended":
            await self.close()
