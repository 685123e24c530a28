"""The whole visit, patient and physician side by side, reached by clicking only.

Join the queue with a red flag → consent → photo of a melanoma → device check → wait → admitted →
call (the patient's microphone speaks a red-flag sentence) → hang-up → note review with drafting
progress → sign → the patient is told live and reads the after-visit summary.

A real worker runs the real skin model, Whisper (tiny.en) and the note engine. On every patient
page and every frame of every patient socket, no model output appears before the physician signs:
no diagnosis, probability, AI urgency or its reason, no transcript or red-flag event.
"""

import json
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import in_thread, sign_in
from tests.factories import PASSWORD, PatientFactory, PhysicianFactory, open_every_day
from tests.workers import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow]

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MELANOMA = FIXTURES / "vision" / "ham_mel.jpg"
CONNECTED = "() => window.__consultPeer && window.__consultPeer.connectionState === 'connected'"

# Words that only the AI (or a clinician's triage) would put on a page.
MODEL_WORDS = re.compile(
    r"melanoma|nev(us|i)|carcinoma|keratos|dermatofibroma|vascular lesion|probabilit|"
    r"very urgent|immediate|refer urgently|heat map|patient said|photo triage|\d+ ?%",
    re.IGNORECASE,
)
# Socket frames a patient may receive; anything else (alert, transcript.updated, note.drafted,
# note.section, photos, photo_analysed, urgency, note_drafted, note_section) is a leak.
PATIENT_QUEUE_EVENTS = {
    "line_moved",
    "booked",
    "checked_in",
    "cancelled",
    "rescheduled",
    "reassigned",
    "no_show",
    "admitted",
    "ended",
    "summary_ready",
}
STAFF_ONLY_FRAMES = {"alert", "transcript.updated", "note.drafted", "note.section"}


def _people():
    physician = PhysicianFactory(
        email="dr.journey@example.org", last_name="Journey", serves_on_demand=True
    )
    open_every_day(physician)
    patient = PatientFactory(email="pat.journey@example.org", last_name="Walker")
    return physician, patient


def _analysis_of_visit(patient_email):
    from triage.models import PhotoAnalysis

    analysis = PhotoAnalysis.objects.filter(photo__visit__patient__email=patient_email).first()
    return None if analysis is None else (analysis.urgency, analysis.probabilities)


def _record_patient_frames(context, frames: list) -> None:
    def on_socket(socket):
        socket.on("framereceived", lambda payload: frames.append((socket.url, payload)))

    context.on("websocket", lambda page_socket: on_socket(page_socket))


def _shot(page, name: str) -> None:
    """A screenshot for a person to look at, when SCREENSHOT_DIR is set."""
    if os.environ.get("SCREENSHOT_DIR"):
        page.screenshot(path=str(Path(os.environ["SCREENSHOT_DIR"]) / f"journey-{name}.png"))


def _assert_no_leak(page, frames) -> None:
    text = page.locator("main").inner_text()
    found = MODEL_WORDS.search(text)
    assert found is None, f"model output {found.group(0)!r} on the patient's page {page.url}"
    for url, payload in frames:
        message = json.loads(payload)
        if "/ws/visits/" in url:
            assert set(message) <= {"type", "event", "t"}, message
            if message["type"] == "queue.changed":
                assert message["event"] in PATIENT_QUEUE_EVENTS, (url, message)
        assert message.get("type") not in STAFF_ONLY_FRAMES, (url, message)
        if message.get("type") != "signal":  # SDP and ICE: random tokens, no health data
            assert not MODEL_WORDS.search(payload), (url, payload)


def test_a_visit_from_booking_to_summary_by_clicking(
    live_asgi, tiny_worker, browser, speaking_patient_browser
):
    physician, patient = in_thread(_people)
    frames: list = []

    # --- The patient joins the queue with a red flag, consents, sends a photo ----------------
    patient_context = speaking_patient_browser.new_context()
    _record_patient_frames(patient_context, frames)
    me = patient_context.new_page()
    sign_in(me, live_asgi, patient.email, PASSWORD)
    me.get_by_role("link", name="Book a visit").first.click()
    me.get_by_role("link", name="Join the queue").click()
    me.get_by_label("Reason for visit").fill("A mole on my back has changed")
    me.get_by_label("Chest pain or pressure").check()
    me.get_by_role("button", name="Join the queue").click()
    expect(me.get_by_text("You are number 1 in line.")).to_be_visible()
    _assert_no_leak(me, frames)

    me.get_by_role("link", name="Recording and AI consent").click()
    for group in me.locator("fieldset").all():
        group.get_by_label("Yes").check()
    me.get_by_role("button", name="Save my choices").click()
    expect(me.get_by_text("Your choices are saved.")).to_be_visible()

    me.get_by_role("link", name="Add photos of a skin spot or wound").click()
    me.get_by_label("Skin lesion (mole, spot, rash)").check()
    me.get_by_label("Where on your body?").fill("upper back")
    me.get_by_label("Photos (1 to 3)").set_input_files(MELANOMA)
    me.get_by_role("button", name="Send photos").click()
    expect(me.locator(".photo-status").first).to_contain_text("your physician will review it")
    _assert_no_leak(me, frames)

    # The real skin model analyses the photo in the worker: the AI now holds an opinion.
    urgency, probabilities = wait_for(
        lambda: in_thread(_analysis_of_visit, patient_email=patient.email), timeout=180
    )
    assert probabilities, "the skin model produced no probabilities"
    me.get_by_role("link", name="Back to the visit").click()
    expect(me.get_by_text("You are number 1 in line.")).to_be_visible()
    _assert_no_leak(me, frames)
    me.get_by_role("link", name="Your photos").click()
    expect(me.locator(".photo-status").first).to_contain_text("your physician will review it")
    _assert_no_leak(me, frames)
    _shot(me, "1-patient-photos-after-analysis")

    me.get_by_role("link", name="Back to the visit").click()
    me.get_by_role("link", name="Check your camera, microphone and connection").click()
    expect(me.locator("#preview")).to_be_visible()
    me.go_back()
    expect(me.get_by_text("You are number 1 in line.")).to_be_visible()
    _assert_no_leak(me, frames)

    # --- The physician admits from the queue: both are in the call -----------------------------
    doctor = browser.new_context().new_page()
    sign_in(doctor, live_asgi, physician.email, PASSWORD)
    doctor.get_by_role("link", name="My queue").click()
    row = doctor.locator("table.queue tbody tr", has_text="Walker")
    expect(row).to_be_visible()
    row.get_by_role("button", name="Admit").click()
    doctor.wait_for_url(re.compile(r"/room/$"))
    me.wait_for_url(re.compile(r"/room/$"), timeout=60_000)
    doctor.wait_for_function(CONNECTED, timeout=60_000)
    me.wait_for_function(CONNECTED, timeout=60_000)
    # The patient speaks; their chunks reach the worker, the physician's transcript fills in.
    me.wait_for_function("() => window.__recorder && window.__recorder.sent >= 2", timeout=60_000)
    doctor.wait_for_function(
        "() => /chest|pain|penicillin|morning/i.test("
        "document.getElementById('transcript-live').textContent)",
        timeout=180_000,
        polling=1000,
    )
    assert me.locator("#transcript-panel").count() == 0
    _assert_no_leak(me, frames)

    # --- Hang-up lands the physician on the note review, which waits for the draft ------------
    _shot(doctor, "2-physician-room")
    doctor.get_by_role("button", name="End visit").click()
    confirm = doctor.get_by_role("dialog")
    if confirm.count():
        confirm.get_by_role("button", name=re.compile("End visit|End", re.I)).last.click()
    doctor.wait_for_url(re.compile(r"/note/$"), timeout=30_000)
    _shot(doctor, "3-physician-note-progress")
    sign_button = doctor.get_by_role("button", name="Save and sign")
    expect(sign_button).to_be_visible(timeout=240_000)

    # The patient, back on their visit page, is told the visit is being written up.
    me.wait_for_url(re.compile(r"/visits/\d+/$"), timeout=30_000)
    expect(me.get_by_text("Your physician is writing up the visit")).to_be_visible()
    _assert_no_leak(me, frames)
    _shot(me, "4-patient-visit-ended")
    _shot(doctor, "5-physician-draft")

    sign_button.click()
    expect(doctor.get_by_text("The note is signed.")).to_be_visible()
    expect(doctor.get_by_role("link", name="Next patient")).to_be_visible()
    _shot(doctor, "6-physician-signed")

    # --- The patient learns live that the summary is ready, and reads it ----------------------
    expect(me.get_by_role("link", name="Read it")).to_be_visible(timeout=60_000)
    _shot(me, "7-patient-summary-ready")
    me.get_by_role("link", name="Read it").click()
    expect(me.get_by_role("heading", name="Your after-visit summary")).to_be_visible()
    expect(me.get_by_text("From the note signed by")).to_be_visible()
    _shot(me, "8-patient-summary")
    # Who opened my record, after a whole visit: plain words, one screen or two, not 4,600 px.
    me.get_by_role("link", name="Who opened my record").click()
    expect(me.get_by_role("heading", name="Who opened my record")).to_be_visible()
    access = me.locator("main").inner_text()
    assert "Journey" in access, access
    assert not re.search(r"\b[a-z]+_[a-z_]+ \d+\b", access), access  # no "queue_entry 6"
    height = me.evaluate("document.documentElement.scrollHeight")
    assert height < 2000, f"the record-access page is {height} px tall after one visit"
    _shot(me, "9-patient-record-access")

    # The frames the patient's sockets carried, all along, held no staff-only event.
    for url, payload in frames:
        assert json.loads(payload).get("type") not in STAFF_ONLY_FRAMES, (url, payload)
