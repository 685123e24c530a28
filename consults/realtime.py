"""Group names and pushes for consult rooms (Channels)."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction


def room_group(visit_id: int) -> str:
    return f"consult.{visit_id}"


def room_push(*, visit_id: int, payload: dict) -> None:
    """Send ``payload`` to everyone in the visit's consult room once the transaction commits."""

    def send() -> None:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(
                room_group(visit_id), {"type": "room.push", "payload": payload}
            )

    # A push is a hint (pages also refresh on their own): with Redis down, the change is
    # saved and the request answers; the failure is logged, not raised.
    transaction.on_commit(send, robust=True)
