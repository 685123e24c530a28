"""Group names and pushes for consult rooms (Channels).

Everyone in the room (patient and physician) hears call events: consent changed, chat, ended.
What the AI produces while the call runs (transcript updated, a red flag heard, the note
drafted) goes to the staff group only: nothing unreviewed reaches the patient, not even its
event name.
"""

from telehealth.push import group_send_on_commit


def room_group(visit_id: int) -> str:
    return f"consult.{visit_id}"


def room_staff_group(visit_id: int) -> str:
    return f"consult.{visit_id}.staff"


def room_push(*, visit_id: int, payload: dict, staff_only: bool = False) -> None:
    """Send ``payload`` to the visit's consult room once the transaction commits.

    ``staff_only`` keeps it from the patient's socket (AI output and anything derived from it).
    """
    group = room_staff_group(visit_id) if staff_only else room_group(visit_id)
    # A push is a hint (pages also refresh on their own): with Redis down, the change is
    # saved and the request answers; the outage is logged once (telehealth.push).
    group_send_on_commit([(group, {"type": "room.push", "payload": payload})])


def room_recheck(*, visit_id: int) -> None:
    """Once the transaction commits, tell every socket of the room to re-check its access: those
    who lost it are closed (the services that change who may be in a visit call this)."""
    group_send_on_commit([(room_group(visit_id), {"type": "room.recheck"})])
