"""The device check page in a real Chromium: camera, microphone level, socket round trip."""

import pytest
from playwright.sync_api import expect

from consults.booking.services import visit_join_on_demand
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, in_thread, sign_in
from tests.factories import PASSWORD, PatientFactory

pytestmark = pytest.mark.browser


def _visit():
    patient = PatientFactory(email="pat.devices@example.org")
    return patient, visit_join_on_demand(patient=patient, reason="Follow-up")


def test_working_devices_and_connection_are_reported(live_asgi, browser):
    patient, visit = in_thread(_visit)
    page = browser.new_context().new_page()
    sign_in(page, live_asgi, patient.email, PASSWORD)
    page.goto(f"{live_asgi}/visits/{visit.pk}/device-check/")

    expect(page.locator("#camera-state")).to_contain_text("Working", timeout=15_000)
    expect(page.locator("#mic-state")).to_contain_text("Working")
    # Chromium's fake microphone beeps: the level meter moves.
    page.wait_for_function("() => document.getElementById('mic-level').value > 0.01")
    # The page's own socket answered a ping through the real ASGI server.
    expect(page.locator("#network-state")).to_contain_text("Round trip", timeout=10_000)
    assert int(page.locator("#network-state").get_attribute("data-ms")) >= 0
    expect(page.locator("#advice")).to_have_text(
        "Everything works. You are ready for your consult."
    )
    page.wait_for_function(
        "() => document.getElementById('preview').videoWidth > 0", timeout=10_000
    )


def test_blocked_camera_gets_clear_advice(live_asgi, playwright_driver):
    """Without the fake permission prompt, headless Chromium refuses the camera: the page
    says so and tells the patient how to allow it."""
    args = [a for a in CHROMIUM_ARGS if a != "--use-fake-ui-for-media-stream"]
    browser = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=args)
    try:
        patient, visit = in_thread(_visit)
        page = browser.new_context().new_page()
        sign_in(page, live_asgi, patient.email, PASSWORD)
        page.goto(f"{live_asgi}/visits/{visit.pk}/device-check/")
        expect(page.locator("#camera-state")).to_have_text("Blocked", timeout=15_000)
        expect(page.locator("#advice")).to_contain_text("blocking the camera and microphone")
        expect(page.locator("#network-state")).to_contain_text("Round trip", timeout=10_000)
    finally:
        browser.close()
