"""The consult room socket: WebRTC signaling between the visit's patient and physician.

Thin: authorization on connect (every time), schema validation of every frame, presence in the
database, relay to the other side through the channel layer group.
"""

from channels.db import database_sync_to_async
from django.conf import settings

from consults import selectors, services
from consults.realtime import room_group, room_staff_group
from consults.signaling import MAX_FRAME_CHARS, InvalidMessage, validate_inbound
from telehealth.consumers import BoundedJsonConsumer

CLOSE_FORBIDDEN = 4403


class ConsultRoomConsumer(BoundedJsonConsumer):
    max_frame_chars = MAX_FRAME_CHARS
    visit_id: int | None = None
    role: str = ""

    async def connect(self):
        user = self.scope.get("user")
        visit_id = self.scope["url_route"]["kwargs"]["visit_id"]
        visit = None
        if user is not None and user.is_authenticated:
            visit = await database_sync_to_async(selectors.consult_room_visit)(
                user=user, visit_id=visit_id
            )
        if visit is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.visit_id = visit.pk
        self.role = "physician" if user.pk == visit.physician_id else "patient"
        for group in self._groups():
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        peers, consent = await database_sync_to_async(self._join)(visit, user)
        await self.send_json(
            {
                "type": "welcome",
                "role": self.role,
                "peers": [role for role in peers if role != self.role],
                "consent": consent,
                "iceServers": settings.WEBRTC_ICE_SERVERS,
            }
        )

    def _groups(self) -> list[str]:
        """The room; the physician also hears staff-only pushes (AI output)."""
        groups = [room_group(self.visit_id)]
        if self.role == "physician":
            groups.append(room_staff_group(self.visit_id))
        return groups

    def _join(self, visit, user):
        services.presence_join(visit=visit, user=user, channel_name=self.channel_name)
        return (
            selectors.room_roles_present(visit=visit),
            selectors.consent_state(visit=visit),
        )

    async def disconnect(self, code):
        if self.visit_id is None:
            return
        # Presence first: with Redis down the layer calls below raise, and the room must not
        # go on showing this side as present.
        await database_sync_to_async(services.presence_leave)(channel_name=self.channel_name)
        for group in self._groups():
            await self.channel_layer.group_discard(group, self.channel_name)
        await self._relay({"type": "peer.left", "role": self.role})

    async def receive_json(self, content, **kwargs):
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
        await self.channel_layer.group_send(
            room_group(self.visit_id),
            {"type": "room.relay", "sender": self.channel_name, "payload": payload},
        )

    async def room_relay(self, event):
        if event["sender"] != self.channel_name:
            await self.send_json(event["payload"])

    async def room_push(self, event):
        await self.send_json(event["payload"])
        if event["payload"].get("type") == "ended":
            await self.close()
