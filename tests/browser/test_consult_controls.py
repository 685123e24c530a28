"""The consult room's controls in real Chromium: the patient leaves and rejoins, the call timer
keeps the server's start across a reload, chat and transcript grow without re-rendering, the
physician confirms before ending; and the queue asks why a patient is admitted out of order."""

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from consults.booking.services import visit_join_on_demand
from consults.models import AudioChunk, Recording, TranscriptSegment, Visit, VisitStatus
from consults.room.services import visit_admit
from tests.browser.conftest import in_thread, sign_in
from tests.factories import PASSWORD, PatientFactory, PhysicianFactory
from triage.models import QueueSkip

pytestmark = pytest.mark.browser

CONNECTED = "() => window.__consultPeer && window.__consultPeer.connectionState === 'connected'"
FIVE_MINUTES = re.compile(r"^05:\d\d$")
# Set SCREENSHOT_DIR to keep pictures of each step for review.
SHOTS = Path(os.environ["SCREENSHOT_DIR"]) if os.environ.get("SCREENSHOT_DIR") else None


def _shot(page, name: str) -> None:
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _segment(visit: Visit, index: int, text: str) -> None:
    recording, _ = Recording.objects.get_or_create(
        visit=visit, speaker="patient", source="live", defaults={"user": visit.patient}
    )
    chunk = AudioChunk.objects.create(
        recording=recording,
        index=index,
        start_s=index * 5,
        path="x",
        content_type="audio/ogg",
        sha256="0" * 64,
        size=1,
        status="done",
    )
    TranscriptSegment.objects.create(
        visit=visit,
        chunk=chunk,
        speaker="patient",
        start_s=index * 5,
        end_s=index * 5 + 2,
        text=text,
        avg_logprob=-0.1,
        no_speech_prob=0.0,
    )


def _setup():
    physician = PhysicianFactory(
        email="dr.controls@example.org", serves_on_demand=True, last_name="Controls"
    )
    patient = PatientFactory(email="pat.controls@example.org", first_name="Lee", last_name="Ving")
    visit = visit_admit(
        visit=visit_join_on_demand(patient=patient, reason="Sore knee"), physician=physician
    )
    # Admitted five minutes ago: the timer must say so, not start from 00:00.
    Visit.objects.filter(pk=visit.pk).update(started_at=timezone.now() - timedelta(minutes=5))
    _segment(visit, 0, "It hurts when I climb stairs.")
    return physician, patient, visit


def _status(visit_id):
    return Visit.objects.get(pk=visit_id).status


WATCH_REMOVALS = """(selector) => {
  const list = document.querySelector(selector);
  window.__removed = window.__removed || {};
  window.__removed[selector] = 0;
  new MutationObserver((records) => {
    for (const r of records) {
      // Placeholders ("No messages yet") go; real items never do.
      window.__removed[selector] += [...r.removedNodes].filter(
        (n) => n.nodeType === 1 && !['chat-empty', 'line-none'].includes(n.id)).length;
    }
  }).observe(list, { childList: true });
}"""


def test_patient_leaves_and_rejoins_and_physician_confirms_the_end(
    live_asgi, browser, second_browser
):
    physician, patient, visit = in_thread(_setup)
    room = f"{live_asgi}/visits/{visit.pk}/room/"

    doctor_page = second_browser.new_context().new_page()
    sign_in(doctor_page, live_asgi, physician.email, PASSWORD)
    doctor_page.goto(room)
    patient_page = browser.new_context().new_page()
    sign_in(patient_page, live_asgi, patient.email, PASSWORD)
    patient_page.goto(room)
    doctor_page.wait_for_function(CONNECTED, timeout=30_000)
    patient_page.wait_for_function(CONNECTED, timeout=30_000)

    # The timer counts from the server's start, on both sides and after a reload.
    expect(doctor_page.locator("#call-timer")).to_have_text(FIVE_MINUTES)
    expect(patient_page.locator("#call-timer")).to_have_text(FIVE_MINUTES)
    patient_page.reload()
    patient_page.wait_for_function(CONNECTED, timeout=30_000)
    expect(patient_page.locator("#call-timer")).to_have_text(FIVE_MINUTES)

    # Chat: a new message is added to the log; the one already there is not re-rendered.
    for page in (doctor_page, patient_page):
        expect(page.get_by_role("log", name="Chat messages")).to_contain_text("No messages yet.")
        page.evaluate(WATCH_REMOVALS, "#chat-log ul")
    patient_page.get_by_label("Message", exact=True).fill("My knee is swollen")
    patient_page.get_by_role("button", name="Send").click()
    doctor_log = doctor_page.locator("#chat-log li[id^=chat-message-]")
    expect(doctor_log).to_have_count(1)
    doctor_log.first.evaluate("(li) => { li.__seen = true; }")
    patient_page.get_by_label("Message", exact=True).fill("Since Tuesday")
    patient_page.get_by_role("button", name="Send").click()
    expect(doctor_log).to_have_count(2)
    assert doctor_log.first.evaluate("(li) => li.__seen === true")  # the same element
    expect(doctor_log.nth(1)).to_contain_text("Since Tuesday")
    for page in (doctor_page, patient_page):
        assert page.evaluate("window.__removed['#chat-log ul']") == 0

    # Live transcript: the line already shown stays; the next one is added after it.
    lines = doctor_page.locator("#transcript-live li[id^=line-]")
    expect(lines.first).to_contain_text("It hurts when I climb stairs.")
    doctor_page.evaluate(WATCH_REMOVALS, "#transcript-live ol")
    lines.first.evaluate("(li) => { li.__seen = true; }")
    in_thread(_segment, visit=visit, index=1, text="Only on the left side.")
    expect(lines).to_have_count(2, timeout=25_000)  # the panel's periodic refresh (15 s)
    assert lines.first.evaluate("(li) => li.__seen === true")
    expect(lines.nth(1)).to_contain_text("Only on the left side.")
    assert doctor_page.evaluate("window.__removed['#transcript-live ol']") == 0
    _shot(doctor_page, "1-physician-room-chat-transcript")
    _shot(patient_page, "2-patient-room")

    # The patient leaves: their side hangs up, the visit goes on, the physician is told.
    patient_page.get_by_role("button", name="Leave call").click()
    patient_page.wait_for_url(f"**/visits/{visit.pk}/")
    expect(patient_page.locator("#left-call")).to_contain_text("You left the call.")
    expect(doctor_page.locator("#call-status")).to_contain_text("The patient left the call")
    assert in_thread(_status, visit_id=visit.pk) == VisitStatus.IN_CONSULT
    # The lobby's live refresh does not pull them back in.
    patient_page.wait_for_timeout(1500)
    assert patient_page.url.endswith(f"/visits/{visit.pk}/")
    _shot(patient_page, "3-patient-left")
    _shot(doctor_page, "4-physician-sees-patient-left")

    patient_page.get_by_role("link", name="Rejoin the call").click()
    patient_page.wait_for_url(room)
    patient_page.wait_for_function(CONNECTED, timeout=30_000)
    doctor_page.wait_for_function(CONNECTED, timeout=30_000)
    expect(doctor_page.locator("#call-status")).to_have_text("Connected")

    # Ending asks first; keeping the call going changes nothing.
    doctor_page.get_by_role("button", name="End visit").click()
    dialog = doctor_page.get_by_role("dialog", name="End this visit?")
    expect(dialog).to_be_visible()
    _shot(doctor_page, "5-end-visit-dialog")
    dialog.get_by_role("button", name="Keep the call going").click()
    expect(dialog).to_be_hidden()
    assert in_thread(_status, visit_id=visit.pk) == VisitStatus.IN_CONSULT
    doctor_page.get_by_role("button", name="End visit").click()
    dialog.get_by_role("button", name="Yes, end the visit").click()
    expect(patient_page.locator("#call-status")).to_have_text("The visit has ended.")
    assert in_thread(_status, visit_id=visit.pk) == VisitStatus.COMPLETED


def _queue_setup():
    physician = PhysicianFactory(email="dr.queue@example.org", serves_on_demand=True)
    urgent = visit_join_on_demand(
        patient=PatientFactory(first_name="Vera", last_name="Ahead"),
        reason="Chest tightness",
        red_flags=["chest_pain"],
    )
    calm = visit_join_on_demand(
        patient=PatientFactory(first_name="Cal", last_name="Calm"), reason="Repeat prescription"
    )
    return physician, urgent, calm


def test_admitting_out_of_order_asks_why_and_keeps_the_reason(live_asgi, browser):
    physician, urgent, calm = in_thread(_queue_setup)
    page = browser.new_context().new_page()
    sign_in(page, live_asgi, physician.email, PASSWORD)
    page.goto(f"{live_asgi}/queue/")
    page.locator(f"tr[data-visit='{calm.pk}']").get_by_role("button", name="Admit").click()

    expect(page.locator("#admit-question")).to_have_text(
        "Why admit this patient before Vera Ahead, who is Very urgent?"
    )
    expect(page.get_by_role("button", name="Admit Vera Ahead")).to_be_visible()
    _shot(page, "6-admit-reason")
    page.get_by_label("Your reason").fill("Vera is with the nurse for an ECG first")
    page.get_by_role("button", name="Admit Cal Calm").click()
    page.wait_for_url(f"**/visits/{calm.pk}/room/")

    def recorded():
        skip = QueueSkip.objects.get(visit_id=calm.pk)
        return skip.passed_over_id, skip.reason

    assert in_thread(recorded) == (urgent.pk, "Vera is with the nurse for an ECG first")
