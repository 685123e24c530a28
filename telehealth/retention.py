"""Retention of health data: periods per kind (``settings.RETENTION``), the daily purge, and a
patient's erasure request.

The core knows no feature's models. Each app declares, in its ``AppConfig.ready()``, the kinds of
health data it keeps (``retention_kind_register``: what, why, and the function that removes that
kind's rows and private files within a set of visits), and the app that owns visits declares the
scope (``retention_scope_register``: which visits are closed, a patient's visits, the report of
what an erasure keeps). This module runs them: the kinds older than their period (the daily
task), or all of a patient's (an erasure). Visits in progress are never touched. Files go first,
then rows: a crash in between leaves rows whose files are already gone, which the next run
removes, and never a file that nothing points to.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from telehealth.audit import audit_record
from telehealth.models import AuditAction, ErasureRequest, User
from telehealth.private_media import private_delete

BATCH = 500
# What a visit's free-text reason becomes once its intake is removed.
REMOVED_REASON = "(removed)"


@dataclass(frozen=True)
class Policy:
    label: str
    why: str


@dataclass
class Removed:
    """What one kind's purge removed: items (rows), files, and items per patient id."""

    kind: str
    items: int = 0
    files: int = 0
    by_patient: Counter = field(default_factory=Counter)


class ErasureBlocked(Exception):
    """The request cannot be processed yet; the message says why."""


# A kind's purge: remove its items within these visits, older than ``before`` (None: all).
Purge = Callable[[QuerySet, "datetime | None"], Removed]


@dataclass(frozen=True)
class RetentionScope:
    """The visits retention works on, declared by the app that owns visits.

    ``closed()``: every visit no longer in progress; ``of_patient(patient)``: the patient's
    closed visits; ``active_count(patient)``: their visits booked or in progress; ``kept(patient,
    visits)``: the erasure report's "kept" rows for what the kinds' purges leave.
    """

    closed: Callable[[], QuerySet]
    of_patient: Callable[[User], QuerySet]
    active_count: Callable[[User], int]
    kept: Callable[[User, QuerySet], list[dict]]


# --- The registry (filled in each app's AppConfig.ready()) ---------------------------------

# Every kind of settings.RETENTION, in the order the daily purge runs them (``order`` as
# registered): what it is and why it is kept that long.
POLICY: dict[str, Policy] = {
    "audit_log": Policy(
        "Audit log (who opened or changed your data, and when)",
        "Append-only proof of every access, kept for security and accountability; it holds "
        "ids, never health data.",
    ),
}
# The kinds the application removes, in the same order.
PURGES: dict[str, Purge] = {}
# Kinds a patient's erasure leaves in place (the signed record); the audit log is never purged.
ERASURE_SPARES: set[str] = set()
_ORDER: dict[str, int] = {"audit_log": 1000}
_SCOPE: list[RetentionScope] = []


def retention_kind_register(
    kind: str, *, order: int, policy: Policy, purge: Purge, erasable: bool = True
) -> None:
    """Declare a kind of health data: ``order`` places it in the purge (lower runs first)."""
    if kind in PURGES:
        raise RuntimeError(f"retention kind {kind!r} is registered twice")
    _ORDER[kind] = order
    registered = {**POLICY, kind: policy}
    POLICY.clear()
    POLICY.update(sorted(registered.items(), key=lambda item: _ORDER[item[0]]))
    purges = {**PURGES, kind: purge}
    PURGES.clear()
    PURGES.update(sorted(purges.items(), key=lambda item: _ORDER[item[0]]))
    if not erasable:
        ERASURE_SPARES.add(kind)


def retention_scope_register(scope: RetentionScope) -> None:
    """Declare the visits retention works on (once, by the app that owns visits)."""
    if _SCOPE:
        raise RuntimeError("the retention scope is registered twice")
    _SCOPE.append(scope)


def _scope() -> RetentionScope:
    if not _SCOPE:
        raise RuntimeError("no app registered the retention scope (consults.apps)")
    return _SCOPE[0]


def erasable_kinds() -> list[str]:
    """What a patient's erasure removes: every kind but the signed record."""
    return [kind for kind in PURGES if kind not in ERASURE_SPARES]


# --- Reads ---------------------------------------------------------------------------------


def retention_policy() -> list[dict]:
    """The retention table shown to patients, shortest period first: what, how long, why."""
    days = {kind: settings.RETENTION.get(kind) for kind in POLICY}
    order = sorted(POLICY, key=lambda kind: (days[kind] is None, days[kind] or 0))
    return [
        {
            "kind": kind,
            "label": POLICY[kind].label,
            "period": period_text(days[kind]),
            "why": POLICY[kind].why,
        }
        for kind in order
    ]


def period_text(days: int | None) -> str:
    if days is None:
        return "kept, not deleted by the application"
    if days % 365 == 0:
        years = days // 365
        return f"{years} year{'s' if years > 1 else ''}"
    return f"{days} days"


def erasure_requests_visible_to(*, user: User) -> QuerySet[ErasureRequest]:
    """Administrators see every request, a patient only their own, anyone else none."""
    requests = ErasureRequest.objects.select_related("patient", "processed_by")
    if user.is_clinic_admin:
        return requests
    if user.is_patient:
        return requests.filter(patient=user)
    return requests.none()


def active_visit_count(*, patient: User) -> int:
    return _scope().active_count(patient)


# --- What each kind's purge uses -----------------------------------------------------------


def purge_rows(
    kind: str,
    items: QuerySet,
    *,
    patient: str,
    files: tuple[str, ...] = (),
    remove: Callable[[QuerySet], object] | None = None,
) -> Removed:
    """Delete the files of ``items`` batch by batch, then ``remove`` their rows (default: delete).

    ``remove`` must take each row out of ``items`` (delete it, or clear what matched).
    """
    result = Removed(kind)
    seen: set[int] = set()
    while True:
        rows = list(items.order_by("pk").values_list("pk", patient, *files)[:BATCH])
        if not rows:
            return result
        pks = [row[0] for row in rows]
        if seen.intersection(pks):
            raise RuntimeError(f"retention of {kind} did not remove its rows")
        seen.update(pks)
        for _pk, patient_id, *paths in rows:
            for path in paths:
                if path:
                    private_delete(path)
                    result.files += 1
            result.by_patient[patient_id] += 1
        batch = items.model.objects.filter(pk__in=pks)
        with transaction.atomic():
            if remove is None:
                batch.delete()
            else:
                remove(batch)
        result.items += len(rows)


def years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _summary(results: list[Removed]) -> str:
    parts = [
        f"{r.kind} {r.items}" + (f" ({r.files} files)" if r.files else "")
        for r in results
        if r.items
    ]
    return "; ".join(parts)


# --- The daily purge -----------------------------------------------------------------------


def retention_enforce(*, now: datetime | None = None) -> dict[str, Removed]:
    """Remove every item older than its kind's period; idempotent.

    Records one audit event per patient concerned and one for the run, with counts only.
    """
    now = now or timezone.now()
    visits = _scope().closed()
    results: dict[str, Removed] = {}
    for kind, purge in PURGES.items():
        days = settings.RETENTION.get(kind)
        if days is not None:
            results[kind] = purge(visits, now - timedelta(days=days))
    _audit_purge(list(results.values()))
    return results


def _audit_purge(results: list[Removed]) -> None:
    patient_ids = set().union(*(r.by_patient for r in results))
    patients = User.objects.in_bulk(patient_ids)
    for patient_id in sorted(patient_ids):
        mine = [Removed(r.kind, items=r.by_patient[patient_id]) for r in results]
        audit_record(
            actor=None,
            action=AuditAction.DELETE,
            object_type="retention",
            patient=patients.get(patient_id),
            detail=f"expired: {_summary(mine)}",
        )
    if patient_ids:
        audit_record(
            actor=None,
            action=AuditAction.DELETE,
            object_type="retention",
            detail=f"expired: {_summary(results)}",
        )


# --- Erasure requests ----------------------------------------------------------------------


def erasure_request_file(*, patient: User) -> ErasureRequest:
    """File a patient's erasure request; a second one while the first is pending returns it."""
    if not patient.is_patient:
        raise PermissionError("Only patients file erasure requests")
    with transaction.atomic():
        pending = ErasureRequest.objects.filter(
            patient=patient, status=ErasureRequest.Status.PENDING
        ).first()
        if pending is not None:
            return pending
        erasure = ErasureRequest.objects.create(patient=patient)
        audit_record(
            actor=patient,
            action=AuditAction.WRITE,
            object_type="erasure_request",
            object_id=erasure.pk,
            patient=patient,
            detail="filed",
        )
    return erasure


def erasure_process(*, erasure: ErasureRequest, admin: User) -> ErasureRequest:
    """Remove what policy allows of the patient's data and store the report of what was kept.

    Refused while the patient has a visit booked or in progress (its intake and photos are in
    use). Processing a request already done changes nothing.
    """
    if not admin.is_clinic_admin:
        raise PermissionError("Only clinic administrators process erasure requests")
    scope = _scope()
    with transaction.atomic():
        erasure = ErasureRequest.objects.select_for_update().get(pk=erasure.pk)
        if erasure.status != ErasureRequest.Status.PENDING:
            return erasure
        patient = erasure.patient
        active = scope.active_count(patient)
        if active:
            raise ErasureBlocked(
                f"The patient has {active} visit{'s' if active > 1 else ''} booked or in "
                "progress; process the request once they have ended or been cancelled."
            )
        visits = scope.of_patient(patient)
        removed = [PURGES[kind](visits, None) for kind in erasable_kinds()]
        # Before the report, which counts the audit events kept (this one included).
        audit_record(
            actor=admin,
            action=AuditAction.DELETE,
            object_type="erasure_request",
            object_id=erasure.pk,
            patient=patient,
            detail=f"erased: {_summary(removed)}",
        )
        erasure.report = {
            "removed": [
                {"kind": r.kind, "label": POLICY[r.kind].label, "items": r.items, "files": r.files}
                for r in removed
            ],
            "kept": scope.kept(patient, visits),
        }
        erasure.status = ErasureRequest.Status.DONE
        erasure.processed_at = timezone.now()
        erasure.processed_by = admin
        erasure.save()
    return erasure
