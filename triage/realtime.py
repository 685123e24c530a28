"""Live queue notifications over Channels.

Messages carry only ids and an event name, never health data: pages re-fetch what changed
through authorized views, so a socket can never show a record its user may not read.

Two audiences, two sets of groups. Staff (the queue's physicians, administrators, and staff on
a visit page) hear every event. Patients hear only what a patient may know: their own visit's
patient-safe events (admitted, ended, summary ready, …) and a bare "line moved" when the line
they wait in changes. An event that comes from the AI or from clinical review (photos analysed,
urgency raised) never reaches a patient's socket by name, and another patient's visit never
reaches it at all.
"""

from telehealth.push import group_send_on_commit

ON_DEMAND_GROUP = "queue.on_demand"
ADMIN_GROUP = "queue.admin"

# What a patient's own visit page may be told by name. Anything else (photos, photo_analysed,
# urgency, …) is staff-only; the patient's line only learns that it moved.
PATIENT_EVENTS = frozenset(
    {
        "booked",
        "checked_in",
        "cancelled",
        "rescheduled",
        "reassigned",
        "no_show",
        "admitted",
        "ended",
        "summary_ready",
    }
)
LINE_MOVED = "line_moved"
# Events that never change anyone's place in line: the line is not told of them at all.
POSITION_NEUTRAL = frozenset(
    {"photos", "photo_analysed", "note_section", "note_drafted", "summary_ready"}
)


def physician_group(physician_id: int) -> str:
    return f"queue.physician.{physician_id}"


def visit_group(visit_id: int) -> str:
    """Staff following one visit (its page, live)."""
    return f"visit.{visit_id}"


def visit_patient_group(visit_id: int) -> str:
    """The visit's own patient, and only them."""
    return f"visit.{visit_id}.patient"


def line_group(physician_id: int | None) -> str:
    """Patients waiting in a physician's line (or the on-demand line): positions only."""
    return f"line.physician.{physician_id}" if physician_id else "line.on_demand"


def _staff_groups(visit, previous_physician_id: int | None) -> list[str]:
    groups = [ADMIN_GROUP, visit_group(visit.pk)]
    groups.append(physician_group(visit.physician_id) if visit.physician_id else ON_DEMAND_GROUP)
    if previous_physician_id and previous_physician_id != visit.physician_id:
        groups.append(physician_group(previous_physician_id))
    return groups


def _patient_messages(visit, event: str, previous_physician_id: int | None) -> list[tuple]:
    sends = []
    if event not in POSITION_NEUTRAL:
        sends.append((line_group(visit.physician_id), LINE_MOVED))
        if previous_physician_id and previous_physician_id != visit.physician_id:
            sends.append((line_group(previous_physician_id), LINE_MOVED))
    if event in PATIENT_EVENTS:
        sends.append((visit_patient_group(visit.pk), event))
    return sends


def queue_changed(*, visit, event: str, previous_physician_id: int | None = None) -> None:
    """Tell every page showing this visit's queue that it changed, once the transaction commits."""
    sends = [(group, event) for group in _staff_groups(visit, previous_physician_id)]
    sends += _patient_messages(visit, event, previous_physician_id)

    # A push is a hint (pages also refresh on their own): with Redis down, the change is
    # saved and the request answers; the outage is logged once (telehealth.push).
    group_send_on_commit([(group, {"type": "queue.event", "event": name}) for group, name in sends])
