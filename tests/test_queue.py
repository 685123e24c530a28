from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from consults.booking import services as booking_services
from consults.room import services as room_services
from consults.urgency import Urgency
from telehealth.models import AuditEvent
from triage import services
from triage.models import QueueSkip
from triage.queue.selectors import queue_board, queue_for_physician, queue_stats, waiting_place


def _wait(visit, minutes):
    visit.checked_in_at = timezone.now() - timedelta(minutes=minutes)
    visit.save(update_fields=["checked_in_at"])
    return visit


@pytest.fixture
def three_waiting(db, physician):
    from tests.factories import PatientFactory

    calm = _wait(booking_services.visit_join_on_demand(patient=PatientFactory(), reason="calm"), 50)
    early = _wait(booking_services.visit_join_on_demand(patient=PatientFactory(), reason="e"), 30)
    flagged = booking_services.visit_join_on_demand(
        patient=PatientFactory(), reason="chest", red_flags=["chest_pain"]
    )
    return calm, early, flagged


def test_queue_orders_by_urgency_then_time_waited(physician, three_waiting):
    calm, early, flagged = three_waiting
    order = [entry.visit for entry in queue_for_physician(physician=physician)]
    assert order == [flagged, calm, early]


def test_visit_past_its_maximum_wait_is_overdue(physician, three_waiting):
    calm, early, flagged = three_waiting
    _wait(flagged, 11)  # very urgent allows 10 minutes
    entries = {e.visit.pk: e for e in queue_for_physician(physician=physician)}
    assert entries[flagged.pk].overdue
    assert not entries[calm.pk].overdue


def test_raise_never_lowers_urgency(physician, three_waiting):
    _calm, _early, flagged = three_waiting
    changed = services.visit_urgency_raise(
        visit=flagged, level=Urgency.STANDARD, reason="photo benign", source="photo"
    )
    assert not changed and flagged.urgency == Urgency.VERY_URGENT
    changed = services.visit_urgency_raise(
        visit=flagged, level=Urgency.IMMEDIATE, reason="possible anaphylaxis", source="transcript"
    )
    flagged.refresh_from_db()
    assert changed and flagged.urgency == Urgency.IMMEDIATE
    assert flagged.urgency_changes.first().reason == "possible anaphylaxis"


def test_staff_override_needs_a_reason(physician, admin_user, three_waiting):
    calm = three_waiting[0]
    with pytest.raises(services.TriageError, match="reason"):
        services.visit_urgency_override(visit=calm, level="urgent", reason=" ", actor=admin_user)
    services.visit_urgency_override(
        visit=calm, level=Urgency.NON_URGENT, reason="seen yesterday", actor=admin_user
    )
    calm.refresh_from_db()
    assert calm.urgency == Urgency.NON_URGENT
    assert calm.urgency_changes.first().actor == admin_user


def test_patient_cannot_override_urgency(patient, three_waiting):
    with pytest.raises(services.TriageError):
        services.visit_urgency_override(
            visit=three_waiting[0], level="immediate", reason="me first", actor=patient
        )


def test_reassigned_visit_moves_between_queues(physician, other_physician, admin_user, patient):
    visit = booking_services.visit_join_on_demand(patient=patient, reason="x")
    booking_services.visit_reassign(visit=visit, actor=admin_user, physician=other_physician)
    assert visit in [e.visit for e in queue_for_physician(physician=other_physician)]
    assert visit not in [e.visit for e in queue_for_physician(physician=physician)]


def test_waiting_place_counts_who_is_ahead(three_waiting):
    calm, early, flagged = three_waiting
    assert waiting_place(visit=flagged).position == 1
    place = waiting_place(visit=early)
    assert place.position == 3 and place.ahead == 2 and place.estimated_wait_minutes == 40


def test_board_stats_count_overdue_and_no_shows(admin_user, physician, three_waiting):
    calm = three_waiting[0]
    _wait(three_waiting[2], 30)
    booking_services.visit_mark_no_show(visit=calm, actor=admin_user)
    board = queue_board()
    stats = queue_stats(board=board)
    assert stats.waiting == 2 and stats.overdue == 1


# --- Admitting out of order -------------------------------------------------------------------


def test_admitting_past_a_more_urgent_patient_needs_a_reason(physician, three_waiting):
    calm, _early, flagged = three_waiting
    with pytest.raises(room_services.AdmitNeedsReason) as refused:
        room_services.visit_admit(visit=calm, physician=physician, reason="  ")
    [passed] = refused.value.passed_over
    assert passed.entry.visit == flagged and passed.more_urgent
    assert passed.why == "Very urgent"
    calm.refresh_from_db()
    assert calm.status == "checked_in" and not QueueSkip.objects.exists()


def test_admitting_with_a_reason_records_and_audits_it(physician, three_waiting):
    calm, _early, flagged = three_waiting
    room_services.visit_admit(visit=calm, physician=physician, reason="Booked follow-up, 2 min")
    calm.refresh_from_db()
    assert calm.status == "in_consult" and calm.started_at is not None
    skip = QueueSkip.objects.get()
    assert (skip.visit, skip.passed_over, skip.actor) == (calm, flagged, physician)
    assert skip.passed_over_urgency == Urgency.VERY_URGENT
    assert skip.reason == "Booked follow-up, 2 min"
    event = AuditEvent.objects.get(object_type="queue_skip")
    assert event.actor == physician and event.patient == calm.patient
    assert event.object_id == str(calm.pk) and "Booked follow-up" in event.detail
    assert f"#{flagged.pk} (Very urgent)" in event.detail


def test_an_overdue_patient_of_the_same_level_is_passed_over_too(physician, three_waiting):
    calm, early, flagged = three_waiting
    room_services.visit_admit(visit=flagged, physician=physician)  # first in line: no reason
    _wait(calm, 130)  # standard allows 120 minutes
    with pytest.raises(room_services.AdmitNeedsReason) as refused:
        room_services.visit_admit(visit=early, physician=physician)
    [passed] = refused.value.passed_over
    assert passed.entry.visit == calm and not passed.more_urgent
    assert passed.why == "waiting 10 min past the limit"


def test_taking_the_next_patient_in_order_needs_no_reason(physician, three_waiting):
    calm, early, flagged = three_waiting
    room_services.visit_admit(visit=flagged, physician=physician)
    # Calm is ahead of early at the same level but within its maximum wait: ordinary choice.
    room_services.visit_admit(visit=early, physician=physician)
    room_services.visit_admit(visit=calm, physician=physician)
    assert not QueueSkip.objects.exists()


def test_a_more_urgent_patient_goes_before_an_overdue_less_urgent_one(physician, three_waiting):
    calm, _early, flagged = three_waiting
    _wait(calm, 300)
    room_services.visit_admit(visit=flagged, physician=physician)
    assert not QueueSkip.objects.exists()


def test_admit_view_asks_why_then_admits_with_the_reason(client, physician, db):
    from tests.factories import PatientFactory

    calm = booking_services.visit_join_on_demand(
        patient=PatientFactory(first_name="Cal", last_name="Calm"), reason="calm"
    )
    urgent = _wait(
        booking_services.visit_join_on_demand(
            patient=PatientFactory(first_name="Vera", last_name="Ahead"),
            reason="chest",
            red_flags=["chest_pain"],
        ),
        50,
    )
    client.force_login(physician)
    url = reverse("consults:admit", args=[calm.pk])

    response = client.post(url)
    assert response.status_code == 409
    question = (
        "Why admit this patient before Vera Ahead, who is Very urgent and waiting 40 min past "
        "the limit?"
    )
    assert question in response.content.decode()
    assert reverse("consults:admit", args=[urgent.pk]) in response.content.decode()
    calm.refresh_from_db()
    assert calm.status == "checked_in"

    response = client.post(url, {"reason": " "})
    assert response.status_code == 409
    assert "Write a reason" in response.content.decode()

    response = client.post(url, {"reason": "Interpreter only available now"})
    assert response.status_code == 302
    assert response["Location"] == reverse("consults:room", args=[calm.pk])
    skip = QueueSkip.objects.get()
    assert skip.passed_over == urgent and skip.overdue_minutes == 40
    assert skip.reason == "Interpreter only available now"
    # The other patient's queue entry shown on the page is an audited read.
    assert AuditEvent.objects.filter(object_type="queue_entry", object_id=str(urgent.pk)).exists()
