"""Reads for visits and availability; ``visits_visible_to`` is the one permission gate."""

import zoneinfo
from collections.abc import Callable, Collection
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db.models import Model, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from consults.models import (
    ACTIVE_STATUSES,
    AvailabilityException,
    AvailabilityRule,
    Consent,
    ConsentPurpose,
    RoomPresence,
    Visit,
    VisitStatus,
)
from telehealth.models import Role, User


def visits_visible_to(user: User) -> QuerySet[Visit]:
    """Every visit this user may see: patients their own, physicians theirs and their queues."""
    visits = Visit.objects.select_related("patient", "physician")
    if not user.is_authenticated or not user.is_active:
        return visits.none()
    if user.is_clinic_admin:
        return visits
    if user.is_physician:
        mine = Q(physician=user)
        if user.serves_on_demand:
            mine |= Q(physician__isnull=True, kind=Visit.Kind.ON_DEMAND, status__in=ACTIVE_STATUSES)
        return visits.filter(mine)
    return visits.filter(patient=user)


def visit_get_for_user(*, user: User, visit_id: int) -> Visit | None:
    """The visit if this user may see it, else None (callers answer 404 and audit the attempt)."""
    return visits_visible_to(user).filter(pk=visit_id).first()


def visits_for_patient(*, patient: User) -> tuple[list[Visit], list[Visit]]:
    """The patient's upcoming (active) and past visits."""
    visits = list(visits_visible_to(patient).filter(patient=patient))
    upcoming = sorted(
        (v for v in visits if v.is_active),
        key=lambda v: v.scheduled_start or v.created_at,
    )
    past = [v for v in visits if not v.is_active]
    return upcoming, past


def physicians() -> QuerySet[User]:
    return User.objects.filter(role=Role.PHYSICIAN, is_active=True)


def _windows_for_day(
    *, day: date, rules: list[AvailabilityRule], exceptions: list[AvailabilityException]
) -> list[tuple[time, time, int]]:
    todays = [e for e in exceptions if e.date == day]
    if any(e.kind == e.Kind.UNAVAILABLE and e.start_time is None for e in todays):
        return []
    windows = [
        (r.start_time, r.end_time, r.slot_minutes) for r in rules if r.weekday == day.weekday()
    ]
    windows += [
        (e.start_time, e.end_time, e.slot_minutes)
        for e in todays
        if e.kind == e.Kind.EXTRA and e.start_time and e.end_time
    ]
    return windows


def _blocked(*, start: datetime, end: datetime, day_off: list[tuple[datetime, datetime]]) -> bool:
    return any(start < off_end and end > off_start for off_start, off_end in day_off)


def free_slots(
    *, physician: User, start_date: date | None = None, days: int = 14, now: datetime | None = None
) -> list[datetime]:
    """Bookable slot starts (aware, UTC) from start_date (default: the physician's today)."""
    now = now or timezone.now()
    tz = zoneinfo.ZoneInfo(physician.time_zone)
    start_date = start_date or now.astimezone(tz).date()
    end_date = start_date + timedelta(days=days)
    rules = list(AvailabilityRule.objects.filter(physician=physician))
    exceptions = list(
        AvailabilityException.objects.filter(
            physician=physician, date__gte=start_date, date__lt=end_date
        )
    )
    taken = set(
        Visit.objects.filter(
            physician=physician, status__in=ACTIVE_STATUSES, scheduled_start__isnull=False
        ).values_list("scheduled_start", flat=True)
    )
    slots: list[datetime] = []
    for offset in range(days):
        day = start_date + timedelta(days=offset)
        day_off = [
            (
                datetime.combine(day, e.start_time, tzinfo=tz),
                datetime.combine(day, e.end_time, tzinfo=tz),
            )
            for e in exceptions
            if e.date == day and e.kind == e.Kind.UNAVAILABLE and e.start_time and e.end_time
        ]
        for start_t, end_t, minutes in _windows_for_day(
            day=day, rules=rules, exceptions=exceptions
        ):
            cursor = datetime.combine(day, start_t, tzinfo=tz)
            window_end = datetime.combine(day, end_t, tzinfo=tz)
            step = timedelta(minutes=minutes)
            while cursor + step <= window_end:
                utc_start = cursor.astimezone(zoneinfo.ZoneInfo("UTC"))
                if (
                    utc_start > now
                    and utc_start not in taken
                    and not _blocked(start=cursor, end=cursor + step, day_off=day_off)
                ):
                    slots.append(utc_start)
                cursor += step
    return sorted(set(slots))


def slot_is_free(*, physician: User, start: datetime, now: datetime | None = None) -> bool:
    """Whether ``start`` is one of the physician's bookable slots right now."""
    local_day = start.astimezone(zoneinfo.ZoneInfo(physician.time_zone)).date()
    return start in free_slots(physician=physician, start_date=local_day, days=1, now=now)


def slot_minutes_at(*, physician: User, start: datetime) -> int:
    """The slot length that applies at ``start`` (from the rule or exception that offers it)."""
    local = start.astimezone(zoneinfo.ZoneInfo(physician.time_zone))
    for exception in AvailabilityException.objects.filter(
        physician=physician, date=local.date(), kind=AvailabilityException.Kind.EXTRA
    ):
        if exception.start_time and exception.start_time <= local.time() < exception.end_time:
            return exception.slot_minutes
    rule = AvailabilityRule.objects.filter(
        physician=physician,
        weekday=local.weekday(),
        start_time__lte=local.time(),
        end_time__gt=local.time(),
    ).first()
    return rule.slot_minutes if rule else 20


def patient_visits_near(
    *, patient: User, start: datetime, end: datetime
) -> tuple[list[Visit], list[Visit]]:
    """The patient's active scheduled visits that overlap [start, end), and the others on the
    same day (in the patient's time zone)."""
    tz = zoneinfo.ZoneInfo(patient.time_zone)
    day_start = datetime.combine(start.astimezone(tz).date(), time.min, tzinfo=tz)
    day_end = day_start + timedelta(days=1)
    candidates = Visit.objects.select_related("physician").filter(
        patient=patient,
        status__in=ACTIVE_STATUSES,
        # A visit that began the day before may still run into this one.
        scheduled_start__gte=min(day_start, start) - timedelta(days=1),
        scheduled_start__lt=max(day_end, end),
    )
    overlapping, same_day = [], []
    for visit in candidates.order_by("scheduled_start"):
        visit_end = visit.scheduled_start + timedelta(minutes=visit.duration_minutes)
        if visit.scheduled_start < end and visit_end > start:
            overlapping.append(visit)
        elif day_start <= visit.scheduled_start < day_end:
            same_day.append(visit)
    return overlapping, same_day


def no_shows_since(*, since: datetime) -> int:
    return Visit.objects.filter(status=VisitStatus.NO_SHOW, scheduled_start__gte=since).count()


def consult_room_visit(*, user: User, visit_id: int) -> Visit | None:
    """The visit if ``user`` is its patient or its physician, still an active account, and the
    consult is in progress. Read from the database each time: sockets re-check with it."""
    if not user.is_authenticated:
        return None
    return (
        Visit.objects.select_related("patient", "physician")
        .filter(pk=visit_id, status=VisitStatus.IN_CONSULT)
        .filter(
            Q(patient=user, patient__is_active=True) | Q(physician=user, physician__is_active=True)
        )
        .first()
    )


def live_presences(*, visit: Visit) -> QuerySet[RoomPresence]:
    """Presence rows of sockets still open: not left, and refreshed within ROOM_PRESENCE_TTL
    (a socket whose disconnect never ran stops counting then)."""
    fresh_since = timezone.now() - timedelta(seconds=settings.ROOM_PRESENCE_TTL)
    return RoomPresence.objects.filter(visit=visit, left_at__isnull=True, seen_at__gte=fresh_since)


def consent_state(*, visit: Visit) -> dict[str, bool | None]:
    """The decision in force per purpose: True, False, or None when not yet asked."""
    state: dict[str, bool | None] = dict.fromkeys(ConsentPurpose.values)
    for consent in Consent.objects.filter(visit=visit).order_by("created_at", "id"):
        state[consent.purpose] = consent.granted
    return state


def consent_given(*, visit: Visit, purpose: str) -> bool:
    """Whether the patient's latest decision for ``purpose`` on this visit is yes."""
    return consent_state(visit=visit).get(purpose) is True


def room_roles_present(*, visit: Visit) -> list[str]:
    """Roles ("patient", "physician") with an open socket in the room."""
    user_ids = set(live_presences(visit=visit).values_list("user_id", flat=True))
    roles = []
    if visit.patient_id in user_ids:
        roles.append("patient")
    if visit.physician_id in user_ids:
        roles.append("physician")
    return roles


def patient_left_call(*, visit: Visit) -> bool:
    """True when the patient was in this consult's call and has no socket open there now."""
    if visit.status != VisitStatus.IN_CONSULT:
        return False
    presence = RoomPresence.objects.filter(visit=visit, user_id=visit.patient_id)
    return (
        presence.exists()
        and not live_presences(visit=visit).filter(user_id=visit.patient_id).exists()
    )


def visits_to_sign(*, physician: User) -> QuerySet[Visit]:
    """The physician's finished visits whose note is not signed yet, oldest first."""
    return (
        Visit.objects.select_related("patient", "note")
        .filter(physician=physician, status=VisitStatus.COMPLETED)
        .exclude(note__status="signed")
        .order_by("ended_at", "pk")
    )


def visit_dates_of(
    *, model: type[Model], visit_path: str
) -> Callable[[Collection[str]], dict[str, datetime]]:
    """A lookup of when the visit of each ``model`` object was (its slot, else its start, else
    its booking), by object id, for the patient's "Who opened my record" page (telehealth.audit).
    ``visit_path`` leads from the object to its visit ("" for a visit itself)."""
    prefix = f"{visit_path}__" if visit_path else ""
    when = Coalesce(f"{prefix}scheduled_start", f"{prefix}started_at", f"{prefix}created_at")

    def lookup(ids: Collection[str]) -> dict[str, datetime]:
        rows = (
            model.objects.filter(pk__in=[int(i) for i in ids if i.isdigit()])
            .annotate(visit_when=when)
            .values_list("pk", "visit_when")
        )
        return {str(pk): visit_when for pk, visit_when in rows}

    return lookup
