"""Reads for accounts (activation links) and the audit log."""

from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.db.models import QuerySet
from django.utils.http import urlsafe_base64_decode

from telehealth.models import AuditEvent, User


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


def record_openers_for_patient(*, patient: User) -> QuerySet:
    """Who read this patient's record (staff reads only), for the patient's own view."""
    return (
        AuditEvent.objects.filter(patient=patient, action__in=["read", "export"])
        .exclude(actor=patient)
        .select_related("actor")
    )
