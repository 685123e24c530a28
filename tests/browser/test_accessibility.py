"""axe-core finds no WCAG 2.1 A/AA violations on any page, for anyone signed out and each role.

Every HTML page of the app is opened with real content (intake with red flags, analysed photos,
a transcript, a draft and a signed note, chat, audit events, queues with rows), plus the pages a
form shows after a POST (errors, lockout, rate limit, the admit-reason question). Fragments that
live pages re-fetch are checked inside their pages; the Django admin, JSON and files are not
pages of ours. axe-core comes from npm (``make axe``, pinned in tests/browser/axe/).
"""

import io
import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from PIL import Image

from tests.browser.conftest import in_thread, sign_in
from tests.factories import PASSWORD, AdminFactory, PatientFactory, PhysicianFactory, open_every_day

AXE_JS = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
SETTLE_JS = Path(__file__).parent / "axe" / "settle.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
IDREF_RULES = {"aria-valid-attr-value"}
SHOTS = Path(os.environ["SCREENSHOT_DIR"]) if os.environ.get("SCREENSHOT_DIR") else None

DIALOGUE = [
    ("physician", "What brings you in today?"),
    ("patient", "I've had a cough and a fever for three days."),
    ("physician", "Are you taking any medications?"),
    ("patient", "I take lisinopril 10 mg once a day for my blood pressure."),
    ("physician", "Any allergies to medications?"),
    ("patient", "Yes, I'm allergic to penicillin, it gives me a rash."),
    ("physician", "I'll start you on azithromycin 500 mg once daily for five days."),
    ("physician", "If you get short of breath, go to the emergency department."),
]

# Routes that are no page of their own: fragments their live page re-fetches (checked inside it),
# JSON, and files.
NOT_PAGES = {
    "home",  # a redirect to the role's first page
    "healthz",
    "metrics",
    "consults:visit_place",
    "consults:chat",
    "consults:chat_attachment",
    "consults:note_progress",
    "consults:notes_to_sign",
    "consults:note_fhir",
    "consults:transcript_live",
    "consults:transcript_status",
    "consults:audio_chunk_file",
    "triage:queue_partial",
    "triage:board_partial",
    "triage:photo_image",
}

# Pages by role: (name in the report, path with {placeholders} filled from the world's ids).
PAGES = {
    "anon": [
        ("login", "/accounts/login/"),
        ("signup", "/accounts/signup/"),
        ("signup sent", "/accounts/signup/sent/"),
        ("activation link", "/accounts/activate/{activation}/"),
        ("activation link, bad", "/accounts/activate/MQ/bad-token/"),
        ("password reset", "/accounts/password-reset/"),
        ("password reset sent", "/accounts/password-reset/sent/"),
        ("password reset link", "/accounts/reset/{reset}/"),
        ("password reset link, bad", "/accounts/reset/MQ/bad-token/"),
        ("password reset done", "/accounts/reset/done/"),
        ("404", "/no-such-page/"),
    ],
    "patient": [
        ("visit list", "/visits/"),
        ("book", "/visits/book/"),
        ("book on demand", "/visits/book/on-demand/"),
        ("book a slot", "/visits/book/{doctor}/"),
        ("visit in consult, left the call", "/visits/{live}/"),
        ("visit booked", "/visits/{booked}/"),
        ("visit signed", "/visits/{signed}/"),
        ("reschedule", "/visits/{booked}/reschedule/"),
        ("consent", "/visits/{live}/consent/"),
        ("device check", "/visits/{live}/device-check/"),
        ("room", "/visits/{live}/room/"),
        ("room ended", "/visits/{signed}/room/"),
        ("photos", "/visits/{live}/photos/"),
        ("photo add", "/visits/{live}/photos/add/"),
        ("summary", "/visits/{signed}/summary/"),
        ("summary not ready", "/visits/{drafted}/summary/"),
        ("record access", "/accounts/record-access/"),
        ("privacy", "/accounts/privacy/"),
        ("erasure request", "/accounts/privacy/erasure/{erasure}/"),
        ("2FA setup", "/accounts/2fa/setup/"),
        ("403", "/audit/"),
        ("404", "/visits/999999/"),
    ],
    "physician": [
        ("queue", "/queue/"),
        ("availability", "/availability/"),
        ("visit waiting", "/visits/{waiting}/"),
        ("visit signed", "/visits/{signed}/"),
        ("room", "/visits/{live}/room/"),
        ("device check", "/visits/{live}/device-check/"),
        ("photos", "/visits/{live}/photos/"),
        ("photo add", "/visits/{live}/photos/add/"),
        ("transcript", "/visits/{live}/transcript/"),
        ("note drafting", "/visits/{live}/note/"),
        ("note draft", "/visits/{drafted}/note/"),
        ("note signed", "/visits/{signed}/note/"),
        ("2FA setup", "/accounts/2fa/setup/"),
        ("403", "/audit/"),
        ("404", "/visits/999999/"),
    ],
    "admin": [
        ("board", "/board/"),
        ("audit log", "/audit/"),
        ("erasure requests", "/privacy/erasure-requests/"),
        ("erasure request", "/accounts/privacy/erasure/{erasure}/"),
        ("visit waiting", "/visits/{waiting}/"),
        ("visit signed", "/visits/{signed}/"),
        ("photos", "/visits/{live}/photos/"),
        ("transcript", "/visits/{live}/transcript/"),
        ("note draft", "/visits/{drafted}/note/"),
        ("note signed", "/visits/{signed}/note/"),
        ("2FA setup", "/accounts/2fa/setup/"),
        ("403", "/visits/"),
        ("404", "/no-such-page/"),
    ],
}


def _jpeg(color=(180, 120, 100)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), color).save(buffer, "JPEG")
    return buffer.getvalue()


def _transcribe(visit, patient, physician) -> None:
    from consults.models import AudioChunk, ChunkStatus, Recording, TranscriptSegment

    recordings = {
        speaker: Recording.objects.create(visit=visit, speaker=speaker, user=user)
        for speaker, user in (("physician", physician), ("patient", patient))
    }
    for index, (speaker, text) in enumerate(DIALOGUE):
        chunk = AudioChunk.objects.create(
            recording=recordings[speaker],
            index=index,
            start_s=index * 5.0,
            path="x",
            content_type="audio/ogg",
            sha256="0" * 64,
            size=1,
            status=ChunkStatus.DONE,
        )
        TranscriptSegment.objects.create(
            visit=visit,
            chunk=chunk,
            speaker=speaker,
            start_s=index * 5.0,
            end_s=index * 5.0 + 4,
            text=text,
            avg_logprob=-0.2 if index != 3 else -1.5,  # one line to check
            no_speech_prob=0.01,
        )


def _photos(visit) -> None:
    from telehealth.private_media import private_save
    from triage.models import Photo, PhotoAnalysis, PhotoConcern

    for kind, site, analysis in (
        (
            "skin",
            "back",
            {
                "label": "mel",
                "probabilities": {"mel": 0.91, "nv": 0.09},
                "urgency": "very_urgent",
                "urgency_reason": "Possible melanoma (probability 91%): refer urgently.",
            },
        ),
        (
            "wound",
            "heel",
            {"urgency": "standard", "urgency_reason": "Wound outlined.", "area_px": 1200},
        ),
    ):
        concern = PhotoConcern.objects.create(patient=visit.patient, kind=kind, body_site=site)
        photo = Photo.objects.create(
            visit=visit,
            concern=concern,
            uploaded_by=visit.patient,
            file_path=private_save(category="photos", data=_jpeg(), suffix=".jpg"),
            sha256="0" * 64,
            width=64,
            height=64,
            quality_score=0.55,
            quality_flags=["blurred"],
            quality_checks={"blurred": 0.55, "too_dark": 1.0},
            status=Photo.Status.ANALYSED,
            scale_px_per_cm=20.0 if kind == "wound" else None,
        )
        PhotoAnalysis.objects.create(photo=photo, model_version="test", can_assess=True, **analysis)


def _world() -> dict:
    """Patients, a physician and an administrator, with a visit in every state that has a page."""
    from consults.booking import services as booking_services
    from consults.models import ChatMessage, RoomPresence
    from consults.notes import services as clinical_notes
    from consults.room import services as room_services
    from telehealth.audit import audit_record
    from telehealth.models import AuditAction, ErasureRequest, User
    from telehealth.selectors import activation_tokens
    from triage.models import UrgencyChange
    from triage.services import visit_urgency_raise

    patient = PatientFactory(email="pat.axe@example.org", first_name="Ada", last_name="Lovelace")
    others = [PatientFactory(email=f"pat.axe{i}@example.org") for i in range(3)]
    doctor = PhysicianFactory(email="dr.axe@example.org", serves_on_demand=True)
    admin = AdminFactory(email="admin.axe@example.org")
    open_every_day(doctor)
    consent = {"recording": True, "ai_notes": True, "ai_photos": True}

    # Signed: consult done, transcribed, drafted and signed (summary ready).
    signed = booking_services.visit_join_on_demand(patient=patient, reason="Cough and fever")
    signed = room_services.visit_admit(visit=signed, physician=doctor)
    room_services.consent_record(visit=signed, patient=patient, choices=consent)
    _transcribe(signed, patient, doctor)
    room_services.visit_end(visit=signed, actor=doctor)
    clinical_notes.note_sign(note=clinical_notes.note_draft(visit_id=signed.pk), physician=doctor)

    # Drafted: another finished consult whose note waits for review.
    drafted = booking_services.visit_join_on_demand(patient=others[0], reason="Sore throat")
    drafted = room_services.visit_admit(visit=drafted, physician=doctor)
    room_services.consent_record(visit=drafted, patient=others[0], choices=consent)
    _transcribe(drafted, others[0], doctor)
    room_services.visit_end(visit=drafted, actor=doctor)
    clinical_notes.note_draft(visit_id=drafted.pk)

    # Live: the patient in the consult room, with red flags, photos, chat and a transcript.
    live = booking_services.visit_join_on_demand(
        patient=patient,
        reason="Mole on my back",
        symptoms="It grew and bleeds a little.",
        symptom_duration="Two weeks",
        red_flags=["severe_pain"],
    )
    live = room_services.visit_admit(visit=live, physician=doctor)
    room_services.consent_record(visit=live, patient=patient, choices=consent)
    _photos(live)
    visit_urgency_raise(
        visit=live,
        level="very_urgent",
        reason="Photo triage (back): Possible melanoma (probability 91%): refer urgently.",
        source=UrgencyChange.Source.PHOTO,
    )
    _transcribe(live, patient, doctor)
    room_services.chat_post(visit=live, sender=patient, text="Hello, can you see me?")
    room_services.chat_post(
        visit=live, sender=doctor, text="Yes, clearly. Show me the mole, please."
    )
    ChatMessage.objects.create(
        visit=live,
        sender=patient,
        text="Here it is",
        attachment_path=live.photos.first().file_path,
        attachment_name="mole.jpg",
        attachment_type="image/jpeg",
    )

    # The patient hung up (the visit page offers to rejoin rather than taking them back in).
    RoomPresence.objects.create(
        visit=live, user=patient, channel_name="axe", left_at=timezone.now()
    )

    # Booked: a slot tomorrow, to reschedule.
    tomorrow = timezone.now() + timedelta(days=1)
    start = tomorrow.replace(hour=10, minute=0, second=0, microsecond=0)
    booked = booking_services.visit_book(
        patient=patient, physician=doctor, start=start, reason="Check-up"
    )

    # Waiting: rows in the queue and on the board, a very urgent one ahead of a standard one.
    waiting = [
        booking_services.visit_join_on_demand(
            patient=others[1], reason="Chest pain", red_flags=["chest_pain"]
        ),
        booking_services.visit_join_on_demand(patient=others[2], reason="Rash"),
    ]

    for event in range(3):
        audit_record(
            actor=(doctor, admin, doctor)[event],
            action=AuditAction.READ,
            object_type="visit",
            object_id=live.pk,
            patient=patient,
        )
    erasure = ErasureRequest.objects.create(patient=patient)
    pending = User.objects.create_user(
        email="new.axe@example.org", password=PASSWORD, is_active=False
    )
    uid = urlsafe_base64_encode(force_bytes(pending.pk))
    patient_uid = urlsafe_base64_encode(force_bytes(patient.pk))
    return {
        "emails": {
            "patient": patient.email,
            "physician": doctor.email,
            "admin": admin.email,
        },
        "doctor": doctor.pk,
        "live": live.pk,
        "booked": booked.pk,
        "booked_day": start.date().isoformat(),
        "signed": signed.pk,
        "drafted": drafted.pk,
        "waiting": waiting[0].pk,
        "rash": waiting[1].pk,
        "erasure": erasure.pk,
        "activation": f"{uid}/{activation_tokens.make_token(pending)}",
        "reset": f"{patient_uid}/{default_token_generator.make_token(patient)}",
    }


def _confirm_totp(email: str) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    TOTPDevice.objects.filter(user__email=email).update(confirmed=True)


def _axe(page, where: str) -> list[str]:
    """axe's WCAG 2.1 A/AA violations on the page, one readable line per node.

    Live regions are checked once filled, and disclosures opened, so that what they hold (the
    queue's rows, the 'Change urgency' forms) is checked too: axe skips hidden content.
    """
    page.wait_for_function("() => window.__settled()")
    page.evaluate("() => document.querySelectorAll('details').forEach(d => { d.open = true; })")
    page.add_script_tag(path=str(AXE_JS))
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_TAGS
    )
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        name = where.replace(" ", "-").replace("/", "-").replace(",", "")
        page.screenshot(path=str(SHOTS / f"axe-{name}.png"), full_page=True)
    # axe leaves an aria-describedby that points nowhere "to review"; it is a plain defect here.
    dangling = [v for v in result["incomplete"] if v["id"] in IDREF_RULES]
    # axe 4.7+ no longer reports duplicate ids; a label or aria-* reference then finds the wrong
    # element (one shared id_physician in every board row named only the first select).
    duplicates = page.evaluate(
        "() => { const seen = {}; for (const el of document.querySelectorAll('[id]')) "
        "seen[el.id] = (seen[el.id] || 0) + 1; "
        "return Object.keys(seen).filter(id => seen[id] > 1); }"
    )
    return [
        f"{where}: {v['id']} ({v['impact']}): {v['help']} — {node['target']}"
        f"\n    {node['failureSummary'].replace(chr(10), ' ')}"
        for v in result["violations"] + dangling
        for node in v["nodes"]
    ] + [f"{where}: duplicate id {dupe!r}" for dupe in duplicates]


def _visit_all(page, base: str, role: str, ids: dict) -> list[str]:
    found = []
    for name, path in PAGES[role]:
        page.goto(base + path.format(**ids), wait_until="load")
        found += _axe(page, f"{role} {name} ({path})")
    return found


def _submit(page, button) -> None:
    """Click a submit button (a name or a locator) and wait for the page it leads to."""
    if isinstance(button, str):
        button = page.get_by_role("button", name=button)
    with page.expect_navigation(wait_until="load"):
        button.click()


def _anon_states(page, base: str, ids: dict) -> list[str]:
    """Sign-up with errors, a wrong password, the lockout, the rate limit."""
    found = []
    page.goto(f"{base}/accounts/signup/")
    page.locator("form").evaluate("form => { form.noValidate = true; }")
    _submit(page, "Create account")
    found += _axe(page, "anon signup with errors")
    page.goto(f"{base}/accounts/login/")
    for attempt in range(5):
        page.get_by_label("Email").fill("nobody.axe@example.org")
        page.get_by_label("Password").fill("wrong password")
        _submit(page, "Sign in")
        if attempt == 0:
            found += _axe(page, "anon login with a wrong password")
    found += _axe(page, "anon locked out")
    page.goto(f"{base}/accounts/password-reset/")
    page.get_by_label("Email").fill("pat.axe@example.org")
    _submit(page, "Send the link")
    found += _axe(page, "anon rate limited")
    return found


def _two_factor_verify(page, base: str, role: str, ids: dict) -> list[str]:
    in_thread(_confirm_totp, email=ids["emails"][role])
    page.goto(f"{base}/accounts/2fa/verify/")
    return _axe(page, f"{role} 2FA verify")


def _patient_states(page, base: str, ids: dict) -> list[str]:
    """Booking with errors, the same-day question, a page with a message after saving."""
    found = _two_factor_verify(page, base, "patient", ids)
    # The day of the booked visit: a second one that day asks for confirmation.
    page.goto(f"{base}/visits/book/{ids['doctor']}/?day={ids['booked_day']}")
    _submit(page, "Book visit")
    found += _axe(page, "patient book a slot with errors")
    page.locator("input[name=slot]").first.check()
    page.locator("[name=reason]").fill("Follow-up")
    _submit(page, "Book visit")
    found += _axe(page, "patient book a second visit that day")
    page.goto(f"{base}/visits/{ids['live']}/consent/")
    _submit(page, "Save my choices")
    found += _axe(page, "patient consent saved (message)")
    return found


def _physician_states(page, base: str, ids: dict) -> list[str]:
    """The admit-reason question: admitting the rash before the chest pain asks why."""
    found = _two_factor_verify(page, base, "physician", ids)
    page.goto(f"{base}/queue/")
    row = page.locator(f"tr[data-visit='{ids['rash']}']")
    _submit(page, row.get_by_role("button", name="Admit"))
    return found + _axe(page, "physician admit reason")


def _admin_states(page, base: str, ids: dict) -> list[str]:
    return _two_factor_verify(page, base, "admin", ids)


# What each role sees only after a POST (or a second step), checked after its pages.
STATES = {
    "anon": _anon_states,
    "patient": _patient_states,
    "physician": _physician_states,
    "admin": _admin_states,
}


class _AnyIds(dict):
    def __missing__(self, key: str) -> str:
        return "MQ/token" if key in ("activation", "reset") else "1"


def test_every_html_page_is_checked():
    """A GET route added without a row here (or in NOT_PAGES) fails."""
    from django.urls import Resolver404, resolve

    from tests.test_permission_matrix import MATRIX

    checked = set()
    for pages in PAGES.values():
        for _name, path in pages:
            try:
                match = resolve(path.format_map(_AnyIds()))
            except Resolver404:
                continue
            checked.add(match.view_name)
    checked.add("two_factor_verify")  # once a device is confirmed, in STATES
    gets = {route.split("#")[0] for route, (method, *_rest) in MATRIX.items() if method == "get"}
    assert checked == gets - NOT_PAGES


@pytest.mark.browser
@pytest.mark.parametrize("role", list(PAGES))
def test_no_axe_violations_on_any_page(live_asgi, browser, settings, role):
    assert AXE_JS.exists(), "axe-core is missing: run `make axe`"
    settings.PASSWORD_RESET_RATE_PER_HOUR = 0  # any reset request: "Too many requests"
    ids = in_thread(_world)
    # The app's CSP allows no inline script; axe is injected as one.
    context = browser.new_context(bypass_csp=True)
    context.add_init_script(path=str(SETTLE_JS))
    page = context.new_page()
    try:
        if role != "anon":
            sign_in(page, live_asgi, ids["emails"][role], PASSWORD)
        found = _visit_all(page, live_asgi, role, ids)
        found += STATES[role](page, live_asgi, ids)
    finally:
        context.close()
    assert not found, f"{len(found)} axe violation(s):\n" + "\n".join(found)
