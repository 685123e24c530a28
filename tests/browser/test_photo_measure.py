"""The physician marks 1 cm on the ruler in a wound photo and reads the wound's size in cm²."""

import io
import os
import re
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.utils import timezone
from PIL import Image, ImageDraw
from playwright.sync_api import expect

from consults.models import Visit, VisitStatus
from tests.browser.conftest import in_thread, sign_in
from tests.factories import PASSWORD, PatientFactory, PhysicianFactory, admitted_visit
from triage.models import Photo, PhotoAnalysis, PhotoConcern

pytestmark = pytest.mark.browser

WOUNDS = Path(__file__).parent.parent / "fixtures" / "wounds"
SHOTS = Path(os.environ["SCREENSHOT_DIR"]) if os.environ.get("SCREENSHOT_DIR") else None
PX_PER_CM = 40  # the ruler drawn on the photo: a tick every 40 pixels
RULER_Y = 492


def _shot(page, name: str, *, show=None) -> None:
    # The viewport only: a full-page or tall-element capture resizes it, and headless Chromium
    # then routes the next click by the old layout.
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        if show is not None:
            show.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / f"{name}.png"))


def _photo_with_ruler() -> bytes:
    """A FUSeg ulcer photo with a centimetre ruler along its lower edge, as a nurse would add."""
    image = Image.open(WOUNDS / "fuseg_0021.jpg").convert("RGB")
    draw = ImageDraw.Draw(image)
    draw.rectangle((20, 470, 492, 506), fill=(250, 250, 245), outline=(40, 40, 40))
    for i, x in enumerate(range(32, 481, PX_PER_CM // 2)):
        draw.line((x, 470, x, 470 + (22 if i % 2 == 0 else 12)), fill=(20, 20, 20), width=2)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def _wound_photo(visit: Visit, *, area_px: int, when=None, px_per_cm=None) -> Photo:
    from telehealth.private_media import private_save

    concern = PhotoConcern.objects.create(patient=visit.patient, kind="wound", body_site="Heel")
    photo = Photo.objects.create(
        visit=visit,
        concern=concern,
        uploaded_by=visit.patient,
        file_path=private_save(category="photos", data=_photo_with_ruler(), suffix=".jpg"),
        sha256="0" * 64,
        width=512,
        height=512,
        quality_score=0.9,
        quality_checks={"blurred": 0.95, "too_dark": 1.0, "not_centred": 0.9},
        status=Photo.Status.ANALYSED,
        scale_px_per_cm=px_per_cm,
    )
    PhotoAnalysis.objects.create(
        photo=photo,
        model_version="wound-seg-test",
        can_assess=True,
        urgency="standard",
        urgency_reason="Wound outlined; review the trend across visits.",
        area_px=area_px,
    )
    if when is not None:
        Photo.objects.filter(pk=photo.pk).update(created_at=when)
    return photo


def _setup():
    physician = PhysicianFactory(email="dr.measure@example.org", serves_on_demand=True)
    patient = PatientFactory(email="pat.measure@example.org")
    then = timezone.now() - timedelta(days=21)
    earlier = Visit.objects.create(
        patient=patient,
        physician=physician,
        kind=Visit.Kind.ON_DEMAND,
        status=VisitStatus.COMPLETED,
        reason="Heel ulcer",
        started_at=then,
        ended_at=then,
    )
    mask = np.asarray(Image.open(WOUNDS / "fuseg_0021_mask.png").convert("L")) > 127
    area_px = int(mask.sum())
    # Three weeks ago the same wound measured a third larger.
    _wound_photo(earlier, area_px=round(area_px * 1.33), when=then, px_per_cm=PX_PER_CM)
    visit = admitted_visit(patient, physician, reason="Heel ulcer follow-up")
    _wound_photo(visit, area_px=area_px)
    return physician, visit, area_px


def test_physician_marks_one_cm_on_the_ruler_and_sees_cm2(live_asgi, browser):
    physician, visit, area_px = in_thread(_setup)
    page = browser.new_context(viewport={"width": 1000, "height": 1300}).new_page()
    sign_in(page, live_asgi, physician.email, PASSWORD)
    page.goto(f"{live_asgi}/visits/{visit.pk}/photos/")

    size = page.locator(".wound-size")
    expect(size).to_contain_text("Size unknown — mark a known length on the photo to measure")
    expect(page.locator(".trend")).to_contain_text("Only one measured photo so far: no trend yet.")
    _shot(page, "photo-measure-1-before")

    photo = page.get_by_role("img", name="Photo to mark a known length on")
    photo.scroll_into_view_if_needed()
    box = photo.bounding_box()
    shown = box["width"] / 512  # CSS pixels per photo pixel
    for x in (32 + PX_PER_CM, 32 + 2 * PX_PER_CM):  # two ticks 1 cm apart
        photo.click(position={"x": x * shown, "y": RULER_Y * shown})
    status = page.locator(".measure-status")
    expect(status).to_contain_text(f"{PX_PER_CM} px between the two points")
    page.get_by_label("Known length (cm)").fill("1")
    _shot(page, "photo-measure-2-marked", show=page.get_by_role("button", name="Save scale"))
    page.get_by_role("button", name="Save scale").click()

    expect(page.get_by_text("Scale saved")).to_be_visible()
    expect(size).to_contain_text("measured on the photo: 1 cm marked by")
    value = float(re.search(r"([\d.]+) cm²", size.inner_text()).group(1))
    assert value == pytest.approx(area_px / PX_PER_CM**2, rel=0.05)
    assert not re.search(r"area[^.\n]{0,40}\d+\s*px", page.inner_text("main"), re.IGNORECASE)
    trend = page.locator(".trend")
    expect(trend).to_contain_text(re.compile(r"Smaller by [\d.]+ cm² \(\u22122\d %\) since"))
    expect(trend.locator("svg polyline")).to_have_count(1)
    _shot(page, "photo-measure-3-saved", show=page.locator(".trend"))
