"""Group names and pushes for consult rooms (Channels).

A room is two groups, one per side: the patient's sockets and the staff's (the physician's).
Everyone in the room hears call events (consent changed, chat, ended): they go to both. What the
AI produces while the call runs (transcript updated, a red flag heard, the note drafted) goes to
the staff group only: nothing unreviewed reaches the patient, not even its event name. A socket
relays signaling to the other side's group only, so no process receives (and drops) its own
sockets' messages back from the channel layer.
"""

from telehealth.push import group_send_on_commit


def room_patient_group(visit_id: int) -> str:
    return f"consult.{visit_id}.patient"


def room_staff_group(visit_id: int) -> str:
    return f"consult.{visit_id}.staff"


def room_side_group(visit_id: int, role: str) -> str:
    """The group of the room's ``role`` side ("patient" or "physician")."""
    return room_staff_group(visit_id) if role == "physician" else room_patient_group(visit_id)


def room_groups(visit_id: int) -> list[str]:
    """Both sides of the room."""
    return [room_patient_group(visit_id), room_staff_group(visit_id)]


def room_push(*, visit_id: int, payload: dict, staff_only: bool = False) -> None:
    """Send ``payload`` to the visit's consult room once the transaction commits.

    ``staff_only`` keeps it from the patient's socket (AI output and anything derived from it).
    """
    groups = [room_staff_group(visit_id)] if staff_only else room_groups(visit_id)
    # A push is a hint (pages also refresh on their own): with Redis down, the change is
    # saved and the request answers; the outage is logged once (telehealth.push).
    group_send_on_commit([(group, {"type": "room.push", "payload": payload}) for group in groups])


def room_recheck(*, visit_id: int) -> None:
    """Once the transaction commits, tell every socket of the room to re-check its access: those
    who lost it are closed (the services that change who may be in a visit call this)."""
    group_send_on_commit([(group, {"type": "room.recheck"}) for group in room_groups(visit_id)])
