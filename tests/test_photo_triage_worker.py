"""The shipped ONNX models, run by a real Celery worker, reach the physician's page and queue."""

import io
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from consults.booking import services as booking_services
from consults.models import ConsentPurpose
from consults.room import services as room_services
from tests.factories import PatientFactory
from tests.test_permissions import login
from tests.workers import wait_for
from triage.models import Photo, UrgencyChange
from triage.queue.selectors import queue_for_physician

pytestmark = [pytest.mark.worker, pytest.mark.slow]
FIXTURES = Path(__file__).parent / "fixtures"


def _upload(client, visit, path: Path, kind: str) -> None:
    upload = io.BytesIO(path.read_bytes())
    upload.name = path.name
    response = client.post(
        reverse("triage:photo_add", args=[visit.pk]),
        {"kind": kind, "body_site": "upper back", "photos": [upload]},
    )
    assert response.status_code == 302, response.content[:2000]


def test_melanoma_photo_is_triaged_by_worker_and_jumps_the_queue(
    celery_worker_process, client, patient, physician
):
    earlier = booking_services.visit_join_on_demand(patient=PatientFactory(), reason="Cough")
    earlier.checked_in_at = timezone.now() - timedelta(minutes=30)
    earlier.save(update_fields=["checked_in_at"])
    visit = booking_services.visit_join_on_demand(patient=patient, reason="Mole changed")
    room_services.consent_record(
        visit=visit, patient=patient, choices={ConsentPurpose.AI_PHOTOS: True}
    )
    login(client, patient)
    _upload(client, visit, FIXTURES / "vision" / "ham_mel.jpg", "skin")

    photo = wait_for(
        lambda: Photo.objects.filter(visit=visit, status=Photo.Status.ANALYSED).first(),
        timeout=120,
    )
    analysis = photo.analysis
    assert analysis.can_assess and analysis.model_version
    assert set(analysis.probabilities) == {"akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"}
    assert sum(analysis.probabilities.values()) == pytest.approx(1.0, abs=0.01)
    assert analysis.urgency == "very_urgent" and "melanoma" in analysis.urgency_reason.lower()

    visit.refresh_from_db()
    assert visit.urgency == "very_urgent"
    assert visit.urgency_changes.filter(source=UrgencyChange.Source.PHOTO).exists()
    assert [e.visit for e in queue_for_physician(physician=physician)] == [visit, earlier]

    login(client, physician)
    page = client.get(reverse("triage:photo_list", args=[visit.pk])).content.decode()
    assert "Differential" in page and analysis.model_version in page
    heatmap = client.get(reverse("triage:photo_image", args=[photo.pk, "heatmap"]))
    assert heatmap.status_code == 200 and heatmap["Content-Type"] == "image/png"

    # The worker's own metrics endpoint counted the task and timed the model call.
    metrics = _scrape(celery_worker_process.metrics_url)
    assert _sample(metrics, "telehealth_model_latency_seconds_count", model="skin") >= 1
    assert (
        _sample(
            metrics,
            "telehealth_task_duration_seconds_count",
            task="triage.tasks.analyse_photo",
            state="SUCCESS",
        )
        >= 1
    )


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (local worker)
        return response.read().decode()


def _sample(exposition: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 when absent)."""
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_wound_photo_is_outlined_and_measured_by_worker(
    celery_worker_process, client, patient, physician
):
    visit = booking_services.visit_join_on_demand(patient=patient, reason="Foot ulcer")
    room_services.consent_record(
        visit=visit, patient=patient, choices={ConsentPurpose.AI_PHOTOS: True}
    )
    login(client, patient)
    _upload(client, visit, FIXTURES / "wounds" / "fuseg_0021.jpg", "wound")
    photo = wait_for(
        lambda: Photo.objects.filter(visit=visit, status=Photo.Status.ANALYSED).first(),
        timeout=120,
    )
    assert photo.analysis.can_assess and photo.analysis.area_px > 100
    login(client, physician)
    mask = client.get(reverse("triage:photo_image", args=[photo.pk, "mask"]))
    assert mask.status_code == 200


def test_without_ai_consent_the_worker_never_sees_the_photo(client, patient, physician):
    visit = booking_services.visit_join_on_demand(patient=patient, reason="Mole")
    login(client, patient)
    _upload(client, visit, FIXTURES / "vision" / "ham_mel.jpg", "skin")
    photo = Photo.objects.get(visit=visit)
    assert photo.status == Photo.Status.STORED
    from triage.photos.services import photo_analyse

    assert photo_analyse(photo_id=photo.pk) is None
    assert not hasattr(Photo.objects.get(pk=photo.pk), "analysis")
