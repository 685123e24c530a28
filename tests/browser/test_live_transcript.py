"""Two real Chromium processes in a call record their own microphones; a real worker with tiny.en
transcribes the chunks and the physician's live panel shows the patient's words."""

import pytest

from consults.booking.services import visit_join_on_demand
from consults.models import AudioChunk, ChunkStatus
from consults.room.services import consent_record, visit_admit
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, in_thread, sign_in
from tests.factories import PASSWORD, PatientFactory, PhysicianFactory
from tests.workers import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow]

CONNECTED = "() => window.__consultPeer && window.__consultPeer.connectionState === 'connected'"


@pytest.fixture
def physician_browser(playwright_driver):
    browser = playwright_driver.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
    )
    yield browser
    browser.close()


def _setup():
    physician = PhysicianFactory(email="dr.listen@example.org", serves_on_demand=True)
    patient = PatientFactory(email="pat.speak@example.org")
    visit = visit_join_on_demand(patient=patient, reason="Chest discomfort")
    consent_record(visit=visit, patient=patient, choices={"recording": True, "ai_notes": True})
    visit_admit(visit=visit, physician=physician)
    return physician, patient, visit


def _chunks(**filters):
    return list(AudioChunk.objects.filter(**filters).values_list("recording__speaker", "status"))


def _overlaps(visit_id):
    chunks = AudioChunk.objects.filter(recording__visit_id=visit_id, recording__speaker="patient")
    return list(chunks.order_by("index").values_list("head_overlap_s", "tail_overlap_s"))


def test_patient_speech_reaches_the_physicians_live_transcript(
    live_asgi, tiny_worker, speaking_patient_browser, physician_browser
):
    physician, patient, visit = in_thread(_setup)

    doctor_page = physician_browser.new_context().new_page()
    sign_in(doctor_page, live_asgi, physician.email, PASSWORD)
    doctor_page.goto(f"{live_asgi}/visits/{visit.pk}/room/")
    patient_page = speaking_patient_browser.new_context().new_page()
    sign_in(patient_page, live_asgi, patient.email, PASSWORD)
    patient_page.goto(f"{live_asgi}/visits/{visit.pk}/room/")
    # A real call between the two browsers (checked before the worker loads the CPU)...
    doctor_page.wait_for_function(CONNECTED, timeout=60_000)
    patient_page.wait_for_function(CONNECTED, timeout=60_000)

    # ...while both sides upload their own track as complete, decodable files.
    patient_page.wait_for_function("() => window.__recorder.sent >= 2", timeout=60_000)
    doctor_page.wait_for_function("() => window.__recorder.sent >= 1", timeout=60_000)
    assert patient_page.locator("#transcript-panel").count() == 0
    # Consecutive chunks overlap by about a second, and each says so, so no word is cut.
    overlaps = in_thread(_overlaps, visit_id=visit.pk)
    assert overlaps[0][0] == 0 and all(0.5 < o[1] < 1.6 for o in overlaps[:-1]), overlaps
    assert all(0.5 < o[0] < 1.6 for o in overlaps[1:]), overlaps

    def transcribed():
        rows = in_thread(_chunks, recording__visit_id=visit.pk)
        done = [r for r in rows if r[1] in (ChunkStatus.DONE, ChunkStatus.NO_SPEECH)]
        return rows if len(done) >= 3 else None

    rows = wait_for(transcribed, timeout=180, interval=1)
    assert {speaker for speaker, _ in rows} == {"patient", "physician"}
    assert ChunkStatus.FAILED not in {status for _, status in rows}

    # The physician's panel refreshes (push with Redis, periodic refresh otherwise).
    doctor_page.wait_for_function(
        """() => /penicillin|chest pain|morning/i.test(
             document.getElementById('transcript-live').textContent)""",
        timeout=60_000,
        polling=1000,
    )
    assert "Patient" in doctor_page.locator("#transcript-live").inner_text()
