"""Writes for accounts."""

from django.db import transaction

from telehealth.models import Role, User


@transaction.atomic
def patient_register(*, form) -> User:
    """Create a patient account from a validated signup form."""
    user = form.save(commit=False)
    user.email = user.email.lower()
    user.role = Role.PATIENT
    user.save()
    return user
