"""Create demo accounts and a few waiting visits. Safe to run again: nothing is duplicated.

In triage, the top layer, because it books visits (consults) with intake answers (triage)."""

from datetime import time, timedelta

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from consults.booking.services import visit_join_on_demand
from consults.models import AvailabilityRule, Visit, VisitStatus
from telehealth.models import Role, User
from triage.services import intake_record

DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - printed demo credentials, local only

ACCOUNTS = [
    ("admin@demo.clinic", Role.ADMIN, "Ada", "Admin", "UTC", {}),
    (
        "dr.house@demo.clinic",
        Role.PHYSICIAN,
        "Gregory",
        "House",
        "Europe/London",
        {"specialty": "General practice", "serves_on_demand": True},
    ),
    (
        "dr.grey@demo.clinic",
        Role.PHYSICIAN,
        "Meredith",
        "Grey",
        "America/New_York",
        {"specialty": "Dermatology"},
    ),
    ("patient@demo.clinic", Role.PATIENT, "Pat", "Patient", "Europe/Paris", {}),
]
WAITING = [
    ("sam.waiting@demo.clinic", "Sam", "Waiting", "Rash on forearm for a week", []),
    (
        "alex.urgent@demo.clinic",
        "Alex",
        "Urgent",
        "Chest tightness since this morning",
        ["chest_pain"],
    ),
    ("kim.mole@demo.clinic", "Kim", "Mole", "Mole that changed colour", []),
]


class Command(BaseCommand):
    help = "Create demo accounts (printed) and a few patients waiting in the on-demand queue."

    @transaction.atomic
    def handle(self, *args, **options):
        users = {}
        for email, role, first, last, tz, extra in ACCOUNTS:
            users[email] = self._user(email, role, first, last, tz, extra)
        admin = users["admin@demo.clinic"]
        admin.is_staff = admin.is_superuser = True
        admin.save(update_fields=["is_staff", "is_superuser"])
        for physician in User.objects.filter(role=Role.PHYSICIAN, email__endswith="@demo.clinic"):
            if not physician.availability_rules.exists():
                for weekday in range(7):
                    AvailabilityRule.objects.create(
                        physician=physician,
                        weekday=weekday,
                        start_time=time(7, 0),
                        end_time=time(21, 0),
                        slot_minutes=20,
                    )
        for offset, (email, first, last, reason, flags) in enumerate(WAITING):
            patient = self._user(email, Role.PATIENT, first, last, "Europe/London", {})
            if Visit.objects.filter(patient=patient, status=VisitStatus.CHECKED_IN).exists():
                continue
            visit = visit_join_on_demand(patient=patient, reason=reason)
            visit.checked_in_at = timezone.now() - timedelta(minutes=5 + 25 * offset)
            visit.save(update_fields=["checked_in_at"])
            if flags:
                visit.intake.delete()
                intake_record(visit=visit, reason=reason, red_flags=flags)
        self.stdout.write(self.style.SUCCESS(f"Demo accounts (password for all: {DEMO_PASSWORD}):"))
        for email, role, *_ in ACCOUNTS:
            self.stdout.write(f"  {role:<10} {email}")

    def _user(self, email, role, first, last, tz, extra) -> User:
        user = User.objects.filter(email=email).first()
        if user is None:
            user = User.objects.create_user(
                email,
                DEMO_PASSWORD,
                role=role,
                first_name=first,
                last_name=last,
                time_zone=tz,
                **extra,
            )
        return user
