"""Wound size in cm²: a scale marked on a photo, the area it gives, the trend across visits."""

import io
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from consults.booking import services as booking_services
from consults.models import Visit, VisitStatus
from consults.room import services as room_services
from telehealth.models import AuditEvent
from telehealth.private_media import private_save
from tests.test_permissions import login
from triage.models import Photo, PhotoAnalysis, PhotoConcern
from triage.photos import services as photos
from triage.photos.summary import AreaPoint, trend_sentences, wound_size
from triage.services import TriageError
from triage.vision.wound import area_cm2_from_px, scale_from_points


@pytest.fixture
def visit(patient, physician):
    visit = booking_services.visit_join_on_demand(patient=patient, reason="Leg ulcer")
    return room_services.visit_admit(visit=visit, physician=physician)


def earlier_visit(patient, physician) -> Visit:
    """A completed visit two weeks ago."""
    then = timezone.now() - timedelta(days=14)
    return Visit.objects.create(
        patient=patient,
        physician=physician,
        kind=Visit.Kind.ON_DEMAND,
        status=VisitStatus.COMPLETED,
        reason="Ulcer check",
        started_at=then,
        ended_at=then,
    )


def _jpeg() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (400, 300), (170, 90, 80)).save(buffer, "JPEG")
    return private_save(category="photos", data=buffer.getvalue(), suffix=".jpg")


def wound_photo(visit, *, area_px=10_000, site="left shin", when=None, stated=None) -> Photo:
    concern = PhotoConcern.objects.create(patient=visit.patient, kind="wound", body_site=site)
    photo = Photo.objects.create(
        visit=visit,
        concern=concern,
        uploaded_by=visit.patient,
        file_path=_jpeg(),
        sha256="0" * 64,
        width=400,
        height=300,
        stated_area_cm2=stated,
        quality_score=0.9,
        quality_checks={"blurred": 0.9, "not_skin": 0.1},
        quality_flags=[{"code": "not_skin", "message": "We could not see skin in this photo."}],
        status=Photo.Status.ANALYSED,
    )
    PhotoAnalysis.objects.create(
        photo=photo,
        model_version="wound-test",
        can_assess=True,
        urgency="standard",
        urgency_reason="Wound outlined; review the trend across visits.",
        area_px=area_px,
    )
    if when is not None:
        Photo.objects.filter(pk=photo.pk).update(created_at=when)
        photo.refresh_from_db()
    return photo


# --- The arithmetic -------------------------------------------------------------------------


def test_two_points_a_known_length_apart_give_pixels_per_cm():
    assert scale_from_points((10, 20), (110, 20), length_cm=1) == 100
    assert scale_from_points((0, 0), (30, 40), length_cm=0.5) == 100
    with pytest.raises(ValueError):
        scale_from_points((0, 0), (1, 1), length_cm=0)


def test_area_in_cm2_is_pixel_area_over_scale_squared():
    assert area_cm2_from_px(10_000, px_per_cm=100) == 1.0
    assert area_cm2_from_px(45_000, px_per_cm=150) == 2.0
    size = wound_size(area_px=20_000, px_per_cm=100, stated_cm2=9.0)
    assert (size.cm2, size.source, size.cm2_text) == (2.0, "measured", "2.0 cm²")


def test_without_a_scale_the_size_is_stated_or_unknown_never_pixels():
    assert wound_size(area_px=20_000, px_per_cm=None, stated_cm2=3.0).source == "stated"
    unknown = wound_size(area_px=20_000, px_per_cm=None, stated_cm2=None)
    assert unknown.cm2 is None and unknown.source == "" and unknown.outline_px == 20_000


def test_trend_in_words():
    now = timezone.now()
    first = AreaPoint(now - timedelta(days=21), 4.0)
    assert trend_sentences([]) == [
        "No measured photo yet: mark a known length on a photo to measure the wound."
    ]
    assert trend_sentences([first]) == ["Only one measured photo so far: no trend yet."]
    words = trend_sentences([first, AreaPoint(now - timedelta(days=7), 3.6), AreaPoint(now, 3.2)])
    assert words[0].startswith("Smaller by 0.8 cm² (\u221220 %) since ")
    assert "4.0 cm² then, 3.2 cm² now." in words[0]
    assert (
        words[1] == "3 visits over 3 weeks, healing: smaller by about 6 % of the first size a week."
    )
    growing = trend_sentences([first, AreaPoint(now, 6.0)])
    assert growing[0].startswith("Larger by 2.0 cm² (+50 %)") and "worsening" in growing[1]


# --- The service ----------------------------------------------------------------------------


def test_physician_sets_scale_and_it_is_audited(visit, physician):
    photo = wound_photo(visit)
    photos.photo_scale_set(
        photo=photo, user=physician, start=(50, 100), end=(150, 100), length_cm=1
    )
    photo.refresh_from_db()
    assert photo.scale_px_per_cm == 100 and photo.scale_set_by == physician
    assert photo.scale_points == [[50, 100], [150, 100]] and photo.scale_length_cm == 1
    event = AuditEvent.objects.get(object_type="photo_scale")
    assert (event.actor, event.action, event.patient) == (physician, "write", visit.patient)


@pytest.mark.parametrize(
    ("start", "end", "length", "message"),
    [
        ((50, 100), (52, 100), 1, "too close"),
        ((50, 100), (500, 100), 1, "on the photo"),
        ((50, 100), (150, 100), 0, "known length"),
        ((50, 100), (150, 100), 80, "known length"),
    ],
)
def test_bad_scale_is_refused(visit, physician, start, end, length, message):
    photo = wound_photo(visit)
    with pytest.raises(TriageError, match=message):
        photos.photo_scale_set(photo=photo, user=physician, start=start, end=end, length_cm=length)


def test_only_the_visits_physician_or_admin_may_set_a_scale(
    visit, physician, other_physician, patient, admin_user
):
    photo = wound_photo(visit)
    for outsider in (other_physician, patient):
        with pytest.raises(TriageError, match="physician or an administrator"):
            photos.photo_scale_set(
                photo=photo, user=outsider, start=(0, 0), end=(100, 0), length_cm=1
            )
    photos.photo_scale_set(photo=photo, user=admin_user, start=(0, 0), end=(100, 0), length_cm=1)
    assert Photo.objects.get(pk=photo.pk).scale_set_by == admin_user


def test_trend_follows_the_wound_across_visits_in_cm2(visit, physician, patient):
    now = timezone.now()
    earlier = earlier_visit(patient, physician)
    old = wound_photo(earlier, area_px=40_000, when=now - timedelta(days=14))
    new = wound_photo(visit, area_px=32_400, site="Left Shin")
    unmeasured = wound_photo(visit, area_px=99_999)
    for photo, px in ((old, 100), (new, 90)):
        photos.photo_scale_set(photo=photo, user=physician, start=(0, 0), end=(px, 0), length_cm=1)
    points = photos.wound_area_points(concern=new.concern, viewer=physician)
    assert sorted(round(p.cm2, 2) for p in points) == [4.0, 4.0]
    assert unmeasured.scale_px_per_cm is None


def test_trend_leaves_out_visits_the_viewer_may_not_see(visit, physician, other_physician, patient):
    elsewhere = earlier_visit(patient, other_physician)
    hidden = wound_photo(elsewhere, when=timezone.now() - timedelta(days=7))
    photos.photo_scale_set(
        photo=hidden, user=other_physician, start=(0, 0), end=(100, 0), length_cm=1
    )
    shown = wound_photo(visit)
    photos.photo_scale_set(photo=shown, user=physician, start=(0, 0), end=(50, 0), length_cm=1)
    assert [p.cm2 for p in photos.wound_area_points(concern=shown.concern, viewer=physician)] == [
        4.0
    ]


# --- The page -------------------------------------------------------------------------------


def test_page_shows_cm2_after_a_scale_is_set_and_never_calls_pixels_an_area(
    client, visit, physician
):
    photo = wound_photo(visit, area_px=12_345)
    login(client, physician)
    url = reverse("triage:photo_list", args=[visit.pk])
    before = client.get(url).content.decode()
    assert "Size unknown — mark a known length on the photo to measure" in before
    assert "12345 px" in before and "cm²" not in before.split("Wound size")[1].split("</dd>")[0]

    response = client.post(
        reverse("triage:photo_scale", args=[photo.pk]),
        {"x1": 10, "y1": 10, "x2": 110, "y2": 10, "length_cm": "1"},
    )
    assert response.status_code == 302 and response["Location"].endswith(f"#photo-{photo.pk}")
    after = client.get(url).content.decode()
    assert "1.2 cm²" in after  # 12,345 px at 100 px/cm
    assert "Only one measured photo so far: no trend yet." in after
    for page in (before, after):
        text = re.sub(r"<[^>]+>", " ", page)
        assert not re.search(r"area[^.\n]{0,40}\d+\s*(px|pixels)", text, re.IGNORECASE)
        assert "Area trend" not in text and "insufficient_data" not in text


def test_page_draws_the_area_chart_across_visits(client, visit, physician, patient):
    earlier = earlier_visit(patient, physician)
    old = wound_photo(earlier, area_px=50_000, when=timezone.now() - timedelta(days=14))
    new = wound_photo(visit, area_px=40_000)
    for photo in (old, new):
        photos.photo_scale_set(photo=photo, user=physician, start=(0, 0), end=(100, 0), length_cm=1)
    page = login(client, physician).get(reverse("triage:photo_list", args=[visit.pk]))
    html = page.content.decode()
    assert "Smaller by 1.0 cm² (\u221220 %) since" in html
    assert '<figure class="area-chart">' in html and "<polyline" in html
    assert "Wound area by visit: 5.0 cm² on" in html


def test_patient_sees_no_size_trend_or_measuring_tool(client, visit, physician, patient):
    photo = wound_photo(visit)
    photos.photo_scale_set(photo=photo, user=physician, start=(0, 0), end=(100, 0), length_cm=1)
    html = login(client, patient).get(reverse("triage:photo_list", args=[visit.pk])).content
    for leak in (b"cm\xc2\xb2", b"Wound size", b"measure", b"area-chart", b"Suggested urgency"):
        assert leak not in html


def test_other_physician_cannot_post_a_scale(client, visit, other_physician):
    photo = wound_photo(visit)
    response = login(client, other_physician).post(
        reverse("triage:photo_scale", args=[photo.pk]),
        {"x1": 0, "y1": 0, "x2": 100, "y2": 0, "length_cm": 1},
    )
    assert response.status_code == 404
    assert Photo.objects.get(pk=photo.pk).scale_px_per_cm is None
