"""Live queue notifications over Channels.

Messages carry only ids and an event name, never health data: pages re-fetch what changed
through authorized views, so a socket can never show a record its user may not read.
"""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

ON_DEMAND_GROUP = "queue.on_demand"
ADMIN_GROUP = "queue.admin"


def physician_group(physician_id: int) -> str:
    return f"queue.physician.{physician_id}"


def visit_group(visit_id: int) -> str:
    return f"visit.{visit_id}"


def _groups_for(visit) -> list[str]:
    groups = [ADMIN_GROUP, visit_group(visit.pk)]
    groups.append(physician_group(visit.physician_id) if visit.physician_id else ON_DEMAND_GROUP)
    return groups


def queue_changed(*, visit, event: str, previous_physician_id: int | None = None) -> None:
    """Tell every page showing this visit's queue that it changed, once the transaction commits."""
    groups = _groups_for(visit)
    if previous_physician_id and previous_physician_id != visit.physician_id:
        groups.append(physician_group(previous_physician_id))
    # Other patients' positions move too: they listen on the queue groups via their visit page.
    message = {"type": "queue.event", "event": event, "visit": visit.pk}

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        for group in groups:
            async_to_sync(layer.group_send)(group, message)

    # A push is a hint (pages also refresh on their own): with Redis down, the change is
    # saved and the request answers; the failure is logged, not raised.
    transaction.on_commit(send, robust=True)
