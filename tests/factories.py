from datetime import time

import factory

from consults.models import AvailabilityRule
from telehealth.models import Role, User

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.org")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    role = Role.PATIENT
    time_zone = "UTC"
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class PatientFactory(UserFactory):
    role = Role.PATIENT


class PhysicianFactory(UserFactory):
    role = Role.PHYSICIAN
    specialty = "General practice"


class AdminFactory(UserFactory):
    role = Role.ADMIN
    is_staff = True


def open_every_day(physician: User, start: time = time(0, 0), end: time = time(23, 40)) -> None:
    """Weekly hours covering the whole day, so tests never depend on the clock."""
    for weekday in range(7):
        AvailabilityRule.objects.create(
            physician=physician, weekday=weekday, start_time=start, end_time=end, slot_minutes=20
        )


def admitted_visit(patient: User, physician: User, reason: str = "Rash"):
    """An on-demand visit the physician has admitted: both are in the consult room."""
    from consults.booking.services import visit_join_on_demand
    from consults.room.services import visit_admit

    visit = visit_join_on_demand(patient=patient, reason=reason)
    return visit_admit(visit=visit, physician=physician)
