"""Writes for the queues: the reason a physician gave for admitting a patient out of turn."""

from consults.models import Visit
from telehealth.audit import audit_record
from telehealth.models import AuditAction, User
from triage.models import QueueSkip
from triage.queue.selectors import PassedOver


def queue_skip_record(
    *, visit: Visit, actor: User, passed_over: list[PassedOver], reason: str
) -> list[QueueSkip]:
    """Keep the physician's reason for admitting ``visit`` before the passed-over patients."""
    reason = reason.strip()[:300]
    skips = QueueSkip.objects.bulk_create(
        QueueSkip(
            visit=visit,
            passed_over=p.entry.visit,
            passed_over_urgency=p.entry.visit.urgency,
            overdue_minutes=p.entry.overdue_minutes,
            reason=reason,
            actor=actor,
        )
        for p in passed_over
    )
    before = ", ".join(f"#{p.entry.visit.pk} ({p.why})" for p in passed_over)
    audit_record(
        actor=actor,
        action=AuditAction.WRITE,
        object_type="queue_skip",
        object_id=visit.pk,
        patient=visit.patient,
        detail=f"Admitted before {before}: {reason}",
    )
    return skips
