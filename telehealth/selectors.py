"""Reads for accounts (activation links), the audit log and the patient's record-access page."""

import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime

from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.db.models import Max, Min, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone
from django.utils.http import urlsafe_base64_decode

from telehealth.audit import OBJECT_WORDS, UNKNOWN_WORDS, audit_visit_dates
from telehealth.models import AuditAction, AuditEvent, User


class ActivationTokenGenerator(PasswordResetTokenGenerator):
    """Links that activate a new patient account; following one (is_active flips) spends it."""

    key_salt = "telehealth.selectors.ActivationTokenGenerator"

    def _make_hash_value(self, user: User, timestamp: int) -> str:
        return f"{super()._make_hash_value(user, timestamp)}{user.is_active}"


activation_tokens = ActivationTokenGenerator()


def is_pending_activation(user: User) -> bool:
    """A patient who signed up but has not followed the activation link yet."""
    return user.is_patient and not user.is_active and user.last_login is None


def user_from_activation_link(*, uidb64: str, token: str) -> User | None:
    """The account an activation link is for, if the link is genuine, unexpired and unspent."""
    try:
        user_id = int(urlsafe_base64_decode(uidb64).decode())
    except (ValueError, TypeError, UnicodeDecodeError):
        return None
    user = User.objects.filter(pk=user_id).first()
    if user is None or not is_pending_activation(user):
        return None
    return user if activation_tokens.check_token(user, token) else None


def audit_events(*, patient_id: int | None = None, actor_id: int | None = None) -> QuerySet:
    """Audit events, newest first, optionally for one patient and/or one user."""
    events = AuditEvent.objects.select_related("actor", "patient")
    if patient_id:
        events = events.filter(patient_id=patient_id)
    if actor_id:
        events = events.filter(actor_id=actor_id)
    return events


# --- "Who opened my record": the patient's own audit trail, in words --------------------------


@dataclass(frozen=True)
class AccessLine:
    """What one person did with one part of the record on one day, however many times."""

    text: str  # "read your clinical note from your visit of 3 December"
    times: str  # "12 times between 10:02 and 10:31"


@dataclass(frozen=True)
class AccessPerson:
    name: str  # "Dr Gregory House", or "You"
    role: str  # "physician", "administrator"; empty for "You"
    lines: list[AccessLine]


@dataclass(frozen=True)
class AccessDay:
    day: date
    people: list[AccessPerson]


def _record_access_events(patient: User) -> QuerySet:
    # Anyone else's reads, and every export (the patient's own included): a copy left the record.
    return AuditEvent.objects.filter(patient=patient).filter(
        Q(action=AuditAction.EXPORT) | (Q(action=AuditAction.READ) & ~Q(actor=patient))
    )


def record_access_days(*, patient: User) -> list[date]:
    """The days (in the patient's time zone) on which their record was opened, newest first."""
    tz = zoneinfo.ZoneInfo(patient.time_zone)
    days = (
        _record_access_events(patient)
        .annotate(day=TruncDate("created_at", tzinfo=tz))
        .order_by("-day")
        .values_list("day", flat=True)
        .distinct()
    )
    return list(days)


def _day_words(moment: datetime, *, today: date) -> str:
    day = f"{moment.day} {moment:%B}"
    return day if moment.year == today.year else f"{day} {moment.year}"


def _times_words(count: int, first: datetime, last: datetime) -> str:
    start, end = f"{first:%H:%M}", f"{last:%H:%M}"
    if count == 1:
        return f"at {start}"
    times = "twice" if count == 2 else f"{count} times"
    return f"{times} at {start}" if start == end else f"{times} between {start} and {end}"


def _person(actor: User | None, *, patient: User) -> tuple[str, str]:
    if actor is None:
        return "Someone whose account has since been closed", ""
    if actor.pk == patient.pk:
        return "You", ""
    role = "administrator" if actor.is_clinic_admin else actor.get_role_display().lower()
    return actor.display_name, role


def record_access_summary(*, patient: User, days: list[date]) -> list[AccessDay]:
    """Who opened what of the patient's record on these days, in plain words: by day, then by
    person, each thing once with how many times and between which times."""
    tz = zoneinfo.ZoneInfo(patient.time_zone)
    today = timezone.localdate(timezone=tz)
    rows = (
        _record_access_events(patient)
        .annotate(day=TruncDate("created_at", tzinfo=tz))
        .filter(day__in=days)
        .values("day", "actor", "action", "object_type", "object_id")
        .annotate(
            times=Sum("count"),
            first=Min("created_at"),
            last=Max(Coalesce("last_seen_at", "created_at")),
        )
        .order_by()
    )
    visits = audit_visit_dates((row["object_type"], row["object_id"]) for row in rows)
    actors = User.objects.in_bulk({row["actor"] for row in rows if row["actor"]})
    # day -> actor -> what was done -> [times, first, last]
    seen: dict[date, dict[int | None, dict[str, list]]] = {}
    for row in rows:
        verb, what = OBJECT_WORDS.get(row["object_type"], UNKNOWN_WORDS)
        when = visits.get((row["object_type"], row["object_id"]))
        visit = f"your visit of {_day_words(when.astimezone(tz), today=today)}" if when else ""
        what = what.format(visit=visit or "your visit")
        text = f"{'exported' if row['action'] == AuditAction.EXPORT else verb} {what}"
        tally = seen.setdefault(row["day"], {}).setdefault(row["actor"], {})
        count, first, last = tally.get(text, (0, row["first"], row["last"]))
        tally[text] = [count + row["times"], min(first, row["first"]), max(last, row["last"])]
    summary = []
    for day in days:
        people = []
        for actor_id, things in seen.get(day, {}).items():
            ordered = sorted(things.items(), key=lambda item: item[1][2], reverse=True)
            lines = [
                AccessLine(text, _times_words(n, first.astimezone(tz), last.astimezone(tz)))
                for text, (n, first, last) in ordered
            ]
            name, role = _person(actors.get(actor_id), patient=patient)
            people.append((ordered[0][1][2], AccessPerson(name, role, lines)))
        people.sort(key=lambda item: item[0], reverse=True)
        summary.append(AccessDay(day, [person for _, person in people]))
    return summary
