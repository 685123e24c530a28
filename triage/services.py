"""Writes for intake and urgency: the one service every source of urgency goes through."""

from django.db import transaction

from consults.models import Visit
from consults.urgency import RED_FLAGS, is_more_urgent, level_for_red_flags
from telehealth.models import User
from triage.models import Intake, UrgencyChange
from triage.realtime import queue_changed


class TriageError(Exception):
    """A triage request that cannot be carried out; the message is shown to the user."""


def intake_record(
    *,
    visit: Visit,
    reason: str,
    symptoms: str = "",
    symptom_duration: str = "",
    red_flags: list[str] | None = None,
    medicines: str = "",
    allergies: str = "",
) -> Intake:
    """Store the intake answers and set the visit's urgency from its red flags."""
    flags = sorted(set(red_flags or []))
    unknown = [flag for flag in flags if flag not in RED_FLAGS]
    if unknown:
        raise TriageError(f"Unknown red flag: {', '.join(unknown)}")
    intake = Intake.objects.create(
        visit=visit,
        reason=reason,
        symptoms=symptoms,
        symptom_duration=symptom_duration,
        red_flags=flags,
        medicines=medicines,
        allergies=allergies,
    )
    level, why = level_for_red_flags(flags)
    _apply(visit=visit, level=level, reason=why, source=UrgencyChange.Source.INTAKE, actor=None)
    return intake


def visit_urgency_raise(
    *, visit: Visit, level: str, reason: str, source: str, actor: User | None = None
) -> bool:
    """Raise the visit's urgency to ``level`` if that is more urgent; return whether it changed.

    Photo triage and live transcript alerts call this: they may raise urgency, never lower it.
    """
    with transaction.atomic():
        locked = Visit.objects.select_for_update().get(pk=visit.pk)
        if not is_more_urgent(level, locked.urgency):
            return False
        _apply(visit=locked, level=level, reason=reason, source=source, actor=actor)
    visit.urgency, visit.urgency_reason = locked.urgency, locked.urgency_reason
    return True


def visit_urgency_raise_heard(*, visit: Visit, level: str, reason: str) -> bool:
    """A red flag heard in what the patient said in the consult (consults' ``red_flag_heard``
    hook): raise the visit's urgency to ``level``."""
    return visit_urgency_raise(
        visit=visit, level=level, reason=reason, source=UrgencyChange.Source.TRANSCRIPT
    )


def visit_urgency_override(*, visit: Visit, level: str, reason: str, actor: User) -> None:
    """Staff set the urgency in either direction; a reason is required."""
    if not (actor.is_clinic_admin or actor.is_physician):
        raise TriageError("Only clinic staff can change urgency.")
    if not reason.strip():
        raise TriageError("Give a reason for changing the urgency.")
    with transaction.atomic():
        locked = Visit.objects.select_for_update().get(pk=visit.pk)
        _apply(
            visit=locked,
            level=level,
            reason=reason.strip(),
            source=UrgencyChange.Source.STAFF,
            actor=actor,
        )
    visit.urgency, visit.urgency_reason = locked.urgency, locked.urgency_reason


def _apply(*, visit: Visit, level: str, reason: str, source: str, actor: User | None) -> None:
    UrgencyChange.objects.create(
        visit=visit,
        previous=visit.urgency,
        level=level,
        reason=reason[:300],
        source=source,
        actor=actor,
    )
    visit.urgency = level
    visit.urgency_reason = reason[:300]
    visit.save(update_fields=["urgency", "urgency_reason"])
    queue_changed(visit=visit, event="urgency")
