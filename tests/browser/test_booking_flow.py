from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from consults.booking.services import visit_join_on_demand
from tests.browser.conftest import in_thread, sign_in
from tests.factories import PASSWORD, PatientFactory, PhysicianFactory, open_every_day

pytestmark = pytest.mark.browser


def _setup():
    physician = PhysicianFactory(email="dr.live@example.org", serves_on_demand=True)
    open_every_day(physician)
    waiting = visit_join_on_demand(patient=PatientFactory(last_name="Earlybird"), reason="Rash")
    waiting.checked_in_at = timezone.now() - timedelta(minutes=40)
    waiting.save(update_fields=["checked_in_at"])
    patient = PatientFactory(
        email="pat.live@example.org", last_name="Redflag", time_zone="Asia/Tokyo"
    )
    return physician, patient


def test_red_flag_booking_jumps_to_top_of_physicians_live_queue(live_asgi, browser):
    physician, patient = in_thread(_setup)

    doctor_page = browser.new_context().new_page()
    sign_in(doctor_page, live_asgi, physician.email, PASSWORD)
    doctor_page.goto(f"{live_asgi}/queue/")
    expect(doctor_page.locator("#live-status")).to_have_text("Live")
    rows = doctor_page.locator("table.queue tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Earlybird")
    doctor_page.evaluate("window.__notReloaded = true")

    patient_page = browser.new_context().new_page()
    sign_in(patient_page, live_asgi, patient.email, PASSWORD)
    patient_page.goto(f"{live_asgi}/visits/book/{physician.pk}/")
    expect(patient_page.get_by_text("Asia/Tokyo")).to_be_visible()
    patient_page.locator("input[name=slot]").first.check()
    patient_page.get_by_label("Reason for visit").fill("Short of breath since lunch")
    patient_page.get_by_label("Difficulty breathing or shortness of breath at rest").check()
    patient_page.get_by_role("button", name="Book visit").click()
    expect(patient_page.get_by_text("Your visit is booked.")).to_be_visible()
    patient_page.get_by_role("button", name="Check in").click()
    expect(patient_page.get_by_text("You are number 1 in line.")).to_be_visible()

    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Redflag")
    expect(rows.first).to_contain_text("Immediate")
    expect(rows.nth(1)).to_contain_text("Earlybird")
    assert doctor_page.evaluate("window.__notReloaded === true")


def test_a_refresh_that_changes_nothing_leaves_the_admit_button_in_place(live_asgi, browser):
    """The queue is fetched when the page loads and again when its socket opens. The second
    fetch must not swap the "Admit" button for an identical copy: a press landing between the
    swap's mouse-down and mouse-up is lost (CI saw the physician's Admit do nothing)."""
    physician = in_thread(
        lambda: PhysicianFactory(email="dr.steady@example.org", serves_on_demand=True)
    )
    in_thread(lambda: visit_join_on_demand(patient=PatientFactory(), reason="Rash"))
    page = browser.new_context().new_page()
    sign_in(page, live_asgi, physician.email, PASSWORD)

    fetches, held = [], []

    def hold_the_second(route):
        fetches.append(route.request.url)
        if len(fetches) == 2:
            held.append(route)
        else:
            route.continue_()

    page.route("**/queue/partial/", hold_the_second)
    page.goto(f"{live_asgi}/queue/")
    admit = page.get_by_role("button", name="Admit")
    expect(admit).to_be_visible()
    for _ in range(200):
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the socket-open refresh never came"
    admit.evaluate("button => { button.dataset.pressed = 'yes'; }")
    before = page.locator("#live-queue").evaluate("region => region.dataset.refreshedAt")
    held[0].continue_()
    page.wait_for_function(
        "before => document.getElementById('live-queue').dataset.refreshedAt !== before",
        arg=before,
    )
    expect(page.locator("button[data-pressed=yes]")).to_have_count(1)
