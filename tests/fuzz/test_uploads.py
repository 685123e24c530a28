"""The upload endpoints (consult audio chunks, audio files added after the visit, chat
attachments, patient photos) answer fuzzed files, names, content types, form fields and raw
bodies with their documented statuses and a clear error, never a 500, and store nothing that is
not audio, a photo or a PDF."""

import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.urls import reverse
from hypothesis import event, example, given
from hypothesis import strategies as st
from PIL import Image

from consults.booking import services as booking_services
from consults.models import AudioChunk, ChatMessage, Recording
from consults.room import services as room_services
from consults.room.attachments import MAX_ATTACHMENT_BYTES
from consults.transcripts.services import MAX_CHUNK_BYTES, MAX_UPLOAD_BYTES
from telehealth.private_media import private_read
from tests.fuzz.support import (
    IMAGE_SEEDS,
    MARKUP_NAME,
    WIDE_PNG,
    audio_bytes,
    content_types,
    file_names,
    form_text,
    fuzz_settings,
    image_bytes,
    memory_bound,
    mutated,
    rolled_back,
    tally,
    tone_wav,
)
from tests.test_permissions import login
from triage.models import Photo
from triage.photos.services import MAX_PHOTO_BYTES

# The server holds at most one photo's decode (MAX_PHOTO_DECODED_BYTES, 128 MiB; 400 MiB before
# that budget); the test client holds the 10-15 MB over-limit bodies three or four times over.
MEMORY_BOUND_MIB = 512

WAV = tone_wav()
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
CHUNK_STATUSES = {200, 201, 400, 409, 413, 415}
RECORDING_STATUSES = {302, 400, 413, 415}
CHAT_STATUSES = {201, 400}
PHOTO_STATUSES = {200, 302}  # the form page again (with the reasons) or on to the photo list


def looks_like_audio(data: bytes) -> bool:
    """The formats the README promises (wav, mp3, m4a, ogg, webm, flac), by their signatures."""
    head = data[:64]
    return (
        (head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE")
        or head[:4] in (b"OggS", b"fLaC")
        or head[4:8] == b"ftyp"
        or (head[:4] == b"\x1a\x45\xdf\xa3" and (b"webm" in head or b"matroska" in head))
        or head[:3] == b"ID3"
        or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06 != 0)
    )


def assert_clear_refusal(response) -> None:
    """A JSON error that says what is wrong, or Django's own 400 for a body it cannot parse."""
    if response["Content-Type"].startswith("application/json"):
        error = response.json().get("error")
        assert isinstance(error, str) and 0 < len(error.strip()) <= 300, response.content[:300]
    else:
        assert response.status_code == 400 and b"Bad Request" in response.content


class RawUpload(io.BytesIO):
    """A file part sent as is: SimpleUploadedFile would refuse odd names in the test itself."""

    def __init__(self, data: bytes, name: str, content_type: str):
        super().__init__(data)
        self.name, self.content_type = name, content_type


def assert_stored_jpeg_is_clean(relative: str) -> None:
    stored = Image.open(io.BytesIO(private_read(relative)))
    assert stored.format == "JPEG" and not stored.getexif()


@pytest.fixture
def in_consult(patient, physician):
    visit = booking_services.visit_join_on_demand(patient=patient, reason="Rash")
    visit = room_services.visit_admit(visit=visit, physician=physician)
    room_services.consent_record(
        visit=visit, patient=patient, choices={"recording": True, "ai_notes": True}
    )
    return visit


@pytest.fixture
def patient_client(client, patient):
    return login(client, patient)


@pytest.fixture
def physician_client(physician):
    from django.test import Client

    return login(Client(), physician)


def mostly(valid, anything):
    """About three draws in four from ``valid``, so the files, not the form, get refused.

    (st.one_of(valid, valid, valid, anything) does not weight: it merges equal branches.)
    """
    return st.integers(0, 3).flatmap(lambda n: anything if n == 3 else valid)


index_values = mostly(
    st.integers(0, 50).map(str), st.none() | form_text() | st.integers(-1, 100_001).map(str)
)


@fuzz_settings(400)
@given(
    data=mostly(audio_bytes(), st.none()),
    again=audio_bytes(),
    name=file_names(),
    content_type=content_types(),
    index=index_values,
    start_ms=index_values,
)
@example(  # one byte over the chunk limit
    data=WAV + b"\x00" * (MAX_CHUNK_BYTES + 1 - len(WAV)),
    again=WAV,
    name="big.webm",
    content_type="audio/webm",
    index="0",
    start_ms="0",
)
def test_audio_chunk_upload_answers_only_documented_statuses(
    patient_client, in_consult, data, again, name, content_type, index, start_ms
):
    tally("http: POST audio chunk")
    url = reverse("consults:audio_chunk", args=[in_consult.pk])
    fields = {k: v for k, v in {"index": index, "start_ms": start_ms}.items() if v is not None}
    if data is not None:
        fields["audio"] = RawUpload(data, name, content_type)
    with rolled_back():
        response = patient_client.post(url, fields)
        event(f"status {response.status_code}")
        assert response.status_code in CHUNK_STATUSES, response.content[:300]
        if response.status_code >= 400:
            assert_clear_refusal(response)
            assert not AudioChunk.objects.exists()
            return
        assert looks_like_audio(data) and len(data) <= MAX_CHUNK_BYTES
        assert response.json()["index"] == int(index)
        chunk = AudioChunk.objects.get()
        assert private_read(chunk.path) == data and chunk.content_type.startswith("audio/")
        # The same index again: the same bytes are a harmless repeat, others a conflict.
        fields["audio"] = RawUpload(again, name, content_type)
        second = patient_client.post(url, fields)
        if again == data:
            assert second.status_code == 200 and second.json()["duplicate"] is True
        else:
            assert second.status_code in {409, 400, 413, 415}
            assert second.status_code != 409 or looks_like_audio(again)
            assert_clear_refusal(second)
            assert AudioChunk.objects.count() == 1


# The 50 MB over-limit example: the test client builds the request body from several copies of
# it (450 MiB peak measured); the server spools it to a temporary file and answers 413 from its
# size without reading it back.
@memory_bound(640)
@fuzz_settings(200)
@given(
    data=mostly(audio_bytes(), st.none()),
    name=file_names(),
    content_type=content_types(),
    speaker=mostly(st.sampled_from(["patient", "physician"]), st.none() | form_text()),
)
@example(  # one byte over the upload limit
    data=WAV + b"\x00" * (MAX_UPLOAD_BYTES + 1 - len(WAV)),
    name="visit.wav",
    content_type="audio/wav",
    speaker="patient",
)
def test_recording_upload_answers_only_documented_statuses(
    physician_client, in_consult, data, name, content_type, speaker
):
    tally("http: POST audio file after the visit")
    fields = {"speaker": speaker} if speaker is not None else {}
    if data is not None:
        fields["audio"] = RawUpload(data, name, content_type)
    with rolled_back():
        response = physician_client.post(
            reverse("consults:audio_upload", args=[in_consult.pk]), fields
        )
        event(f"status {response.status_code}")
        assert response.status_code in RECORDING_STATUSES, response.content[:300]
        if response.status_code >= 400:
            assert_clear_refusal(response)
            assert not Recording.objects.exists()
            return
        assert speaker in ("patient", "physician")
        assert looks_like_audio(data) and len(data) <= MAX_UPLOAD_BYTES
        assert private_read(Recording.objects.get().chunks.get().path) == data


attachments = st.one_of(
    image_bytes(),
    mutated([PDF]),
    st.builds(bytes.__add__, st.just(b"%PDF-"), st.binary(max_size=128)),
)


@fuzz_settings(300)
@given(
    text=st.none() | form_text() | st.text(min_size=1990, max_size=2010),
    data=st.none() | attachments,
    name=file_names(),
    content_type=content_types(),
)
@example(text="", data=b"", name="empty.pdf", content_type="application/pdf")
@example(text="", data=WIDE_PNG, name="wide.png", content_type="image/png")  # was a 500
@example(text="hi\x00there", data=None, name="", content_type="")  # was "limited to 2,000"
@example(  # one byte over the attachment limit
    text="",
    data=PDF + b"\x00" * (MAX_ATTACHMENT_BYTES + 1 - len(PDF)),
    name="big.pdf",
    content_type="application/pdf",
)
def test_chat_attachment_answers_201_or_a_clear_400(
    patient_client, in_consult, text, data, name, content_type
):
    tally("http: POST chat message with attachment")
    fields = {"text": text} if text is not None else {}
    if data is not None:
        fields["attachment"] = RawUpload(data, name, content_type)
    with rolled_back():
        response = patient_client.post(reverse("consults:chat", args=[in_consult.pk]), fields)
        event(f"status {response.status_code}")
        assert response.status_code in CHAT_STATUSES, response.content[:300]
        if response.status_code == 400:
            assert_clear_refusal(response)
            assert not ChatMessage.objects.exists()
            if text and "\x00" in text:
                assert "2,000" not in response.json()["error"]
            return
        message = ChatMessage.objects.get()
        if not message.attachment_path:  # none sent, or a part Django drops (no usable name)
            assert message.text and not message.attachment_name
            return
        # Nothing but a PDF passed through, or a photo re-encoded to a bare JPEG, is kept.
        assert re.fullmatch(r"[\w\- ]{0,80}\.(jpg|pdf)", message.attachment_name)
        if message.attachment_type == "application/pdf":
            assert data.startswith(b"%PDF-") and private_read(message.attachment_path) == data
        else:
            assert message.attachment_type == "image/jpeg"
            assert_stored_jpeg_is_clean(message.attachment_path)


photo = st.tuples(image_bytes(), file_names(), content_types())
photo_files = mostly(st.lists(photo, min_size=1, max_size=1), st.lists(photo, max_size=4))


@fuzz_settings(200)
@given(
    files=photo_files,
    kind=mostly(st.sampled_from(["skin", "wound"]), form_text()),
    body_site=mostly(st.just("left forearm"), form_text(120)),
    duration=mostly(st.just(""), form_text()),
    area=mostly(st.none(), st.floats(allow_nan=True).map(str) | form_text()),
    ai_consent=mostly(st.sampled_from(["yes", "no", ""]), form_text()),
)
@example(
    files=[(IMAGE_SEEDS[0] + b"\x00" * MAX_PHOTO_BYTES, "big.jpg", "image/jpeg")],
    kind="skin",
    body_site="arm",
    duration="",
    area=None,
    ai_consent="no",
)
@example(  # 65,501 pixels wide: loaded, then a 500 when stored as JPEG
    files=[(WIDE_PNG, "wide.png", "image/png")],
    kind="skin",
    body_site="arm",
    duration="",
    area=None,
    ai_consent="no",
)
@example(
    files=[(b"\x89PNG\r\n\x1a\nnot really", MARKUP_NAME, "image/png")],
    kind="skin",
    body_site="arm",
    duration="",
    area=None,
    ai_consent="yes",
)
def test_photo_upload_keeps_only_clean_photos_and_says_why_others_are_refused(
    patient_client, in_consult, files, kind, body_site, duration, area, ai_consent
):
    tally("http: POST patient photos")
    fields = {"kind": kind, "body_site": body_site, "duration": duration, "ai_consent": ai_consent}
    if area is not None:
        fields["stated_area_cm2"] = area
    if files:
        fields["photos"] = [RawUpload(*item) for item in files]
    with rolled_back():
        response = patient_client.post(reverse("triage:photo_add", args=[in_consult.pk]), fields)
        event(f"status {response.status_code}")
        assert response.status_code in PHOTO_STATUSES, response.content[:300]
        stored = list(Photo.objects.all())
        for photo in stored:
            assert_stored_jpeg_is_clean(photo.file_path)
            assert 0.0 <= photo.quality_score <= 1.0
        if response.status_code == 302:
            assert stored
            return
        # The page again: the form's errors or each refused photo's reasons, escaped.
        form, rejected = response.context["form"], response.context["rejected"]
        assert form.errors or rejected
        assert all(item.reasons and all(item.reasons) for item in rejected)
        assert MARKUP_NAME.encode() not in response.content


# --- Raw bodies: broken multipart, wrong content types, too many parts -------------------------

ENDPOINTS = {
    "audio_chunk": ("consults:audio_chunk", "patient", CHUNK_STATUSES),
    "audio_upload": ("consults:audio_upload", "physician", RECORDING_STATUSES),
    "chat": ("consults:chat", "patient", CHAT_STATUSES),
    "photo_add": ("triage:photo_add", "patient", PHOTO_STATUSES | {400}),
}
VALID_MULTIPART = encode_multipart(
    BOUNDARY,
    {
        "index": "0",
        "start_ms": "0",
        "speaker": "patient",
        "text": "hello",
        "kind": "skin",
        "body_site": "arm",
        "audio": SimpleUploadedFile("a.wav", WAV, "audio/wav"),
        "attachment": SimpleUploadedFile("a.pdf", PDF, "application/pdf"),
        "photos": SimpleUploadedFile("a.jpg", IMAGE_SEEDS[0], "image/jpeg"),
    },
)
MANY_FILES = encode_multipart(
    BOUNDARY, {"photos": [SimpleUploadedFile(f"{n}.jpg", b"x", "image/jpeg") for n in range(120)]}
)
MANY_FIELDS = "&".join(f"f{n}=1" for n in range(1_200)).encode()
raw_content_types = st.sampled_from(
    [
        MULTIPART_CONTENT,
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=" + "b" * 80,
        "multipart/form-data; boundary=other",
        f"multipart/form-data; boundary={BOUNDARY}; charset=utf-99",
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=nonsense",
        "application/json",
        "text/plain",
        "image/jpeg",
        "",
    ]
)


@fuzz_settings(400)
@given(
    endpoint=st.sampled_from(sorted(ENDPOINTS)),
    body=st.one_of(
        mutated([VALID_MULTIPART], head=400),
        st.sampled_from([VALID_MULTIPART, MANY_FILES, MANY_FIELDS, b"", b"{}"]),
        st.binary(max_size=512),
    ),
    content_type=raw_content_types,
)
@example(endpoint="photo_add", body=MANY_FILES, content_type=MULTIPART_CONTENT)
@example(endpoint="chat", body=MANY_FIELDS, content_type="application/x-www-form-urlencoded")
def test_raw_bodies_get_a_documented_status(
    patient_client, physician_client, in_consult, endpoint, body, content_type
):
    tally("http: raw POST bodies to the upload endpoints")
    name, role, statuses = ENDPOINTS[endpoint]
    client = patient_client if role == "patient" else physician_client
    with rolled_back():
        response = client.generic(
            "POST", reverse(name, args=[in_consult.pk]), data=body, content_type=content_type
        )
    event(f"status {response.status_code}")
    assert response.status_code in statuses | {400}, response.content[:300]
    if response.status_code >= 400:
        assert_clear_refusal(response)
