import threading
from datetime import time, timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from consults.booking import services
from consults.models import AvailabilityException, AvailabilityRule, Visit, VisitStatus
from consults.selectors import free_slots, slot_is_free
from consults.urgency import Urgency
from tests.factories import PatientFactory
from tests.test_permissions import login


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


# A second visit the same day asks first; an overlapping one is refused.


def test_a_second_visit_the_same_day_needs_the_patients_confirmation(patient, physician, slots):
    first = services.visit_book(patient=patient, physician=physician, start=slots[0], reason="A")
    with pytest.raises(services.SameDayVisit) as refused:
        services.visit_book(patient=patient, physician=physician, start=slots[1], reason="B")
    assert refused.value.visits == [first]
    assert Visit.objects.filter(patient=patient).count() == 1
    second = services.visit_book(
        patient=patient, physician=physician, start=slots[1], reason="B", same_day_confirmed=True
    )
    assert second.scheduled_start == slots[1]


def test_the_same_day_is_the_patients_own_day(patient, physician):
    # 23:00 and 01:00 UTC fall on one day in Tokyo (08:00 and 10:00), on two days in UTC.
    tomorrow = timezone.localdate() + timedelta(days=1)
    late = timezone.make_aware(timezone.datetime.combine(tomorrow, time(23)))
    early = late + timedelta(hours=2)
    services.visit_book(patient=patient, physician=physician, start=late, reason="A")
    services.visit_book(patient=patient, physician=physician, start=early, reason="B")
    patient.time_zone = "Asia/Tokyo"
    patient.save()
    with pytest.raises(services.SameDayVisit):
        services.visit_book(
            patient=patient, physician=physician, start=late + timedelta(hours=1), reason="C"
        )


def test_an_overlapping_visit_is_refused_even_when_confirmed(patient, physician, other_physician):
    tomorrow = timezone.localdate() + timedelta(days=1)
    other_physician.availability_rules.all().delete()
    AvailabilityRule.objects.create(
        physician=other_physician,
        weekday=tomorrow.weekday(),
        start_time=time(9, 10),
        end_time=time(11),
        slot_minutes=30,
    )
    nine = timezone.make_aware(timezone.datetime.combine(tomorrow, time(9)))
    services.visit_book(patient=patient, physician=physician, start=nine, reason="A")
    with pytest.raises(services.BookingError, match="already have a visit at 09:00") as refused:
        services.visit_book(
            patient=patient,
            physician=other_physician,
            start=nine + timedelta(minutes=10),
            reason="B",
            same_day_confirmed=True,
        )
    assert not isinstance(refused.value, services.SameDayVisit)
    assert Visit.objects.filter(patient=patient).count() == 1


def _post_booking(client, physician, slot, **extra):
    return client.post(
        reverse("consults:book_slot", args=[physician.pk]),
        {"day": slot.date().isoformat(), "slot": slot.isoformat(), "reason": "Itchy rash", **extra},
    )


def test_back_and_book_the_same_slot_again_does_not_book_twice(client, patient, physician, slots):
    login(client, patient)
    first = _post_booking(client, physician, slots[0])
    visit = Visit.objects.get(patient=patient)
    again = _post_booking(client, physician, slots[0])
    assert again.status_code == 302 and again["Location"] == first["Location"]
    assert "already booked" in client.get(again["Location"]).content.decode()
    assert list(Visit.objects.filter(patient=patient)) == [visit]


def test_booking_page_asks_before_a_second_visit_that_day(client, patient, physician, slots):
    login(client, patient)
    _post_booking(client, physician, slots[0])
    page = _post_booking(client, physician, slots[1], red_flags=["severe_pain"])
    html = page.content.decode()
    assert page.status_code == 200 and "You already have a visit that day" in html
    assert f"{slots[0]:%H:%M} with {physician.display_name}" in html
    assert 'name="confirm_same_day" value="1"' in html
    assert f'value="{slots[1].isoformat()}"' in html and 'value="severe_pain"' in html
    assert Visit.objects.filter(patient=patient).count() == 1
    confirmed = _post_booking(
        client, physician, slots[1], red_flags=["severe_pain"], confirm_same_day="1"
    )
    assert confirmed.status_code == 302
    second = Visit.objects.get(patient=patient, scheduled_start=slots[1])
    assert second.urgency == "urgent"


# A slot lost to someone else: gone from the list, not selected, and said so.


def _assert_slot_lost(response, slot):
    html = response.content.decode()
    assert response.status_code == 200
    assert "is no longer available: someone else booked it" in html
    assert f"{slot:%H:%M} on" in html
    assert f'value="{slot.isoformat()}"' not in html  # gone from the list
    assert "checked" not in html.split("<fieldset>")[1].split("</fieldset>")[0]  # none chosen
    assert 'value="Itchy rash"' in html  # what the patient typed is kept


def test_slot_taken_before_submit_is_removed_with_a_clear_message(
    client, patient, other_patient, physician, slots
):
    login(client, patient)
    url = reverse("consults:book_slot", args=[physician.pk])
    page = client.get(url, {"day": slots[0].date().isoformat()}).content.decode()
    assert f'value="{slots[0].isoformat()}"' in page
    services.visit_book(patient=other_patient, physician=physician, start=slots[0], reason="X")
    _assert_slot_lost(_post_booking(client, physician, slots[0]), slots[0])
    assert not Visit.objects.filter(patient=patient).exists()


def test_slot_taken_during_the_booking_itself_is_removed_with_a_clear_message(
    client, monkeypatch, patient, other_patient, physician, slots
):
    real_slot_is_free = services.slot_is_free

    def someone_else_books_first(**kwargs):
        free = real_slot_is_free(**kwargs)
        Visit.objects.create(
            patient=other_patient,
            physician=physician,
            kind=Visit.Kind.SCHEDULED,
            scheduled_start=kwargs["start"],
            reason="X",
        )
        return free

    monkeypatch.setattr(services, "slot_is_free", someone_else_books_first)
    response = _post_booking(login(client, patient), physician, slots[0])
    monkeypatch.undo()
    _assert_slot_lost(response, slots[0])
    assert not Visit.objects.filter(patient=patient).exists()
