"""The physician reviews what the transcript's corrections did, in a real browser: a drug name
put in by the audio check is shown with its evidence in words and reverted with one click; the
patient's browser never shows a correction."""

import re

import pytest
from playwright.sync_api import expect

from consults.booking.services import visit_join_on_demand
from consults.room.services import consent_record, visit_admit
from consults.speech.factory import clear_transcribers
from consults.speech.types import Transcript
from tests.browser.conftest import in_thread, sign_in
from tests.factories import PASSWORD, PatientFactory, PhysicianFactory
from tests.speech.audio_helpers import recognised
from tests.test_transcript_corrections import _transcribe as transcribe_chunk_of

pytestmark = [pytest.mark.browser]


class AudioCheckedEngine:
    """Hears "cloppetodil" (too far from clopidogrel by sound and spelling alone), and whose
    audio check finds the line with clopidogrel e^10.5 times likelier. The real model's check
    is tested end to end in tests/test_transcript_corrections.py; this is about the page."""

    def __init__(self, **options):
        self.options = options

    def transcribe_array(self, *, samples, offset_s=0.0, hotwords=None) -> Transcript:
        heard = recognised(
            ("please", 0.9), ("take", 0.99), ("cloppetodil", 0.24), ("forty", 0.9),
            ("milligrams", 0.9), ("with", 0.95), ("food", 0.95),
        )  # fmt: skip
        return Transcript(
            segments=(heard,), language="en", duration_s=7.0, processing_s=0.1, status="ok"
        )

    def text_scorer(self, *, samples, offset_s=0.0, language=None):
        def score(start_s, end_s, texts, names):
            return [
                -30.0 + (10.5 if "clopidogrel" in t and i else 0.0) for i, t in enumerate(texts)
            ]

        return score


@pytest.fixture
def audio_checked_engine(settings):
    settings.SPEECH_BACKEND = "tests.browser.test_transcript_review.AudioCheckedEngine"
    clear_transcribers()
    yield
    clear_transcribers()


def _visit_with_a_corrected_line():
    physician = PhysicianFactory(email="dr.review@example.org", serves_on_demand=True)
    patient = PatientFactory(email="pat.review@example.org")
    visit = visit_join_on_demand(patient=patient, reason="Stent last year")
    visit = visit_admit(visit=visit, physician=physician)
    consent_record(visit=visit, patient=patient, choices={"recording": True, "ai_notes": True})
    transcribe_chunk_of(visit, patient)  # real audio, decoded; the engine above hears it
    return physician, patient, visit


def test_physician_sees_the_audio_evidence_and_reverts_it_patient_sees_none(
    live_asgi, audio_checked_engine, browser, second_browser, tmp_path
):
    physician, patient, visit = in_thread(_visit_with_a_corrected_line)

    doctor = browser.new_context().new_page()
    sign_in(doctor, live_asgi, physician.email, PASSWORD)
    doctor.goto(f"{live_asgi}/visits/{visit.pk}/")
    doctor.get_by_role("link", name="Transcript", exact=True).click()

    line = doctor.locator(".transcript-line").first
    expect(line.locator(".text")).to_have_text("please take clopidogrel 40 mg with food")
    fix = line.locator(".auto-correction").first
    expect(fix).to_contain_text("Heard “cloppetodil”, corrected to “clopidogrel”")
    expect(fix).to_contain_text("the recording fits clopidogrel better than the words heard")
    expect(fix).to_contain_text("about 36,000 times likelier")
    doctor.screenshot(path=str(tmp_path / "transcript-audio-check.png"), full_page=True)

    fix.get_by_role("button", name=re.compile("Revert “clopidogrel”")).click()
    line = doctor.locator(".transcript-line").first
    expect(line.locator(".text")).to_have_text("please take cloppetodil 40 mg with food")
    expect(line.locator(".auto-correction.reverted")).to_contain_text(
        "Heard “cloppetodil”, kept as heard: the correction to “clopidogrel” was reverted."
    )

    # The patient's own browser: no correction, no evidence, no AI wording.
    patient_page = second_browser.new_context().new_page()
    sign_in(patient_page, live_asgi, patient.email, PASSWORD)
    response = patient_page.goto(f"{live_asgi}/visits/{visit.pk}/transcript/")
    body = patient_page.content()
    assert response.status in (403, 404) or "clopidogrel" not in body
    assert "times likelier" not in body and "cloppetodil" not in body
