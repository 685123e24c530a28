"""Consult audio capture and transcripts: services, task function and views (fake engine).

The engine's own tests use the real model; here a fake backend, chosen through
SPEECH_BACKEND like any other, decodes the real bytes (so corrupt audio really fails) and
returns the text the test asks for. The real model runs in tests/test_transcription_worker.py.
"""

import io
import math
import struct
import wave

import pytest
from django.urls import reverse

from consults.booking import services as booking_services
from consults.models import AudioChunk, ChunkStatus, Recording, TranscriptSegment, VisitStatus
from consults.room import services as room_services
from consults.speech.audio import decode_audio
from consults.speech.factory import clear_transcribers
from consults.speech.types import Segment, Transcript, Word
from consults.transcripts import selectors as transcript_selectors
from consults.transcripts import services as transcription
from consults.transcripts import tasks as transcript_tasks
from telehealth.models import AuditAction, AuditEvent
from telehealth.private_media import private_read
from tests.test_permissions import login
from triage.models import UrgencyChange


class FakeTranscriber:
    """Decodes the audio for real, then 'hears' ``FakeTranscriber.text``."""

    text = "hello doctor"

    def __init__(self, **options):
        self.options = options

    def transcribe(self, *, audio: bytes, offset_s: float = 0.0, hotwords=None) -> Transcript:
        return self.transcribe_array(samples=decode_audio(audio), offset_s=offset_s)

    def transcribe_array(self, *, samples, offset_s: float = 0.0, hotwords=None) -> Transcript:
        duration = len(samples) / 16_000
        segments = (
            (Segment(offset_s, offset_s + duration, f" {self.text}", -0.2, 0.01),)
            if self.text
            else ()
        )
        return Transcript(
            segments=segments,
            language="en",
            duration_s=duration,
            processing_s=0.01,
            status="ok" if segments else "no_speech",
        )


def wav_bytes(seconds: float = 0.5, freq: float = 440.0) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        frames = int(16_000 * seconds)
        out.writeframes(
            b"".join(
                struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * n / 16_000)))
                for n in range(frames)
            )
        )
    return buffer.getvalue()


CORRUPT_WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 64


@pytest.fixture(autouse=True)
def fake_engine(settings):
    settings.SPEECH_BACKEND = "tests.test_transcription.FakeTranscriber"
    FakeTranscriber.text = "hello doctor"
    clear_transcribers()
    yield
    clear_transcribers()


@pytest.fixture
def in_consult(patient, physician):
    visit = booking_services.visit_join_on_demand(patient=patient, reason="Cough")
    return room_services.visit_admit(visit=visit, physician=physician)


@pytest.fixture
def consented(in_consult, patient):
    room_services.consent_record(
        visit=in_consult, patient=patient, choices={"recording": True, "ai_notes": True}
    )
    return in_consult


def post_chunk(client, visit, *, index=0, start_ms=0, data=None):
    audio = io.BytesIO(wav_bytes() if data is None else data)
    audio.name = "chunk.webm"
    return client.post(
        reverse("consults:audio_chunk", args=[visit.pk]),
        {"audio": audio, "index": index, "start_ms": start_ms},
    )


# --- Receiving chunks -------------------------------------------------------------------------


def test_chunk_is_stored_privately_and_queued_for_transcription(
    client, patient, consented, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = post_chunk(login(client, patient), consented, index=0, start_ms=5200)
    assert response.status_code == 201
    chunk = AudioChunk.objects.get()
    assert chunk.recording.speaker == "patient" and chunk.recording.source == "live"
    assert chunk.status == ChunkStatus.RECEIVED and chunk.start_s == pytest.approx(5.2)
    assert chunk.content_type == "audio/wav" and len(chunk.sha256) == 64
    assert callbacks  # the task is enqueued on commit


def test_duplicate_chunk_with_same_content_is_a_harmless_200(client, patient, consented):
    login(client, patient)
    data = wav_bytes()
    assert post_chunk(client, consented, index=3, data=data).status_code == 201
    again = post_chunk(client, consented, index=3, data=data)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert AudioChunk.objects.count() == 1


def test_different_content_for_a_stored_index_is_409(client, patient, consented):
    login(client, patient)
    post_chunk(client, consented, index=1, data=wav_bytes(freq=440))
    response = post_chunk(client, consented, index=1, data=wav_bytes(freq=880))
    assert response.status_code == 409
    assert "different content" in response.json()["error"]
    assert AudioChunk.objects.count() == 1


def test_non_audio_is_refused_by_content_not_name(client, patient, consented):
    response = post_chunk(login(client, patient), consented, data=b"%PDF-1.7 not audio at all")
    assert response.status_code == 415
    assert "not a supported audio file" in response.json()["error"]
    assert not AudioChunk.objects.exists()


def test_headerless_webm_continuation_chunk_is_refused_with_the_reason(client, patient, consented):
    response = post_chunk(login(client, patient), consented, data=b"\x1f\x43\xb6\x75" + b"\0" * 64)
    assert response.status_code == 415
    assert "without its header" in response.json()["error"]


def test_oversized_chunk_is_413(client, patient, consented):
    big = wav_bytes()[:44] + b"\0" * (transcription.MAX_CHUNK_BYTES + 1)
    response = post_chunk(login(client, patient), consented, data=big)
    assert response.status_code == 413
    assert not AudioChunk.objects.exists()


def test_missing_index_is_400(client, patient, consented):
    response = login(client, patient).post(
        reverse("consults:audio_chunk", args=[consented.pk]), {"index": "x"}
    )
    assert response.status_code == 400 and "index" in response.json()["error"]


def test_no_recording_consent_is_403_and_nothing_is_stored(client, patient, in_consult, settings):
    files_before = set(settings.PRIVATE_MEDIA_ROOT.glob("audio/*"))
    response = post_chunk(login(client, patient), in_consult)
    assert response.status_code == 403
    assert "not consented to recording" in response.json()["error"]
    assert not Recording.objects.exists() and not AudioChunk.objects.exists()
    assert set(settings.PRIVATE_MEDIA_ROOT.glob("audio/*")) == files_before


def test_withdrawn_consent_refuses_further_chunks(client, patient, consented):
    login(client, patient)
    assert post_chunk(client, consented, index=0).status_code == 201
    room_services.consent_record(visit=consented, patient=patient, choices={"recording": False})
    assert post_chunk(client, consented, index=1).status_code == 403
    assert AudioChunk.objects.count() == 1


def test_recording_without_ai_consent_is_stored_but_not_transcribed(
    client, patient, in_consult, django_capture_on_commit_callbacks
):
    room_services.consent_record(
        visit=in_consult, patient=patient, choices={"recording": True, "ai_notes": False}
    )
    with django_capture_on_commit_callbacks() as callbacks:
        assert post_chunk(login(client, patient), in_consult).status_code == 201
    chunk = AudioChunk.objects.get()
    assert chunk.status == ChunkStatus.STORED
    assert not any("transcribe" in repr(c) for c in callbacks)
    assert transcript_tasks.transcribe_chunk(chunk.pk) == "skipped"
    assert not TranscriptSegment.objects.exists()


def test_other_patient_gets_404_for_chunks_and_transcript(client, other_patient, consented):
    login(client, other_patient)
    assert post_chunk(client, consented).status_code == 404
    assert client.get(reverse("consults:transcript", args=[consented.pk])).status_code == 403
    assert AuditEvent.objects.filter(action=AuditAction.DENIED).exists()


def test_patient_cannot_read_their_own_live_transcript(client, patient, consented):
    response = login(client, patient).get(reverse("consults:transcript_live", args=[consented.pk]))
    assert response.status_code == 403


def test_other_physician_gets_404_for_the_transcript(client, other_physician, consented):
    response = login(client, other_physician).get(
        reverse("consults:transcript", args=[consented.pk])
    )
    assert response.status_code == 404


def test_next_index_continues_after_a_reload(client, patient, consented):
    login(client, patient)
    post_chunk(client, consented, index=0)
    post_chunk(client, consented, index=1)
    response = client.get(reverse("consults:audio_chunk", args=[consented.pk]))
    assert response.json() == {"next_index": 2}


def test_last_chunk_after_hang_up_is_still_accepted(client, patient, physician, consented):
    room_services.visit_end(visit=consented, actor=physician)
    assert post_chunk(login(client, patient), consented, index=0).status_code == 201


# --- The transcription task -------------------------------------------------------------------


def _chunk(visit, user, *, index=0, start_ms=0, data=None):
    return transcription.chunk_receive(
        visit=visit, user=user, index=index, start_ms=start_ms, data=data or wav_bytes()
    ).chunk


def test_task_stores_segments_on_the_consult_timeline_and_pushes_an_update(
    patient, consented, django_capture_on_commit_callbacks
):
    chunk = _chunk(consented, patient, start_ms=10_000)
    assert transcript_tasks.transcribe_chunk(chunk.pk) == ChunkStatus.DONE
    segment = TranscriptSegment.objects.get()
    assert segment.speaker == "patient" and segment.text == "hello doctor"
    assert segment.start_s == pytest.approx(10.0) and segment.end_s == pytest.approx(10.5)
    chunk.refresh_from_db()
    assert chunk.attempts == 1 and chunk.duration_s == pytest.approx(0.5)


def test_rerunning_a_chunk_never_duplicates_segments(patient, consented):
    chunk = _chunk(consented, patient)
    transcript_tasks.transcribe_chunk(chunk.pk)
    assert transcript_tasks.transcribe_chunk(chunk.pk) == "skipped"  # done: skipped
    # A redelivery of a chunk a crashed worker left half-done replaces its segments.
    AudioChunk.objects.filter(pk=chunk.pk).update(status=ChunkStatus.TRANSCRIBING)
    FakeTranscriber.text = "hello again"
    transcript_tasks.transcribe_chunk(chunk.pk)
    assert list(TranscriptSegment.objects.values_list("text", flat=True)) == ["hello again"]


def test_corrupt_chunk_fails_with_reason_and_the_others_still_transcribe(patient, consented):
    good_before = _chunk(consented, patient, index=0)
    bad = _chunk(consented, patient, index=1, start_ms=5000, data=CORRUPT_WAV)
    good_after = _chunk(consented, patient, index=2, start_ms=10_000)
    for chunk in (good_before, bad, good_after):
        transcript_tasks.transcribe_chunk(chunk.pk)
    bad.refresh_from_db()
    assert bad.status == ChunkStatus.FAILED and "wav" in bad.failure_reason
    assert TranscriptSegment.objects.count() == 2
    assert set(AudioChunk.objects.values_list("status", flat=True)) == {"done", "failed"}


def test_silence_marks_the_chunk_no_speech(patient, consented):
    FakeTranscriber.text = ""
    chunk = _chunk(consented, patient)
    assert transcript_tasks.transcribe_chunk(chunk.pk) == ChunkStatus.NO_SPEECH


def test_consent_withdrawn_before_transcription_keeps_audio_untranscribed(patient, consented):
    chunk = _chunk(consented, patient)
    room_services.consent_record(visit=consented, patient=patient, choices={"ai_notes": False})
    assert transcript_tasks.transcribe_chunk(chunk.pk) == "skipped"
    chunk.refresh_from_db()
    assert chunk.status == ChunkStatus.STORED and not TranscriptSegment.objects.exists()


def test_red_flag_in_patient_speech_raises_urgency_and_alerts(
    patient, consented, django_capture_on_commit_callbacks
):
    FakeTranscriber.text = "I have chest pain since this morning"
    chunk = _chunk(consented, patient)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        transcript_tasks.transcribe_chunk(chunk.pk)
    consented.refresh_from_db()
    assert consented.urgency == "very_urgent"
    change = UrgencyChange.objects.get(visit=consented, source="transcript")
    assert change.source == "transcript" and "chest pain" in change.reason
    assert len(callbacks) >= 2  # transcript.updated, then alert


def test_red_flag_phrases_from_the_physician_do_not_raise_urgency(physician, consented):
    FakeTranscriber.text = "any chest pain?"
    transcript_tasks.transcribe_chunk(_chunk(consented, physician).pk)
    consented.refresh_from_db()
    assert consented.urgency == "standard"


def test_transcript_completes_after_hang_up_once_every_chunk_is_done(patient, physician, consented):
    chunks = [_chunk(consented, patient, index=i, start_ms=i * 5000) for i in range(2)]
    room_services.visit_end(visit=consented, actor=physician)
    assert transcript_selectors.transcript_status(visit=consented)["state"] == "processing"
    for chunk in chunks:
        transcript_tasks.transcribe_chunk(chunk.pk)
    assert transcript_selectors.transcript_status(visit=consented)["state"] == "complete"


# --- Physician views --------------------------------------------------------------------------


def test_live_panel_merges_both_tracks_in_time_order_and_is_audited(
    client, patient, physician, consented
):
    FakeTranscriber.text = "doctor speaking"
    transcript_tasks.transcribe_chunk(_chunk(consented, physician, start_ms=1000).pk)
    FakeTranscriber.text = "patient speaking"
    transcript_tasks.transcribe_chunk(_chunk(consented, patient, start_ms=0).pk)
    response = login(client, physician).get(
        reverse("consults:transcript_live", args=[consented.pk])
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.index("patient speaking") < html.index("doctor speaking")
    assert 'data-speaker="physician"' in html
    assert AuditEvent.objects.filter(
        action=AuditAction.READ, object_type="transcript", patient=patient
    ).exists()


def test_correction_keeps_the_original_beside_it_and_is_audited(
    client, patient, physician, consented, settings
):
    settings.SPEECH_CORRECTION_THRESHOLD = 1.01  # the engine's own corrections: elsewhere
    FakeTranscriber.text = "I am allergic to penny sillin"
    transcript_tasks.transcribe_chunk(_chunk(consented, patient).pk)
    segment = TranscriptSegment.objects.get()
    login(client, physician)
    response = client.post(
        reverse("consults:transcript_correct", args=[consented.pk, segment.pk]),
        {"text": "I am allergic to penicillin"},
    )
    assert response.status_code == 302
    segment.refresh_from_db()
    assert segment.text == "I am allergic to penny sillin"
    assert segment.corrected_text == "I am allergic to penicillin"
    assert segment.corrected_by == physician and segment.corrected_at is not None
    assert AuditEvent.objects.filter(
        action=AuditAction.WRITE, object_type="transcript_segment", object_id=str(segment.pk)
    ).exists()
    page = client.get(reverse("consults:transcript", args=[consented.pk])).content.decode()
    assert "penny sillin" in page and "I am allergic to penicillin" in page


def test_admin_reads_the_transcript_page_but_cannot_correct(client, admin_user, consented):
    login(client, admin_user)
    assert client.get(reverse("consults:transcript", args=[consented.pk])).status_code == 200
    response = client.post(
        reverse("consults:transcript_correct", args=[consented.pk, 1]), {"text": "x"}
    )
    assert response.status_code == 403


def test_physician_downloads_chunk_audio_audited_and_patient_cannot(
    client, patient, physician, consented
):
    chunk = _chunk(consented, patient)
    url = reverse("consults:audio_chunk_file", args=[consented.pk, chunk.pk])
    response = login(client, physician).get(url)
    assert response.status_code == 200 and response["Cache-Control"] == "private, no-store"
    assert AuditEvent.objects.filter(object_type="audio", object_id=str(chunk.pk)).exists()
    assert login(client, patient).get(url).status_code == 403


def test_uploaded_file_is_transcribed_with_progress_to_done(
    client, physician, consented, settings, django_capture_on_commit_callbacks
):
    settings_window = transcription.UPLOAD_WINDOW_S
    transcription.UPLOAD_WINDOW_S = 0.5
    overlap = transcription.UPLOAD_OVERLAP_S
    transcription.UPLOAD_OVERLAP_S = 0.2
    try:
        room_services.visit_end(visit=consented, actor=physician)
        audio = io.BytesIO(wav_bytes(seconds=1.2))
        audio.name = "visit.wav"
        login(client, physician)
        with django_capture_on_commit_callbacks():
            response = client.post(
                reverse("consults:audio_upload", args=[consented.pk]),
                {"audio": audio, "speaker": "patient"},
            )
        assert response.status_code == 302
        recording = Recording.objects.get(source=Recording.Source.UPLOAD)
        assert recording.status == Recording.Status.PROCESSING
        status = client.get(reverse("consults:transcript_status", args=[consented.pk])).json()
        assert status["state"] == "processing" and status["uploads"][0]["progress"] == 0
        transcript_tasks.transcribe_upload(recording.chunks.get().pk)
    finally:
        transcription.UPLOAD_WINDOW_S = settings_window
        transcription.UPLOAD_OVERLAP_S = overlap
    recording.refresh_from_db()
    assert recording.status == Recording.Status.DONE and recording.progress == 100
    assert TranscriptSegment.objects.filter(chunk__recording=recording).count() == 3  # 3 windows
    status = client.get(reverse("consults:transcript_status", args=[consented.pk])).json()
    assert status["state"] == "complete"


class WordClockTranscriber(FakeTranscriber):
    """'Hears' one word per second of the consult timeline, w{t} spoken from t+0.7 to t+1.3 s
    (so w9 straddles 10 s), whenever the whole word lies inside the piece it is given: a word
    cut by the piece's edge is lost, as a real model would mangle it."""

    def transcribe_array(self, *, samples, offset_s: float = 0.0, hotwords=None) -> Transcript:
        end = offset_s + len(samples) / 16_000
        words = tuple(
            Word(t + 0.7, t + 1.3, f" w{t}")
            for t in range(math.floor(offset_s), math.ceil(end))
            if t + 0.7 >= offset_s and t + 1.3 <= end
        )
        segment = Segment(offset_s, end, "".join(w.text for w in words), -0.2, 0.01, words)
        return Transcript(
            segments=(segment,) if words else (),
            language="en",
            duration_s=len(samples) / 16_000,
            processing_s=0.01,
            status="ok" if words else "no_speech",
        )


def test_upload_windows_overlap_so_each_word_is_kept_exactly_once(
    client, physician, consented, settings, django_capture_on_commit_callbacks, monkeypatch
):
    settings.SPEECH_BACKEND = "tests.test_transcription.WordClockTranscriber"
    clear_transcribers()
    monkeypatch.setattr(transcription, "UPLOAD_WINDOW_S", 10.0)
    room_services.visit_end(visit=consented, actor=physician)
    audio = io.BytesIO(wav_bytes(seconds=34.3))
    audio.name = "visit.wav"
    login(client, physician)
    with django_capture_on_commit_callbacks():
        client.post(
            reverse("consults:audio_upload", args=[consented.pk]),
            {"audio": audio, "speaker": "patient"},
        )
    recording = Recording.objects.get(source=Recording.Source.UPLOAD)
    transcript_tasks.transcribe_upload(recording.chunks.get().pk)
    text = " ".join(TranscriptSegment.objects.order_by("start_s").values_list("text", flat=True))
    # Windows [0, 10), [8.5, 20), [18.5, 30), [28.5, 34.3): w9, w19 and w29 straddle a window
    # end and are heard whole only by the next window; none is lost, none doubled.
    assert text.split() == [f"w{t}" for t in range(34)]
    # Without the overlap the straddling words are lost: the fake is strict about it.
    monkeypatch.setattr(transcription, "UPLOAD_OVERLAP_S", 0.0)
    recording.chunks.update(status=ChunkStatus.TRANSCRIBING, windows_done=0)
    chunk = recording.chunks.get()
    transcription._transcribe_in_windows(chunk=chunk, data=private_read(chunk.path))
    lines = TranscriptSegment.objects.filter(chunk=chunk).order_by("start_s")
    hard = " ".join(lines.values_list("text", flat=True)).split()
    assert {"w9", "w19", "w29"}.isdisjoint(hard) and len(hard) == 31


class WorkerKilled(BaseException):
    """Stands for the SIGKILL of the worker: nothing after it runs, no handler catches it."""


def test_upload_redelivered_after_its_worker_died_resumes_after_the_last_stored_window(
    client, physician, consented, settings, django_capture_on_commit_callbacks, monkeypatch
):
    settings.SPEECH_BACKEND = "tests.test_transcription.WordClockTranscriber"
    clear_transcribers()
    monkeypatch.setattr(transcription, "UPLOAD_WINDOW_S", 10.0)
    room_services.visit_end(visit=consented, actor=physician)
    audio = io.BytesIO(wav_bytes(seconds=34.3))
    audio.name = "visit.wav"
    with django_capture_on_commit_callbacks():
        login(client, physician).post(
            reverse("consults:audio_upload", args=[consented.pk]),
            {"audio": audio, "speaker": "patient"},
        )
    chunk = Recording.objects.get(source=Recording.Source.UPLOAD).chunks.get()
    heard, killed = [], []
    real = WordClockTranscriber.transcribe_array

    def dies_in_third_window(self, *, samples, offset_s=0.0, hotwords=None):
        if len(heard) == 2 and not killed:
            killed.append(offset_s)
            raise WorkerKilled
        heard.append(offset_s)
        return real(self, samples=samples, offset_s=offset_s, hotwords=hotwords)

    monkeypatch.setattr(WordClockTranscriber, "transcribe_array", dies_in_third_window)
    with pytest.raises(WorkerKilled):
        transcript_tasks.transcribe_upload(chunk.pk)
    chunk.refresh_from_db()
    assert (chunk.status, chunk.attempts, chunk.windows_done) == (ChunkStatus.TRANSCRIBING, 1, 2)
    assert Recording.objects.get(pk=chunk.recording_id).progress == 50
    # Two windows' words are kept: the page shows them while the rest waits.
    assert TranscriptSegment.objects.filter(chunk=chunk).count() == 2

    # The redelivery hears windows 2 and 3 only.
    assert transcript_tasks.transcribe_upload(chunk.pk) == ChunkStatus.DONE
    assert heard == [0.0, 8.5, 18.5, 28.5]
    text = " ".join(TranscriptSegment.objects.order_by("start_s").values_list("text", flat=True))
    assert text.split() == [f"w{t}" for t in range(34)]
    chunk.refresh_from_db()
    assert (chunk.attempts, chunk.windows_done) == (2, 4)
    assert Recording.objects.get(pk=chunk.recording_id).progress == 100


def test_live_recordings_reach_a_final_state_when_the_visit_ends(
    patient, physician, consented, django_capture_on_commit_callbacks
):
    done, waiting = (_chunk(consented, patient, index=i, start_ms=i * 5000) for i in range(2))
    transcript_tasks.transcribe_chunk(done.pk)
    recording = Recording.objects.get(source=Recording.Source.LIVE)
    assert (recording.status, recording.progress) == (Recording.Status.RECORDING, 0)
    room_services.visit_end(visit=consented, actor=physician)
    recording.refresh_from_db()
    assert (recording.status, recording.progress) == (Recording.Status.PROCESSING, 50)
    transcript_tasks.transcribe_chunk(waiting.pk)
    recording.refresh_from_db()
    assert (recording.status, recording.progress) == (Recording.Status.DONE, 100)


def test_a_live_recording_whose_chunks_were_all_done_is_done_when_the_visit_ends(
    patient, physician, consented
):
    transcript_tasks.transcribe_chunk(_chunk(consented, patient).pk)
    room_services.visit_end(visit=consented, actor=physician)
    recording = Recording.objects.get(source=Recording.Source.LIVE)
    assert (recording.status, recording.progress) == (Recording.Status.DONE, 100)


def test_live_chunk_overlaps_are_stored_and_the_shared_audio_is_stitched(
    client, patient, consented, settings, django_capture_on_commit_callbacks
):
    settings.SPEECH_BACKEND = "tests.test_transcription.WordClockTranscriber"
    clear_transcribers()
    login(client, patient)
    # Chunk 0 is 0-6 s, chunk 1 is 5-11 s: they share 1 s, cut in its middle at 5.5 s.
    first = io.BytesIO(wav_bytes(seconds=6.0))
    first.name = "c0.webm"
    second = io.BytesIO(wav_bytes(seconds=6.0))
    second.name = "c1.webm"
    url = reverse("consults:audio_chunk", args=[consented.pk])
    with django_capture_on_commit_callbacks():
        for index, (audio, start, head, tail) in enumerate(
            [(first, 0, 0, 1000), (second, 5000, 1000, 0)]
        ):
            response = client.post(
                url,
                {
                    "audio": audio,
                    "index": index,
                    "start_ms": start,
                    "head_overlap_ms": head,
                    "tail_overlap_ms": tail,
                },
            )
            assert response.status_code == 201, response.content
    chunks = AudioChunk.objects.order_by("index")
    assert [(c.head_overlap_s, c.tail_overlap_s) for c in chunks] == [(0, 1.0), (1.0, 0)]
    for chunk in chunks:
        transcript_tasks.transcribe_chunk(chunk.pk)
    text = " ".join(TranscriptSegment.objects.order_by("start_s").values_list("text", flat=True))
    # w4 (4.7-5.3 s) is heard by both chunks and kept once; w5 (5.7-6.3 s) is cut by the end of
    # chunk 0 and comes whole from chunk 1.
    assert text.split() == [f"w{t}" for t in range(10)]


@pytest.mark.parametrize("head", ["-1", "3001", "one"])
def test_chunk_overlap_out_of_range_is_refused(client, patient, consented, head):
    audio = io.BytesIO(wav_bytes())
    audio.name = "chunk.webm"
    response = login(client, patient).post(
        reverse("consults:audio_chunk", args=[consented.pk]),
        {"audio": audio, "index": 0, "start_ms": 0, "head_overlap_ms": head},
    )
    assert response.status_code == 400 and "overlap" in response.json()["error"]
    assert not AudioChunk.objects.exists()


def test_upload_of_a_non_audio_file_is_415(client, physician, consented):
    room_services.visit_end(visit=consented, actor=physician)
    upload = io.BytesIO(b"GIF89a not audio")
    upload.name = "x.mp3"
    response = login(client, physician).post(
        reverse("consults:audio_upload", args=[consented.pk]),
        {"audio": upload, "speaker": "patient"},
    )
    assert response.status_code == 415
    assert consented.status == VisitStatus.COMPLETED and not Recording.objects.exists()


def test_room_page_shows_the_live_panel_only_to_the_physician(
    client, patient, physician, consented
):
    room = reverse("consults:room", args=[consented.pk])
    assert b'id="transcript-panel"' in login(client, physician).get(room).content
    page = login(client, patient).get(room).content
    assert b'id="transcript-panel"' not in page and b"data-audio-url" in page


def test_live_chunk_that_decodes_too_long_fails_alone(
    client, patient, consented, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(transcription, "LIVE_CHUNK_MAX_SECONDS", 0.2)
    login(client, patient)
    with django_capture_on_commit_callbacks():
        assert (
            post_chunk(client, consented, index=0, data=wav_bytes(seconds=0.5)).status_code == 201
        )
    chunk = AudioChunk.objects.get()
    transcript_tasks.transcribe_chunk(chunk.pk)
    chunk.refresh_from_db()
    assert chunk.status == ChunkStatus.FAILED and "longer than 0.2 s" in chunk.failure_reason
    assert not TranscriptSegment.objects.exists()
