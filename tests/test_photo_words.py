"""The photo page in words a person reads: diagnosis names, image quality, no bare codes."""

import re
from pathlib import Path

import pytest
from django.urls import reverse

from consults.booking import services as booking_services
from consults.room import services as room_services
from tests.test_permissions import login
from triage.models import Photo, PhotoAnalysis
from triage.photos import services as photos
from triage.photos.summary import diagnosis_name, differential, quality_words
from triage.vision.skin import CLASS_NAMES

FIXTURES = Path(__file__).parent / "fixtures" / "vision"


def test_every_class_has_a_name_in_full():
    assert diagnosis_name("mel") == "Melanoma"
    assert diagnosis_name("bcc") == "Basal cell carcinoma"
    assert diagnosis_name("akiec") == "Actinic keratosis / intraepithelial carcinoma"
    assert diagnosis_name("vasc") == "Vascular lesion"
    assert all(diagnosis_name(code) != code for code in CLASS_NAMES)


def test_differential_is_most_likely_first_in_whole_percent():
    ranked = differential({"nv": 0.1, "mel": 0.62, "bkl": 0.28})
    assert [(d.name, d.percent) for d in ranked] == [
        ("Melanoma", 62),
        ("Benign keratosis", 28),
        ("Melanocytic naevus (mole)", 10),
    ]


@pytest.mark.parametrize(
    ("checks", "flags", "ignored", "level", "reason"),
    [
        ({"blurred": 1.0, "too_dark": 0.95}, [], (), "good", "Sharp, well lit and in frame"),
        ({"blurred": 0.59, "too_dark": 1.0}, [], (), "acceptable", "Slightly soft focus"),
        ({"blurred": 0.3, "too_dark": 0.45}, [], (), "poor", "Slightly soft focus; rather dark"),
        (
            {"not_centred": 0.9, "blurred": 1.0},
            [{"code": "not_centred", "message": "..."}],
            (),
            "acceptable",
            "The spot is off-centre",
        ),
        # A wound bed is not skin-coloured: that check does not count against a wound photo.
        (
            {"not_skin": 0.0, "blurred": 1.0},
            [{"code": "not_skin", "message": "..."}],
            ("not_skin",),
            "good",
            "Sharp, well lit and in frame",
        ),
    ],
)
def test_quality_in_words(checks, flags, ignored, level, reason):
    words = quality_words(score=min(checks.values()), flags=flags, checks=checks, ignored=ignored)
    assert (words.level, words.reason) == (level, reason)


def test_quality_of_older_photos_without_check_scores_still_reads():
    words = quality_words(score=0.59, flags=[], checks={})
    assert (words.level, words.reason) == ("acceptable", "No single problem recorded")


@pytest.fixture
def visit(patient, physician):
    visit = booking_services.visit_join_on_demand(patient=patient, reason="Mole changed")
    return room_services.visit_admit(visit=visit, physician=physician)


def test_submitted_photo_keeps_each_checks_score(visit, patient):
    stored, _ = photos.photos_submit(
        visit=visit,
        uploader=patient,
        kind="skin",
        body_site="back",
        files=[("nv.jpg", (FIXTURES / "ham_nv.jpg").read_bytes())],
    )
    checks = stored[0].quality_checks
    assert {"blurred", "too_dark", "not_skin"} <= set(checks)
    assert min(checks.values()) == pytest.approx(stored[0].quality_score)


def test_physician_page_names_diagnoses_and_quality_in_words(client, visit, patient, physician):
    stored, _ = photos.photos_submit(
        visit=visit,
        uploader=patient,
        kind="skin",
        body_site="back",
        files=[("mel.jpg", (FIXTURES / "ham_mel.jpg").read_bytes())],
    )
    PhotoAnalysis.objects.create(
        photo=stored[0],
        model_version="skin-test",
        can_assess=True,
        label="mel",
        probabilities={"akiec": 0.05, "bcc": 0.08, "mel": 0.62, "nv": 0.2, "vasc": 0.05},
        urgency="very_urgent",
        urgency_reason="Possible melanoma (probability 62%): refer urgently.",
    )
    Photo.objects.filter(pk=stored[0].pk).update(status=Photo.Status.ANALYSED)
    html = login(client, physician).get(reverse("triage:photo_list", args=[visit.pk])).content
    html = html.decode()
    assert re.search(r"<th scope=\"row\">Melanoma <small class=\"code\">mel</small></th>", html)
    assert "Basal cell carcinoma" in html and "Vascular lesion" in html
    assert "<th>mel</th>" not in html and "<th>akiec</th>" not in html
    quality = re.search(r'<dd class="quality q-(\w+)"><strong>(\w+)</strong> — ([^<]+)</dd>', html)
    assert quality and quality.group(1) in ("good", "acceptable", "poor")
    assert not re.search(r"Image quality</dt><dd>\s*\d\.\d+", html)

    # The patient sees their photo's quality, but nothing the model said.
    client.logout()
    mine = login(client, patient).get(reverse("triage:photo_list", args=[visit.pk])).content
    for leak in (b"Melanoma", b"mel</small>", b"62 %", b"Very urgent", b"Differential"):
        assert leak not in mine
    assert b'class="quality' in mine
