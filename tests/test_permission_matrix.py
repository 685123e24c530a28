"""Every route × every role, declared in one table and checked by one parametrized test.

Outcomes: "ok" (the view ran for this user), "deny" (403/404, nothing shown), "login" (sent to
sign in). A route added without a row here fails ``test_every_route_has_a_row``.
"""

import io

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.urls import URLResolver, get_resolver, reverse
from PIL import Image

from consults.booking import services as booking_services
from consults.models import (
    AudioChunk,
    ChatMessage,
    ChunkStatus,
    ClinicalNote,
    Recording,
    TranscriptSegment,
)
from consults.room import services as room_services
from telehealth.asgi import application
from telehealth.models import ErasureRequest
from telehealth.private_media import private_save
from tests.factories import AdminFactory, PatientFactory, PhysicianFactory, open_every_day
from triage.models import Photo, PhotoAnalysis, PhotoConcern

ROLES = ("anon", "patient_a", "patient_b", "doctor_x", "doctor_y", "admin")
Y, D, L = "ok", "deny", "login"  # Y: yes, the view ran for this user

# route name: (method, url kwargs builder, outcomes in ROLES order)
MATRIX = {
    "home": ("get", {}, (L, Y, Y, Y, Y, Y)),
    "healthz": ("get", {}, (Y, Y, Y, Y, Y, Y)),
    "metrics": ("get", {}, (D, D, D, D, D, Y)),
    "login": ("get", {}, (Y, Y, Y, Y, Y, Y)),
    "logout": ("post", {}, (L, L, L, L, L, L)),
    "signup": ("get", {}, (Y, Y, Y, Y, Y, Y)),
    "signup_sent": ("get", {}, (Y, Y, Y, Y, Y, Y)),
    "signup_activate": ("get", {"uidb64": "MQ", "token": "bad-token"}, (Y, Y, Y, Y, Y, Y)),
    "password_reset": ("get", {}, (Y, Y, Y, Y, Y, Y)),
    "password_reset_done": ("get", {}, (Y, Y, Y, Y, Y, Y)),
    "password_reset_confirm": ("get", {"uidb64": "MQ", "token": "bad-token"}, (Y, Y, Y, Y, Y, Y)),
    "password_reset_complete": ("get", {}, (Y, Y, Y, Y, Y, Y)),
    "two_factor_setup": ("get", {}, (L, Y, Y, Y, Y, Y)),
    "two_factor_verify": ("get", {}, (L, Y, Y, Y, Y, Y)),
    "record_access": ("get", {}, (L, Y, Y, D, D, D)),
    "audit_log": ("get", {}, (L, D, D, D, D, Y)),
    "privacy": ("get", {}, (L, Y, Y, D, D, D)),
    "erasure_request": ("get", {"request_id": "e"}, (L, Y, D, D, D, Y)),
    "erasure_requests": ("get", {}, (L, D, D, D, D, Y)),
    "erasure_process": ("post", {"request_id": "e"}, (L, D, D, D, D, Y)),
    "consults:visit_list": ("get", {}, (L, Y, Y, D, D, D)),
    "consults:book_start": ("get", {}, (L, Y, Y, D, D, D)),
    "consults:book_on_demand": ("get", {}, (L, Y, Y, D, D, D)),
    "consults:book_slot": ("get", {"physician_id": "x"}, (L, Y, Y, D, D, D)),
    "consults:visit_detail": ("get", {"visit_id": "v"}, (L, Y, D, Y, D, Y)),
    "consults:visit_place": ("get", {"visit_id": "v"}, (L, Y, D, Y, D, Y)),
    "consults:visit_cancel": ("post", {"visit_id": "v"}, (L, Y, D, D, D, Y)),
    "consults:visit_check_in": ("post", {"visit_id": "v"}, (L, Y, D, D, D, D)),
    "consults:visit_reschedule": ("get", {"visit_id": "v"}, (L, Y, D, D, D, D)),
    "consults:availability": ("get", {}, (L, D, D, Y, Y, D)),
    "consults:note": ("get", {"visit_id": "v"}, (L, D, D, Y, D, Y)),
    "consults:note_progress": ("get", {"visit_id": "v"}, (L, D, D, Y, D, Y)),
    "consults:notes_to_sign": ("get", {}, (L, D, D, Y, Y, D)),
    "consults:note_save": ("post", {"visit_id": "v"}, (L, D, D, Y, D, D)),
    "consults:note_redraft": ("post", {"visit_id": "v"}, (L, D, D, Y, D, D)),
    "consults:note_fhir": ("get", {"visit_id": "v"}, (L, D, D, Y, D, Y)),
    "consults:summary": ("get", {"visit_id": "v"}, (L, Y, D, D, D, D)),
    "consults:admit": ("post", {"visit_id": "v"}, (L, D, D, Y, D, D)),
    "consults:room": ("get", {"visit_id": "v"}, (L, Y, D, Y, D, D)),
    "consults:end": ("post", {"visit_id": "v"}, (L, D, D, Y, D, D)),
    "consults:leave": ("post", {"visit_id": "v"}, (L, Y, D, D, D, D)),
    "consults:consent": ("get", {"visit_id": "v"}, (L, Y, D, D, D, D)),
    "consults:device_check": ("get", {"visit_id": "v"}, (L, Y, D, Y, D, D)),
    "consults:chat": ("get", {"visit_id": "v"}, (L, Y, D, Y, D, D)),
    "consults:chat_attachment": ("get", {"visit_id": "v", "message_id": "m"}, (L, Y, D, Y, D, Y)),
    "consults:audio_chunk": ("post", {"visit_id": "v"}, (L, Y, D, Y, D, D)),
    "consults:audio_upload": ("post", {"visit_id": "v"}, (L, D, D, Y, D, D)),
    "consults:audio_chunk_file": ("get", {"visit_id": "v", "chunk_id": "c"}, (L, D, D, Y, D, Y)),
    "consults:transcript": ("get", {"visit_id": "v"}, (L, D, D, Y, D, Y)),
    "consults:transcript_live": ("get", {"visit_id": "v"}, (L, D, D, Y, D, D)),
    "consults:transcript_status": ("get", {"visit_id": "v"}, (L, D, D, Y, D, Y)),
    "consults:transcript_correct": (
        "post",
        {"visit_id": "v", "segment_id": "s"},
        (L, D, D, Y, D, D),
    ),
    "consults:transcript_revert": (
        "post",
        {"visit_id": "v", "segment_id": "s", "index": 0},
        (L, D, D, Y, D, D),
    ),
    "triage:queue": ("get", {}, (L, D, D, Y, Y, D)),
    "triage:queue_partial": ("get", {}, (L, D, D, Y, Y, D)),
    "triage:board": ("get", {}, (L, D, D, D, D, Y)),
    "triage:board_partial": ("get", {}, (L, D, D, D, D, Y)),
    "triage:urgency_override": ("post", {"visit_id": "v"}, (L, D, D, Y, D, Y)),
    "triage:reassign": ("post", {"visit_id": "v"}, (L, D, D, D, D, Y)),
    "triage:no_show": ("post", {"visit_id": "v"}, (L, D, D, Y, D, Y)),
    "triage:photo_list": ("get", {"visit_id": "v"}, (L, Y, D, Y, D, Y)),
    "triage:photo_add": ("get", {"visit_id": "v"}, (L, Y, D, Y, D, D)),
    "triage:photo_review": ("post", {"photo_id": "p"}, (L, D, D, Y, D, D)),
    "triage:photo_scale": ("post", {"photo_id": "p"}, (L, D, D, Y, D, Y)),
    "triage:photo_image": ("get", {"photo_id": "p", "variant": "photo"}, (L, Y, D, Y, D, Y)),
    "triage:photo_image#heatmap": (
        "get",
        {"photo_id": "p", "variant": "heatmap"},
        (L, D, D, Y, D, Y),
    ),
}

WEBSOCKETS = {
    "/ws/queue/": (D, D, D, Y, Y, Y),
    "/ws/visits/{v}/": (D, Y, D, Y, D, Y),
    "/ws/consults/{v}/": (D, Y, D, Y, D, D),
}


def _route_names() -> set[str]:
    names: set[str] = set()

    def walk(patterns, namespace=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace == "admin":
                    continue
                walk(pattern.url_patterns, pattern.namespace or namespace)
            elif pattern.name:
                names.add(f"{namespace}:{pattern.name}" if namespace else pattern.name)

    walk(get_resolver().url_patterns)
    return names


def test_every_route_has_a_row():
    declared = {name.split("#")[0] for name in MATRIX}
    assert _route_names() == declared


@pytest.fixture
def world(db):
    """Patient A in a consult with physician X, with every kind of health data attached."""
    users = {
        "patient_a": PatientFactory(email="a@example.org"),
        "patient_b": PatientFactory(email="b@example.org"),
        "doctor_x": PhysicianFactory(email="x@example.org", serves_on_demand=True),
        "doctor_y": PhysicianFactory(email="y@example.org"),
        "admin": AdminFactory(email="admin@example.org"),
    }
    open_every_day(users["doctor_x"])
    visit = booking_services.visit_join_on_demand(patient=users["patient_a"], reason="Secret rash")
    visit = room_services.visit_admit(visit=visit, physician=users["doctor_x"])
    room_services.consent_record(
        visit=visit,
        patient=users["patient_a"],
        choices={"recording": True, "ai_notes": True, "ai_photos": True},
    )
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (180, 120, 100)).save(buffer, "JPEG")
    jpeg = private_save(category="photos", data=buffer.getvalue(), suffix=".jpg")
    message = ChatMessage.objects.create(
        visit=visit,
        sender=users["patient_a"],
        text="see attached",
        attachment_path=jpeg,
        attachment_name="a.jpg",
        attachment_type="image/jpeg",
    )
    concern = PhotoConcern.objects.create(patient=users["patient_a"], kind="skin", body_site="arm")
    photo = Photo.objects.create(
        visit=visit,
        concern=concern,
        uploaded_by=users["patient_a"],
        file_path=jpeg,
        sha256="0",
        width=32,
        height=32,
        quality_score=0.9,
        status=Photo.Status.ANALYSED,
    )
    PhotoAnalysis.objects.create(
        photo=photo,
        model_version="m",
        can_assess=True,
        urgency="standard",
        urgency_reason="benign",
        heatmap_path=jpeg,
        probabilities={"nv": 1.0},
    )
    recording = Recording.objects.create(visit=visit, speaker="patient", user=users["patient_a"])
    chunk = AudioChunk.objects.create(
        recording=recording,
        index=0,
        start_s=0,
        path=jpeg,
        content_type="audio/ogg",
        sha256="0" * 64,
        size=1,
        status=ChunkStatus.DONE,
    )
    segment = TranscriptSegment.objects.create(
        visit=visit,
        chunk=chunk,
        speaker="patient",
        start_s=0,
        end_s=2,
        text="my secret symptom",
        avg_logprob=-0.1,
        no_speech_prob=0.0,
        heard_text="my secret sympton",
        corrections=[
            {"at": 10, "heard": "sympton", "corrected": "symptom", "kind": "drug", "start": 1}
        ],
    )
    ClinicalNote.objects.create(
        visit=visit,
        status=ClinicalNote.Status.DRAFT,
        version=1,
        content={"sections": {"plan": [{"text": "rest", "evidence": [0]}]}, "lines": []},
    )
    ids = {
        "v": visit.pk,
        "x": users["doctor_x"].pk,
        "m": message.pk,
        "p": photo.pk,
        "c": chunk.pk,
        "s": segment.pk,
        "e": ErasureRequest.objects.create(patient=users["patient_a"]).pk,
    }
    return users, ids


def _classify(response) -> str:
    status = response.status_code
    assert status < 500, f"server error {status}"
    if status in (401, 403, 404):
        return D
    if status == 302 and response["Location"].startswith(reverse("login")):
        return L
    return Y


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", sorted(MATRIX))
def test_route_role_outcome(client, world, route, role):
    users, ids = world
    method, kwargs, outcomes = MATRIX[route]
    url = reverse(route.split("#")[0], kwargs={k: ids.get(v, v) for k, v in kwargs.items()})
    if role != "anon":
        client.force_login(users[role])
    response = getattr(client, method)(url)
    expected = outcomes[ROLES.index(role)]
    assert _classify(response) == expected, f"{route} as {role}: HTTP {response.status_code}"
    if expected != Y:
        assert b"Secret rash" not in response.content
        assert b"my secret symptom" not in response.content


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("path", sorted(WEBSOCKETS))
async def test_socket_role_outcome(world, path, role):
    from django.contrib.auth.models import AnonymousUser

    users, ids = world
    communicator = WebsocketCommunicator(
        application, path.format(v=ids["v"]), headers=[(b"origin", b"http://localhost")]
    )
    communicator.scope["user"] = AnonymousUser() if role == "anon" else users[role]
    connected, _code = await communicator.connect()
    expected = WEBSOCKETS[path][ROLES.index(role)]
    assert (Y if connected else D) == expected, f"{path} as {role}"
    if connected:
        await communicator.disconnect()
    await sync_to_async(lambda: None)()
