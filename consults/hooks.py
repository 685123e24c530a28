"""Hooks: what the visit layer tells, or asks of, the layer above it (triage) without importing it.

consults sits below triage (docs/architecture.md): triage reads visits, consults never imports
triage. Where a visit's life touches triage's side — booking records the intake answers, admitting
asks whom the patient would pass in the queue, a red flag heard in the transcript raises the
urgency, every change is pushed to the queue pages — consults calls one of the functions below,
and triage registers the function behind each hook in ``TriageConfig.ready()``. Each hook has
exactly one function; calling a hook that nothing registered is an error, never a silent no-op.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

HOOKS = frozenset(
    {
        "visit_changed",
        "intake_record",
        "queue_passed_over",
        "queue_skip_record",
        "waiting_place",
        "red_flag_heard",
    }
)
_registered: dict[str, Callable[..., Any]] = {}


def hook_register(name: str, function: Callable[..., Any]) -> None:
    """Put ``function`` behind the hook ``name`` (once; the same function again is a no-op)."""
    if name not in HOOKS:
        raise ValueError(f"There is no hook named {name!r}.")
    if _registered.get(name, function) is not function:
        raise RuntimeError(f"The hook {name!r} already has a function.")
    _registered[name] = function


def _call(name: str, **kwargs: Any) -> Any:
    try:
        function = _registered[name]
    except KeyError:
        raise RuntimeError(
            f"No app registered the {name!r} hook: is triage in INSTALLED_APPS?"
        ) from None
    return function(**kwargs)


def visit_changed(*, visit, event: str, previous_physician_id: int | None = None) -> None:
    """Tell every page that shows this visit in a queue that it changed (after the commit)."""
    _call("visit_changed", visit=visit, event=event, previous_physician_id=previous_physician_id)


def intake_record(
    *,
    visit,
    reason: str,
    symptoms: str,
    symptom_duration: str,
    red_flags: list[str] | None,
    medicines: str = "",
    allergies: str = "",
) -> None:
    """Store the patient's intake answers for a visit being booked, in the booking's transaction
    (an error undoes the booking), and set its urgency from the red flags."""
    _call(
        "intake_record",
        visit=visit,
        reason=reason,
        symptoms=symptoms,
        symptom_duration=symptom_duration,
        red_flags=red_flags,
        medicines=medicines,
        allergies=allergies,
    )


def queue_passed_over(*, visit, physician) -> list:
    """The waiting patients that admitting ``visit`` now would pass over (more urgent, overdue)."""
    return _call("queue_passed_over", visit=visit, physician=physician)


def queue_skip_record(*, visit, actor, passed_over: list, reason: str) -> None:
    """Keep the physician's reason for admitting ``visit`` before ``passed_over``."""
    _call("queue_skip_record", visit=visit, actor=actor, passed_over=passed_over, reason=reason)


def waiting_place(*, visit):
    """The patient's place in their queue and a rough wait, or None when not waiting."""
    return _call("waiting_place", visit=visit)


def red_flag_heard(*, visit, level: str, reason: str) -> None:
    """A red flag heard in what the patient said: raise the visit's urgency to ``level``."""
    _call("red_flag_heard", visit=visit, level=level, reason=reason)
