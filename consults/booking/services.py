"""Writes for booking and the visit lifecycle up to the lobby: book, join the on-demand line,
cancel, reschedule, check in, reassign, no-shows, availability. The room's are in
``consults.room.services``."""

import zoneinfo
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from consults import hooks
from consults.models import (
    ACTIVE_STATUSES,
    AvailabilityException,
    AvailabilityRule,
    Visit,
    VisitStatus,
)
from consults.realtime import room_recheck
from consults.selectors import (
    patient_visits_near,
    slot_is_free,
    slot_minutes_at,
)
from telehealth.models import User

# Patients may check in this long before their slot starts.
CHECK_IN_WINDOW = timedelta(minutes=30)


class BookingError(Exception):
    """A booking request that cannot be carried out; the message is shown to the user."""


def _require_patient(user: User) -> None:
    if not user.is_patient:
        raise BookingError("Only patients can book visits.")


class SlotTaken(BookingError):
    """Someone else booked the slot after the page offered it."""


class AlreadyBooked(BookingError):
    """The patient already holds exactly this booking (the form sent again, e.g. after Back)."""

    def __init__(self, visit: Visit):
        super().__init__("You have already booked this visit.")
        self.visit = visit


class SameDayVisit(BookingError):
    """The patient already has a visit that day: a second one needs their confirmation."""

    def __init__(self, visits: list[Visit]):
        super().__init__("You already have a visit that day.")
        self.visits = visits


def _local(moment: datetime, *, patient: User) -> str:
    return moment.astimezone(zoneinfo.ZoneInfo(patient.time_zone)).strftime("%H:%M on %a %d %b")


def _slot_unavailable(*, patient: User, physician: User, start: datetime) -> BookingError:
    """Why ``start`` cannot be booked: the patient's own booking, their other visit, or taken."""
    mine = (
        Visit.objects.select_related("physician")
        .filter(patient=patient, scheduled_start=start, status__in=ACTIVE_STATUSES)
        .first()
    )
    if mine is not None and mine.physician_id == physician.pk:
        return AlreadyBooked(mine)
    if mine is not None:
        return BookingError(
            f"You already have a visit at {_local(start, patient=patient)} with "
            f"{mine.physician.display_name}. Please choose another time."
        )
    return SlotTaken(
        f"{_local(start, patient=patient)} is no longer available: someone else booked it "
        "while you were choosing. Please choose another time."
    )


def visit_book(
    *,
    patient: User,
    physician: User,
    start: datetime,
    reason: str,
    symptoms: str = "",
    symptom_duration: str = "",
    red_flags: list[str] | None = None,
    medicines: str = "",
    allergies: str = "",
    same_day_confirmed: bool = False,
) -> Visit:
    """Book ``start`` in the physician's calendar with the patient's intake.

    Refused when it overlaps another of the patient's visits; a visit on a day the patient
    already has one needs ``same_day_confirmed`` (else ``SameDayVisit``), so a form sent twice
    does not quietly book twice. The slot check is advisory; the unique constraints on
    (physician, start) and (patient, start) settle races.
    """
    _require_patient(patient)
    if not physician.is_physician:
        raise BookingError("Choose a physician.")
    if start <= timezone.now():
        raise BookingError("That time has already passed. Choose a later slot.")
    if not slot_is_free(physician=physician, start=start):
        raise _slot_unavailable(patient=patient, physician=physician, start=start)
    duration = slot_minutes_at(physician=physician, start=start)
    overlapping, same_day = patient_visits_near(
        patient=patient, start=start, end=start + timedelta(minutes=duration)
    )
    if overlapping:
        other = overlapping[0]
        raise BookingError(
            f"You already have a visit at {_local(other.scheduled_start, patient=patient)} with "
            f"{other.physician.display_name}, which overlaps this time. "
            "Please choose another time."
        )
    if same_day and not same_day_confirmed:
        raise SameDayVisit(same_day)
    try:
        with transaction.atomic():
            visit = Visit.objects.create(
                patient=patient,
                physician=physician,
                kind=Visit.Kind.SCHEDULED,
                scheduled_start=start,
                duration_minutes=duration,
                reason=reason,
            )
            hooks.intake_record(
                visit=visit,
                reason=reason,
                symptoms=symptoms,
                symptom_duration=symptom_duration,
                red_flags=red_flags,
                medicines=medicines,
                allergies=allergies,
            )
    except IntegrityError as exc:
        raise _slot_unavailable(patient=patient, physician=physician, start=start) from exc
    hooks.visit_changed(visit=visit, event="booked")
    return visit


def visit_join_on_demand(
    *,
    patient: User,
    reason: str,
    symptoms: str = "",
    symptom_duration: str = "",
    red_flags: list[str] | None = None,
    medicines: str = "",
    allergies: str = "",
) -> Visit:
    """Put the patient in the on-demand ("first available") queue, checked in now."""
    _require_patient(patient)
    if Visit.objects.filter(
        patient=patient,
        kind=Visit.Kind.ON_DEMAND,
        status__in=[VisitStatus.CHECKED_IN, VisitStatus.IN_CONSULT],
    ).exists():
        raise BookingError("You are already waiting in the on-demand queue.")
    with transaction.atomic():
        visit = Visit.objects.create(
            patient=patient,
            kind=Visit.Kind.ON_DEMAND,
            status=VisitStatus.CHECKED_IN,
            checked_in_at=timezone.now(),
            reason=reason,
        )
        hooks.intake_record(
            visit=visit,
            reason=reason,
            symptoms=symptoms,
            symptom_duration=symptom_duration,
            red_flags=red_flags,
            medicines=medicines,
            allergies=allergies,
        )
    hooks.visit_changed(visit=visit, event="checked_in")
    return visit


def visit_cancel(*, visit: Visit, actor: User) -> Visit:
    """Cancel an upcoming or waiting visit."""
    if visit.status not in (VisitStatus.BOOKED, VisitStatus.CHECKED_IN):
        raise BookingError("Only upcoming or waiting visits can be cancelled.")
    visit.status = VisitStatus.CANCELLED
    visit.cancelled_at = timezone.now()
    visit.save(update_fields=["status", "cancelled_at"])
    hooks.visit_changed(visit=visit, event="cancelled")
    return visit


def visit_reschedule(*, visit: Visit, actor: User, start: datetime) -> Visit:
    """Move a booked visit to another free slot of the same physician."""
    if visit.status != VisitStatus.BOOKED or visit.physician is None:
        raise BookingError("Only booked visits can be rescheduled.")
    if start <= timezone.now():
        raise BookingError("That time has already passed. Choose a later slot.")
    if not slot_is_free(physician=visit.physician, start=start):
        raise BookingError("That slot is no longer available. Please choose another time.")
    visit.scheduled_start = start
    visit.duration_minutes = slot_minutes_at(physician=visit.physician, start=start)
    try:
        with transaction.atomic():
            visit.save(update_fields=["scheduled_start", "duration_minutes"])
    except IntegrityError as exc:
        visit.refresh_from_db()
        raise BookingError("That slot was just taken. Please choose another time.") from exc
    hooks.visit_changed(visit=visit, event="rescheduled")
    return visit


def visit_check_in(*, visit: Visit, actor: User, now: datetime | None = None) -> Visit:
    """The patient arrives in the virtual waiting room and joins the physician's queue."""
    now = now or timezone.now()
    if visit.status != VisitStatus.BOOKED:
        raise BookingError("This visit is not waiting for check-in.")
    if visit.scheduled_start and now < visit.scheduled_start - CHECK_IN_WINDOW:
        raise BookingError("Check-in opens 30 minutes before your appointment.")
    visit.status = VisitStatus.CHECKED_IN
    visit.checked_in_at = now
    visit.save(update_fields=["status", "checked_in_at"])
    hooks.visit_changed(visit=visit, event="checked_in")
    return visit


def visit_reassign(*, visit: Visit, actor: User, physician: User) -> Visit:
    """An administrator moves a visit to another physician."""
    if not actor.is_clinic_admin:
        raise BookingError("Only administrators can reassign visits.")
    if not physician.is_physician:
        raise BookingError("Choose a physician.")
    if not visit.is_active:
        raise BookingError("Only active visits can be reassigned.")
    previous = visit.physician_id
    visit.physician = physician
    try:
        with transaction.atomic():
            visit.save(update_fields=["physician"])
    except IntegrityError as exc:
        visit.refresh_from_db()
        raise BookingError("That physician already has a visit at this time.") from exc
    hooks.visit_changed(visit=visit, event="reassigned", previous_physician_id=previous)
    # The previous physician's open room sockets close at once, not at their next re-check.
    room_recheck(visit_id=visit.pk)
    return visit


def visit_mark_no_show(*, visit: Visit, actor: User) -> Visit:
    """Staff record that the patient did not turn up."""
    if not (actor.is_clinic_admin or actor.is_physician):
        raise BookingError("Only clinic staff can mark a no-show.")
    if visit.status not in (VisitStatus.BOOKED, VisitStatus.CHECKED_IN):
        raise BookingError("Only upcoming or waiting visits can be marked as no-show.")
    visit.status = VisitStatus.NO_SHOW
    visit.save(update_fields=["status"])
    hooks.visit_changed(visit=visit, event="no_show")
    return visit


def visits_mark_no_shows(*, now: datetime | None = None) -> list[Visit]:
    """Booked visits whose whole slot passed without a check-in become no-shows. Idempotent."""
    now = now or timezone.now()
    marked = []
    for visit in Visit.objects.filter(status=VisitStatus.BOOKED, scheduled_start__lt=now):
        if visit.scheduled_start + timedelta(minutes=visit.duration_minutes) >= now:
            continue
        # The status filter makes a redelivered task harmless.
        if Visit.objects.filter(pk=visit.pk, status=VisitStatus.BOOKED).update(
            status=VisitStatus.NO_SHOW
        ):
            visit.status = VisitStatus.NO_SHOW
            hooks.visit_changed(visit=visit, event="no_show")
            marked.append(visit)
    return marked


def availability_rule_add(
    *, physician: User, weekday: int, start_time, end_time, slot_minutes: int = 20
) -> AvailabilityRule:
    """Add recurring weekly hours."""
    if end_time <= start_time:
        raise BookingError("The end time must be after the start time.")
    if not 5 <= slot_minutes <= 120:
        raise BookingError("Slots must last between 5 and 120 minutes.")
    return AvailabilityRule.objects.create(
        physician=physician,
        weekday=weekday,
        start_time=start_time,
        end_time=end_time,
        slot_minutes=slot_minutes,
    )


def availability_exception_add(
    *,
    physician: User,
    date,
    kind: str,
    start_time=None,
    end_time=None,
    slot_minutes: int = 20,
    note: str = "",
) -> AvailabilityException:
    """Add a one-off change: time off (whole day or a window) or extra hours."""
    if (start_time is None) != (end_time is None):
        raise BookingError("Give both a start and an end time, or neither for the whole day.")
    if start_time is not None and end_time <= start_time:
        raise BookingError("The end time must be after the start time.")
    if kind == AvailabilityException.Kind.EXTRA and start_time is None:
        raise BookingError("Extra hours need a start and an end time.")
    return AvailabilityException.objects.create(
        physician=physician,
        date=date,
        kind=kind,
        start_time=start_time,
        end_time=end_time,
        slot_minutes=slot_minutes,
        note=note,
    )
