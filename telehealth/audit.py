"""The one place that writes audit events for reads and writes of health data."""

from django.http import HttpRequest

from telehealth.models import AuditAction, AuditEvent, User


def _client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    # REMOTE_ADDR only: X-Forwarded-For is trusted only behind a proxy that sets it (production).
    return request.META.get("REMOTE_ADDR") or None


def audit_record(
    *,
    actor: User | None,
    action: str,
    object_type: str,
    object_id: object = "",
    patient: User | None = None,
    request: HttpRequest | None = None,
    detail: str = "",
) -> AuditEvent:
    """Append one audit event."""
    if actor is not None and not actor.is_authenticated:
        actor = None
    return AuditEvent.objects.create(
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        patient=patient,
        ip_address=_client_ip(request),
        user_agent=(request.META.get("HTTP_USER_AGENT", "")[:256] if request else ""),
        path=(request.get_full_path()[:512] if request else ""),
        detail=detail[:256],
    )


def audit_read(*, request: HttpRequest, object_type: str, object_id: object, patient: User):
    """Record that the requesting user read a patient's health data."""
    return audit_record(
        actor=request.user,
        action=AuditAction.READ,
        object_type=object_type,
        object_id=object_id,
        patient=patient,
        request=request,
    )


def audit_denied(*, request: HttpRequest, object_type: str, object_id: object, detail: str = ""):
    """Record a refused attempt to reach health data (wrong role, someone else's record)."""
    return audit_record(
        actor=request.user,
        action=AuditAction.DENIED,
        object_type=object_type,
        object_id=object_id,
        request=request,
        detail=detail,
    )
