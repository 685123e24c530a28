import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from consults import services
from consults.models import AvailabilityException, Visit, VisitStatus
from consults.selectors import free_slots, slot_is_free
from tests.factories import PatientFactory
from triage.urgency import Urgency


def test_patient_books_free_slot_with_intake(patient, physician, slots):
    visit = services.visit_book(
        patient=patient,
        physician=physician,
        start=slots[0],
        reason="Sore throat",
        symptoms="pain swallowing",
        symptom_duration="3 days",
    )
    assert visit.status == VisitStatus.BOOKED
    assert visit.intake.symptom_duration == "3 days"
    assert visit.urgency == Urgency.STANDARD
    assert not slot_is_free(physician=physician, start=slots[0])


def test_red_flag_at_intake_sets_urgency_with_reason(patient, physician, slots):
    visit = services.visit_book(
        patient=patient,
        physician=physician,
        start=slots[0],
        reason="Breathless",
        red_flags=["breathing", "chest_pain"],
    )
    assert visit.urgency == Urgency.IMMEDIATE
    assert "difficulty breathing" in visit.urgency_reason
    assert visit.urgency_changes.get().source == "intake"


def test_booking_taken_slot_is_refused(patient, other_patient, physician, slots):
    services.visit_book(patient=patient, physician=physician, start=slots[0], reason="A")
    with pytest.raises(services.BookingError, match="no longer available"):
        services.visit_book(patient=other_patient, physician=physician, start=slots[0], reason="B")
    assert Visit.objects.filter(scheduled_start=slots[0]).count() == 1


def test_booking_past_slot_is_refused(patient, physician):
    past = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    with pytest.raises(services.BookingError, match="already passed"):
        services.visit_book(patient=patient, physician=physician, start=past, reason="Late")


def test_booking_time_outside_availability_is_refused(patient, physician, slots):
    odd = slots[0] + timedelta(minutes=7)
    with pytest.raises(services.BookingError):
        services.visit_book(patient=patient, physician=physician, start=odd, reason="Odd")


def test_patient_cannot_hold_two_visits_at_once(patient, physician, other_physician, slots):
    services.visit_book(patient=patient, physician=physician, start=slots[0], reason="A")
    with pytest.raises(services.BookingError, match="already have a visit"):
        services.visit_book(patient=patient, physician=other_physician, start=slots[0], reason="B")


def test_unavailable_day_removes_slots(physician, slots):
    day = slots[0].date()
    AvailabilityException.objects.create(physician=physician, date=day, kind="unavailable")
    remaining = free_slots(physician=physician, start_date=day, days=1)
    assert remaining == []


def test_extra_hours_add_slots(physician):
    day = timezone.localdate() + timedelta(days=3)
    physician.availability_rules.all().delete()
    from datetime import time

    AvailabilityException.objects.create(
        physician=physician, date=day, kind="extra", start_time=time(9), end_time=time(10)
    )
    assert len(free_slots(physician=physician, start_date=day, days=1)) == 3


def test_slots_follow_physician_time_zone(physician):
    physician.time_zone = "America/New_York"
    physician.save()
    physician.availability_rules.all().delete()
    from datetime import time

    from consults.models import AvailabilityRule

    for weekday in range(7):
        AvailabilityRule.objects.create(
            physician=physician, weekday=weekday, start_time=time(9), end_time=time(9, 20)
        )
    day = timezone.localdate() + timedelta(days=2)
    (slot,) = free_slots(physician=physician, start_date=day, days=1)
    # 09:00 in New York is 13:00 or 14:00 UTC depending on daylight saving.
    assert slot.astimezone(timezone.get_fixed_timezone(0)).hour in (13, 14)


def test_cancel_frees_the_slot(patient, physician, slots):
    visit = services.visit_book(patient=patient, physician=physician, start=slots[0], reason="A")
    services.visit_cancel(visit=visit, actor=patient)
    assert slot_is_free(physician=physician, start=slots[0])


def test_reschedule_moves_to_another_free_slot(patient, physician, slots):
    visit = services.visit_book(patient=patient, physician=physician, start=slots[0], reason="A")
    services.visit_reschedule(visit=visit, actor=patient, start=slots[1])
    visit.refresh_from_db()
    assert visit.scheduled_start == slots[1]
    assert slot_is_free(physician=physician, start=slots[0])


def test_check_in_opens_thirty_minutes_before(patient, physician, slots):
    visit = services.visit_book(patient=patient, physician=physician, start=slots[0], reason="A")
    with pytest.raises(services.BookingError, match="30 minutes"):
        services.visit_check_in(visit=visit, actor=patient, now=slots[0] - timedelta(hours=1))
    services.visit_check_in(visit=visit, actor=patient, now=slots[0] - timedelta(minutes=10))
    assert visit.status == VisitStatus.CHECKED_IN


def test_on_demand_join_is_checked_in_once(patient):
    visit = services.visit_join_on_demand(patient=patient, reason="Rash")
    assert visit.status == VisitStatus.CHECKED_IN and visit.physician is None
    with pytest.raises(services.BookingError, match="already waiting"):
        services.visit_join_on_demand(patient=patient, reason="Rash again")


def test_physician_cannot_book_as_patient(physician, slots):
    with pytest.raises(services.BookingError, match="Only patients"):
        services.visit_book(patient=physician, physician=physician, start=slots[0], reason="x")


@pytest.mark.django_db(transaction=True)
def test_two_patients_racing_for_one_slot_leave_one_booking(physician):
    tomorrow = timezone.localdate() + timedelta(days=1)
    slot = free_slots(physician=physician, start_date=tomorrow, days=1)[0]
    racers = [PatientFactory() for _ in range(4)]
    barrier = threading.Barrier(len(racers))
    outcomes: list[str] = []

    def book(patient):
        try:
            barrier.wait()
            services.visit_book(patient=patient, physician=physician, start=slot, reason="Race")
            outcomes.append("booked")
        except services.BookingError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=book, args=(p,)) for p in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["booked", "refused", "refused", "refused"]
    assert Visit.objects.filter(physician=physician, scheduled_start=slot).count() == 1
