from datetime import timedelta

import pytest
from django.utils import timezone

from consults import services as visit_services
from triage import services
from triage.selectors import queue_board, queue_for_physician, queue_stats, waiting_place
from triage.urgency import Urgency


def _wait(visit, minutes):
    visit.checked_in_at = timezone.now() - timedelta(minutes=minutes)
    visit.save(update_fields=["checked_in_at"])
    return visit


@pytest.fixture
def three_waiting(db, physician):
    from tests.factories import PatientFactory

    calm = _wait(visit_services.visit_join_on_demand(patient=PatientFactory(), reason="calm"), 50)
    early = _wait(visit_services.visit_join_on_demand(patient=PatientFactory(), reason="e"), 30)
    flagged = visit_services.visit_join_on_demand(
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
    visit = visit_services.visit_join_on_demand(patient=patient, reason="x")
    visit_services.visit_reassign(visit=visit, actor=admin_user, physician=other_physician)
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
    visit_services.visit_mark_no_show(visit=calm, actor=admin_user)
    board = queue_board()
    stats = queue_stats(board=board)
    assert stats.waiting == 2 and stats.overdue == 1
