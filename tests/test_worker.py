from datetime import timedelta

import pytest
from django.utils import timezone

from consults.booking.tasks import visits_mark_no_shows
from consults.models import Visit, VisitStatus
from tests.workers import wait_for

pytestmark = pytest.mark.worker


def test_real_worker_marks_missed_visit_as_no_show(celery_worker_process, patient, physician):
    missed = Visit.objects.create(
        patient=patient,
        physician=physician,
        scheduled_start=timezone.now() - timedelta(hours=2),
        reason="Forgot",
    )
    upcoming = Visit.objects.create(
        patient=patient,
        physician=physician,
        scheduled_start=timezone.now() + timedelta(hours=2),
        reason="Later",
    )
    visits_mark_no_shows.delay()
    wait_for(lambda: Visit.objects.get(pk=missed.pk).status == VisitStatus.NO_SHOW)
    assert Visit.objects.get(pk=upcoming.pk).status == VisitStatus.BOOKED


def test_no_show_sweep_is_idempotent(patient, physician):
    from consults.booking.services import visits_mark_no_shows as sweep

    Visit.objects.create(
        patient=patient,
        physician=physician,
        scheduled_start=timezone.now() - timedelta(hours=2),
        reason="Forgot",
    )
    assert len(sweep()) == 1
    assert sweep() == []
