"""Reads for the queues: who is waiting, in what order, for how long."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from consults.models import Visit, VisitStatus
from consults.selectors import visits_visible_to
from consults.urgency import LEVELS, is_more_urgent, urgency_rank
from telehealth.models import User


@dataclass(frozen=True)
class QueueEntry:
    visit: Visit
    position: int
    waited: timedelta
    max_wait: timedelta
    overdue: bool

    @property
    def waited_minutes(self) -> int:
        return int(self.waited.total_seconds() // 60)

    @property
    def overdue_minutes(self) -> int:
        """Whole minutes past the level's maximum wait: at least 1 when overdue, else 0."""
        if not self.overdue:
            return 0
        return max(1, int((self.waited - self.max_wait).total_seconds() // 60))


def _entries(visits: list[Visit], now: datetime) -> list[QueueEntry]:
    ordered = sorted(visits, key=lambda v: (urgency_rank(v.urgency), v.checked_in_at or now))
    entries = []
    for position, visit in enumerate(ordered, start=1):
        waited = now - (visit.checked_in_at or now)
        max_wait = LEVELS[visit.urgency].max_wait
        entries.append(QueueEntry(visit, position, waited, max_wait, waited > max_wait))
    return entries


def _waiting() -> Q:
    return Q(status=VisitStatus.CHECKED_IN)


def queue_for_physician(*, physician: User, now: datetime | None = None) -> list[QueueEntry]:
    """Checked-in patients the physician serves: by urgency level, then time waited."""
    now = now or timezone.now()
    visits = visits_visible_to(physician).filter(_waiting()).select_related("intake")
    return _entries(list(visits), now)


@dataclass(frozen=True)
class PassedOver:
    """A waiting visit that admitting another one first would jump."""

    entry: QueueEntry
    more_urgent: bool

    @property
    def why(self) -> str:
        """Why they come first: their level, minutes past their maximum wait, or both."""
        parts = []
        if self.more_urgent:
            parts.append(self.entry.visit.get_urgency_display())
        if self.entry.overdue:
            parts.append(f"waiting {self.entry.overdue_minutes} min past the limit")
        return " and ".join(parts)


def queue_passed_over(
    *, visit: Visit, physician: User, now: datetime | None = None
) -> list[PassedOver]:
    """Visits ahead of ``visit`` in the physician's queue that are more urgent or overdue.

    Admitting ``visit`` first needs a reason. A visit ahead at the same level that is still
    within its maximum wait does not count: taking the next of equals is ordinary.
    """
    entries = queue_for_physician(physician=physician, now=now)
    position = next((i for i, e in enumerate(entries) if e.visit.pk == visit.pk), None)
    if position is None:
        return []
    level = entries[position].visit.urgency
    passed = []
    for entry in entries[:position]:
        more_urgent = is_more_urgent(entry.visit.urgency, level)
        if more_urgent or entry.overdue:
            passed.append(PassedOver(entry, more_urgent))
    return passed


def queue_board(*, now: datetime | None = None) -> dict[str, list[QueueEntry]]:
    """Every queue for administrators: one per physician, plus the on-demand queue."""
    now = now or timezone.now()
    visits = Visit.objects.filter(_waiting()).select_related("patient", "physician", "intake")
    by_queue: dict[str, list[Visit]] = {}
    for visit in visits:
        key = visit.physician.display_name if visit.physician else "First available"
        by_queue.setdefault(key, []).append(visit)
    return {key: _entries(group, now) for key, group in sorted(by_queue.items())}


@dataclass(frozen=True)
class QueueStats:
    waiting: int
    overdue: int
    average_wait_minutes: int
    longest_wait_minutes: int
    no_shows_today: int
    in_consult: int


def queue_stats(*, board: dict[str, list[QueueEntry]], now: datetime | None = None) -> QueueStats:
    """Waiting times, overdue visits and no-shows at a glance."""
    now = now or timezone.now()
    entries = [entry for queue in board.values() for entry in queue]
    waits = [entry.waited_minutes for entry in entries]
    start_of_day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return QueueStats(
        waiting=len(entries),
        overdue=sum(entry.overdue for entry in entries),
        average_wait_minutes=(sum(waits) // len(waits)) if waits else 0,
        longest_wait_minutes=max(waits, default=0),
        no_shows_today=Visit.objects.filter(
            status=VisitStatus.NO_SHOW, scheduled_start__gte=start_of_day
        ).count(),
        in_consult=Visit.objects.filter(status=VisitStatus.IN_CONSULT).count(),
    )


@dataclass(frozen=True)
class WaitingPlace:
    position: int
    ahead: int
    estimated_wait_minutes: int


def waiting_place(*, visit: Visit, now: datetime | None = None) -> WaitingPlace | None:
    """The patient's place in their queue and a rough wait estimate; None if not waiting."""
    if visit.status != VisitStatus.CHECKED_IN:
        return None
    now = now or timezone.now()
    same_queue = Visit.objects.filter(_waiting())
    if visit.physician_id:
        same_queue = same_queue.filter(physician_id=visit.physician_id)
    else:
        same_queue = same_queue.filter(physician__isnull=True, kind=Visit.Kind.ON_DEMAND)
    entries = _entries(list(same_queue), now)
    for entry in entries:
        if entry.visit.pk == visit.pk:
            ahead = entry.position - 1
            # Each visit ahead takes roughly one slot length.
            minutes = sum(e.visit.duration_minutes for e in entries[:ahead])
            return WaitingPlace(entry.position, ahead, minutes)
    return None
