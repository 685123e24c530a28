"""Reads for the audit log."""

from django.db.models import QuerySet

from telehealth.models import AuditEvent, User


def audit_events(*, patient_id: int | None = None, actor_id: int | None = None) -> QuerySet:
    """Audit events, newest first, optionally for one patient and/or one user."""
    events = AuditEvent.objects.select_related("actor", "patient")
    if patient_id:
        events = events.filter(patient_id=patient_id)
    if actor_id:
        events = events.filter(actor_id=actor_id)
    return events


def record_openers_for_patient(*, patient: User) -> QuerySet:
    """Who read this patient's record (staff reads only), for the patient's own view."""
    return (
        AuditEvent.objects.filter(patient=patient, action__in=["read", "export"])
        .exclude(actor=patient)
        .select_related("actor")
    )
