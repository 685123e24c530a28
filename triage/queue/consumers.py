"""Live queue pages: staff queues and a patient's own place in line.

Consumers only forward "something changed" events; pages fetch the fresh view over HTTP.
"""

from channels.db import database_sync_to_async

from consults.room.signaling import InvalidMessage, validate_inbound
from consults.selectors import visit_get_for_user
from telehealth.consumers import BoundedJsonConsumer
from triage.realtime import (
    ADMIN_GROUP,
    ON_DEMAND_GROUP,
    line_group,
    physician_group,
    visit_group,
    visit_patient_group,
)

CLOSE_FORBIDDEN = 4403
MAX_MESSAGE_BYTES = 1024


class _ForwardingConsumer(BoundedJsonConsumer):
    max_frame_chars = MAX_MESSAGE_BYTES
    groups_joined: list[str]

    async def _join(self, groups: list[str]) -> None:
        self.groups_joined = groups
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        # Only a ping (live pages' liveness check, the device check's round trip) is accepted.
        if not isinstance(content, dict) or content.get("type") != "ping":
            await self.send_json({"type": "error", "error": "Unknown message type."})
            return
        try:
            message = validate_inbound(content)
        except InvalidMessage as error:
            await self.send_json({"type": "error", "error": str(error)})
            return
        # The pong goes out through the channel layer and back: a page's periodic ping proves
        # that live events can still reach it. With Redis down the send fails and the socket
        # is closed with 1013, so the page shows "Reconnecting…" instead of silently going stale.
        await self.channel_layer.send(self.channel_name, {"type": "socket.pong", "t": message["t"]})

    async def socket_pong(self, message):
        await self.send_json({"type": "pong", "t": message["t"]})

    async def queue_event(self, message):
        await self.send_json({"type": "queue.changed", "event": message["event"]})


class StaffQueueConsumer(_ForwardingConsumer):
    """A physician's queue (theirs plus on-demand if they serve it) or the admin board."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        if user.is_clinic_admin:
            await self._join([ADMIN_GROUP])
        elif user.is_physician:
            groups = [physician_group(user.pk)]
            if user.serves_on_demand:
                groups.append(ON_DEMAND_GROUP)
            await self._join(groups)
        else:
            await self.close(code=CLOSE_FORBIDDEN)


class VisitWaitConsumer(_ForwardingConsumer):
    """A visit page, live.

    The visit's patient hears their own visit's patient-safe events and "line moved" for the
    line they wait in; staff hear every event of the visit and of its queue.
    """

    # Events after which the visit may no longer be this user's: access is re-checked.
    recheck_events = frozenset({"reassigned"})

    async def connect(self):
        user = self.scope.get("user")
        visit_id = self.scope["url_route"]["kwargs"]["visit_id"]
        visit = None
        if user is not None and user.is_authenticated:
            visit = await database_sync_to_async(visit_get_for_user)(user=user, visit_id=visit_id)
        if visit is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.visit_id = visit.pk
        if user.pk == visit.patient_id:
            await self._join([visit_patient_group(visit.pk), line_group(visit.physician_id)])
            return
        queue = physician_group(visit.physician_id) if visit.physician_id else ON_DEMAND_GROUP
        await self._join([visit_group(visit.pk), queue])

    async def queue_event(self, message):
        if message["event"] in self.recheck_events:
            visit = await database_sync_to_async(visit_get_for_user)(
                user=self.scope["user"], visit_id=self.visit_id
            )
            if visit is None:  # e.g. the previous physician of a reassigned visit
                await self.disconnect(CLOSE_FORBIDDEN)
                self.groups_joined = []
                await self.close(code=CLOSE_FORBIDDEN)
                return
        await super().queue_event(message)
