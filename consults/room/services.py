"""Writes for the consult room: admit from the lobby, end, consent, presence, chat."""

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from consults import hooks
from consults.booking.services import BookingError
from consults.models import (
    ChatMessage,
    Consent,
    ConsentPurpose,
    RoomPresence,
    Visit,
    VisitStatus,
)
from consults.realtime import room_push
from consults.room.attachments import attachment_clean
from consults.selectors import (
    consent_state,
    consult_room_visit,
    room_roles_present,
)
from telehealth.models import User
from telehealth.private_media import private_save


class AdmitNeedsReason(BookingError):
    """Admitting this patient would pass over more urgent or overdue ones: a reason is needed."""

    def __init__(self, passed_over: list):
        super().__init__("Say why you are admitting this patient before the others.")
        self.passed_over = passed_over


CONSENT_VERSION = "2026-11"


def visit_admit(*, visit: Visit, physician: User, reason: str = "") -> Visit:
    """The physician lets exactly this waiting patient into the consult room.

    Taking them before a more urgent or overdue patient of the same queue needs ``reason``
    (else ``AdmitNeedsReason``, listing whom they would pass); the reason is kept and audited.
    """
    if not physician.is_physician:
        raise BookingError("Only physicians can admit patients.")
    with transaction.atomic():
        locked = Visit.objects.select_for_update().get(pk=visit.pk)
        if locked.status != VisitStatus.CHECKED_IN:
            raise BookingError("This patient is not waiting.")
        if locked.physician_id is None:
            if not physician.serves_on_demand:
                raise BookingError("You do not serve the on-demand queue.")
        elif locked.physician_id != physician.pk:
            raise BookingError("This patient is waiting for another physician.")
        passed_over = hooks.queue_passed_over(visit=locked, physician=physician)
        if passed_over and not reason.strip():
            raise AdmitNeedsReason(passed_over)
        locked.physician = physician
        locked.status = VisitStatus.IN_CONSULT
        # The consult clock: the room's call timer counts from here, across reloads.
        locked.started_at = timezone.now()
        locked.save(update_fields=["physician", "status", "started_at"])
        if passed_over:
            hooks.queue_skip_record(
                visit=locked, actor=physician, passed_over=passed_over, reason=reason
            )
    hooks.visit_changed(visit=locked, event="admitted")
    return locked


def visit_end(*, visit: Visit, actor: User) -> Visit:
    """The physician ends the consult; both sides are told and the times are recorded."""
    if actor.pk != visit.physician_id:
        raise BookingError("Only the visit's physician can end it.")
    if visit.status != VisitStatus.IN_CONSULT:
        raise BookingError("This consult is not in progress.")
    visit.status = VisitStatus.COMPLETED
    visit.ended_at = timezone.now()
    visit.save(update_fields=["status", "ended_at"])
    RoomPresence.objects.filter(visit=visit, left_at__isnull=True).update(left_at=visit.ended_at)
    from consults.transcripts.services import recordings_settle

    recordings_settle(visit_id=visit.pk)
    room_push(visit_id=visit.pk, payload={"type": "ended"})
    hooks.visit_changed(visit=visit, event="ended")
    from consults.notes.services import note_request

    # With no audio still in flight the transcript is complete now: draft the note at once.
    transaction.on_commit(lambda: note_request(visit=visit))
    return visit


def consent_record(*, visit: Visit, patient: User, choices: dict[str, bool]) -> list[Consent]:
    """Store the patient's decision per purpose (time and version kept; changes append)."""
    if patient.pk != visit.patient_id:
        raise BookingError("Only the patient can give or withdraw consent.")
    unknown = set(choices) - set(ConsentPurpose.values)
    if unknown:
        raise BookingError(f"Unknown consent purpose: {', '.join(sorted(unknown))}")
    rows = Consent.objects.bulk_create(
        Consent(visit=visit, patient=patient, purpose=p, granted=g, version=CONSENT_VERSION)
        for p, g in choices.items()
    )
    room_push(visit_id=visit.pk, payload={"type": "consent", "state": consent_state(visit=visit)})
    return rows


def visit_leave(*, visit: Visit, user: User) -> None:
    """The patient hangs up: the visit stays in consult, and they may rejoin until it ends."""
    if user.pk != visit.patient_id:
        raise BookingError("Only the patient leaves the call; the physician ends the visit.")
    # The socket's own disconnect also does this, but later: the visit page must already
    # know that the patient left, or it would send them straight back into the room.
    RoomPresence.objects.filter(visit=visit, user=user, left_at__isnull=True).update(
        left_at=timezone.now()
    )


def presence_join(*, visit: Visit, user: User, channel_name: str) -> RoomPresence:
    """Record that a socket of this user joined the room."""
    return RoomPresence.objects.create(visit=visit, user=user, channel_name=channel_name)


def presence_leave(*, channel_name: str) -> None:
    RoomPresence.objects.filter(channel_name=channel_name, left_at__isnull=True).update(
        left_at=timezone.now()
    )


@dataclass(frozen=True)
class RoomEntry:
    """What a room socket needs from the database, loaded once at connect."""

    visit_id: int
    role: str
    peers: list[str]
    consent: dict[str, bool | None]


def room_enter(*, user: User, visit_id: int, channel_name: str) -> RoomEntry | None:
    """Authorize a room socket and record its presence, in one go; None if ``user`` may not be
    in this room now."""
    visit = consult_room_visit(user=user, visit_id=visit_id)
    if visit is None:
        return None
    presence_join(visit=visit, user=user, channel_name=channel_name)
    role = "physician" if user.pk == visit.physician_id else "patient"
    return RoomEntry(
        visit_id=visit.pk,
        role=role,
        peers=[other for other in room_roles_present(visit=visit) if other != role],
        consent=consent_state(visit=visit),
    )


def room_stay(*, user: User, visit_id: int, channel_name: str) -> bool:
    """Re-check an open room socket: refresh its presence if ``user`` may still be in the room,
    else close its presence. False once access is lost (the socket must close)."""
    if consult_room_visit(user=user, visit_id=visit_id) is None:
        presence_leave(channel_name=channel_name)
        return False
    RoomPresence.objects.filter(channel_name=channel_name, left_at__isnull=True).update(
        seen_at=timezone.now()
    )
    return True


def chat_post(
    *, visit: Visit, sender: User, text: str, attachment: bytes | None = None, filename: str = ""
) -> ChatMessage:
    """Post a chat message (optionally with a checked attachment) and push it to the room."""
    if visit.status != VisitStatus.IN_CONSULT:
        raise BookingError("The chat is open only during the consult.")
    text = text.strip()
    if not text and not attachment:
        raise BookingError("Write a message or attach a file.")
    if len(text) > 2000:
        raise BookingError("Messages are limited to 2,000 characters.")
    message = ChatMessage(visit=visit, sender=sender, text=text)
    if attachment is not None:
        clean = attachment_clean(data=attachment)
        message.attachment_path = private_save(
            category="chat", data=clean.data, suffix=clean.suffix
        )
        message.attachment_type = clean.content_type
        stem = "".join(c for c in filename.rsplit(".", 1)[0] if c.isalnum() or c in "-_ ")[:80]
        message.attachment_name = f"{stem or 'attachment'}{clean.suffix}"
    message.save()
    room_push(visit_id=visit.pk, payload={"type": "chat.new"})
    return message
