"""Two real Chromium processes hold a WebRTC call through the lobby, then survive a reload."""

import pytest
from playwright.sync_api import expect

from consults.booking.services import visit_join_on_demand
from tests.browser.conftest import in_thread, sign_in
from tests.factories import PASSWORD, PatientFactory, PhysicianFactory

pytestmark = pytest.mark.browser

CONNECTED = "() => window.__consultPeer && window.__consultPeer.connectionState === 'connected'"
FRAMES_DECODED = """async () => {
  const pc = window.__consultPeer;
  if (!pc) return false;
  let frames = 0;
  (await pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') frames = r.framesDecoded || 0;
  });
  return frames > 5;
}"""


def _setup():
    physician = PhysicianFactory(email="dr.call@example.org", serves_on_demand=True)
    patient = PatientFactory(email="pat.call@example.org", last_name="Caller")
    visit = visit_join_on_demand(patient=patient, reason="Rash on arm")
    return physician, patient, visit


def _assert_call_up(page):
    page.wait_for_function(CONNECTED, timeout=30_000)
    page.wait_for_function(FRAMES_DECODED, timeout=30_000, polling=500)


def test_patient_and_physician_hold_a_video_call_and_reconnect(live_asgi, browser, second_browser):
    physician, patient, visit = in_thread(_setup)

    patient_page = browser.new_context().new_page()
    sign_in(patient_page, live_asgi, patient.email, PASSWORD)
    patient_page.goto(f"{live_asgi}/visits/{visit.pk}/")
    expect(patient_page.get_by_text("You are number 1 in line.")).to_be_visible()

    doctor_page = second_browser.new_context().new_page()
    sign_in(doctor_page, live_asgi, physician.email, PASSWORD)
    doctor_page.goto(f"{live_asgi}/queue/")
    doctor_page.get_by_role("button", name="Admit").click()
    doctor_page.wait_for_url(f"**/visits/{visit.pk}/room/")

    # The lobby moves the patient into the room by itself once admitted.
    patient_page.wait_for_url(f"**/visits/{visit.pk}/room/", timeout=15_000)
    _assert_call_up(patient_page)
    _assert_call_up(doctor_page)
    expect(doctor_page.locator("#call-status")).to_have_text("Connected")

    doctor_page.evaluate("window.__callBeforeReload = window.__consultPeer")
    patient_page.reload()
    _assert_call_up(patient_page)
    # The physician's side answered the rejoin with a fresh connection, and media flows on it.
    doctor_page.wait_for_function("() => window.__consultPeer !== window.__callBeforeReload")
    _assert_call_up(doctor_page)

    # Ending asks for confirmation first (tests/browser/test_consult_controls.py: cancelling).
    doctor_page.get_by_role("button", name="End visit").click()
    doctor_page.get_by_role("button", name="Yes, end the visit").click()
    expect(patient_page.locator("#call-status")).to_have_text("The visit has ended.")
