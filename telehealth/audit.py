"""The one place that writes audit events for reads and writes of health data, and the plain words
each kind of object is described with to the patient ("Who opened my record").

A read repeated by the same person, of the same object, from the same place within
``AUDIT_REPEAT_WINDOW`` of its first event (a page that polls) is counted on that event
(``count``, ``last_seen_at``) instead of writing another: a different object, patient, person,
address, browser or page, or the end of the window, always makes a new event.
"""

from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime

from django.conf import settings
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone

from telehealth.models import AuditAction, AuditEvent, User

# object_type -> (verb, what), in the words of the patient's page: "<who> <verb> <what>", where
# "{visit}" names the visit the object belongs to ("your visit of 3 December"). Every object_type
# written anywhere must be here (tests/test_audit.py looks for them in the code).
OBJECT_WORDS: dict[str, tuple[str, str]] = {
    # The visit
    "visit": ("opened", "the details of {visit}"),
    "consult": ("opened", "the consult room of {visit}"),
    "chat": ("read", "the chat of {visit}"),
    "attachment": ("opened", "a file sent in the chat of {visit}"),
    "recording": ("opened", "a recording of {visit}"),
    "audio": ("listened to", "a recording of {visit}"),
    "transcript": ("read", "the transcript of {visit}"),
    "transcript_segment": ("read", "a line of the transcript of {visit}"),
    "note": ("read", "your clinical note from {visit}"),
    "note_fhir": ("opened", "your clinical note from {visit}, as a file for other health systems"),
    "summary": ("read", "the after-visit summary of {visit}"),
    # Triage
    "intake": ("read", "your answers to the questions before {visit}"),
    "urgency_change": ("read", "how the urgency of {visit} was set"),
    "queue_entry": ("saw", "{visit} on the waiting list"),
    "queue_skip": ("read", "why one patient was seen before another in the queue"),
    "photos": ("looked at", "your photos from {visit}"),
    "photo": ("looked at", "a photo from {visit}"),
    "photo_photo": ("looked at", "a photo from {visit}"),
    "photo_heatmap": ("looked at", "the AI heat map of a photo from {visit}"),
    "photo_mask": ("looked at", "the AI wound outline on a photo from {visit}"),
    "photo_scale": ("looked at", "the scale marked on a photo from {visit}"),
    # The account
    "erasure_request": ("opened", "your request to erase your data"),
    "retention": ("removed", "data whose keeping period had ended"),
    "two_factor_device": ("set up", "a two-step sign-in app"),
    "page": ("opened", "a page"),
}
UNKNOWN_WORDS = ("opened", "part of your record")

# object ids (as stored, strings) -> when the visit each belongs to took place
VisitDates = Callable[[Collection[str]], Mapping[str, datetime]]
_visit_dates: dict[str, VisitDates] = {}


def audit_visit_dates_register(*, object_types: Iterable[str], visit_dates: VisitDates) -> None:
    """Say, for these object types, when the visit of each object was; the app that owns them
    calls this from its AppConfig.ready() (the core imports no app)."""
    for object_type in object_types:
        _visit_dates[object_type] = visit_dates


def audit_visit_dates(keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], datetime]:
    """When the visit of each (object_type, object_id) was, where its owner can say."""
    ids: dict[str, set[str]] = {}
    for object_type, object_id in keys:
        if object_type in _visit_dates:
            ids.setdefault(object_type, set()).add(object_id)
    found = {}
    for object_type, wanted in ids.items():
        for object_id, when in _visit_dates[object_type](wanted).items():
            found[object_type, object_id] = when
    return found


def _client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    # REMOTE_ADDR only: X-Forwarded-For is trusted only behind a proxy that sets it (production).
    return request.META.get("REMOTE_ADDR") or None


def _actor(user: User | None) -> User | None:
    return user if user is not None and user.is_authenticated else None


def _where(request: HttpRequest | None) -> dict:
    return {
        "ip_address": _client_ip(request),
        "user_agent": (request.META.get("HTTP_USER_AGENT", "")[:256] if request else ""),
        "path": (request.get_full_path()[:512] if request else ""),
    }


def _reads_record(
    *,
    actor: User | None,
    object_type: str,
    reads: Iterable[tuple[object, int | None]],
    request: HttpRequest | None,
    detail: str = "",
) -> dict[tuple[str, int | None], int]:
    """Record reads of (object id, patient id) pairs: a repeat counts on its event, the rest are
    new events. Returns the event id of each pair."""
    shared = {
        "actor": _actor(actor),
        "action": AuditAction.READ,
        "object_type": object_type,
        "detail": detail[:256],
        **_where(request),
    }
    wanted = {(str(object_id), patient_id) for object_id, patient_id in reads}
    now = timezone.now()
    recent = (
        AuditEvent.objects.filter(
            **shared,
            object_id__in={object_id for object_id, _ in wanted},
            created_at__gte=now - settings.AUDIT_REPEAT_WINDOW,
        )
        .order_by("created_at", "id")
        .values_list("pk", "object_id", "patient_id")
    )
    # The latest event of each pair, should a race have written two.
    repeats = {(o, p): pk for pk, o, p in recent if (o, p) in wanted}
    if repeats:
        AuditEvent.objects.filter(pk__in=repeats.values()).update(
            count=F("count") + 1, last_seen_at=now
        )
    created = AuditEvent.objects.bulk_create(
        AuditEvent(**shared, object_id=object_id, patient_id=patient_id)
        for object_id, patient_id in sorted(wanted - repeats.keys(), key=str)
    )
    return repeats | {(event.object_id, event.patient_id): event.pk for event in created}


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
    """Append one audit event (a repeated read counts on the event it repeats)."""
    if action == AuditAction.READ:
        key = (str(object_id), patient.pk if patient else None)
        ids = _reads_record(
            actor=actor, object_type=object_type, reads=[key], request=request, detail=detail
        )
        return AuditEvent.objects.get(pk=ids[key])
    return AuditEvent.objects.create(
        actor=_actor(actor),
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        patient=patient,
        detail=detail[:256],
        **_where(request),
    )


def audit_read(*, request: HttpRequest, object_type: str, object_id: object, patient: User):
    """Record that the requesting user read a patient's health data."""
    _reads_record(
        actor=request.user,
        object_type=object_type,
        reads=[(object_id, patient.pk)],
        request=request,
    )


def audit_reads(
    *,
    request: HttpRequest,
    object_type: str,
    reads: Iterable[tuple[object, int | None]],
    detail: str = "",
) -> None:
    """Record that the requesting user read these (object id, patient id) pairs, in one go (a
    list page: the queue, an admin change list)."""
    _reads_record(
        actor=request.user, object_type=object_type, reads=reads, request=request, detail=detail
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
