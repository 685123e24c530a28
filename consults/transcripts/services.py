"""Consult audio and transcripts: services (writes). The reads are in ``selectors``.

Live calls: each browser uploads its own microphone as independently decodable chunks; each
chunk is stored privately and, with AI consent, transcribed by a Celery task on the ``ml``
queue. Uploads after the fact are one chunk transcribed in windows, with progress.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.dispatch import Signal
from django.utils import timezone

from consults import hooks
from consults.models import (
    FINISHED_CHUNK_STATUSES,
    AudioChunk,
    ChunkStatus,
    ConsentPurpose,
    Recording,
    Speaker,
    TranscriptSegment,
    Visit,
    VisitStatus,
)
from consults.realtime import room_push
from consults.selectors import consent_given
from consults.transcripts.selectors import (
    chunks_lost,
    speech_known_terms,
    speech_patient_words,
    speech_previous_text,
)
from consults.urgency import urgency_rank
from telehealth.audit import audit_record
from telehealth.lost_work import send_on_commit
from telehealth.models import AuditAction, User
from telehealth.observability import model_timer
from telehealth.private_media import private_read, private_save

MAX_CHUNK_BYTES = 2 * 1024 * 1024
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_CHUNK_INDEX = 100_000
# Uploaded files are transcribed in windows of this length, so progress can be shown.
UPLOAD_WINDOW_S = 30.0
# Uploaded files are transcribed in windows that overlap by this much, so no word is cut.
UPLOAD_OVERLAP_S = 1.5
# The most audio a live chunk may say it shares with its neighbour (the recorder uses 1 s).
MAX_OVERLAP_MS = 3000
# Live chunks are ~6 s; one that decodes to more than this is refused as corrupt.
LIVE_CHUNK_MAX_SECONDS = 120
MAX_ATTEMPTS = 4
CONTENT_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "ogg": "audio/ogg",
    "webm": "audio/webm",
    "flac": "audio/flac",
}


class AudioRejected(Exception):
    """Audio the server refuses; ``status`` is the HTTP status, the message is shown."""

    status = 400

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# Sent with ``visit`` each time one of its chunks is finished (transcribed or failed) and when
# the call ends: notes queues the draft once the transcript is complete. ConsultsConfig.ready()
# connects it, so transcripts never import the notes that read them.
transcript_settled = Signal()


@dataclass(frozen=True)
class ChunkReceipt:
    chunk: AudioChunk
    created: bool


# --- Services ---------------------------------------------------------------------------------


def _speaker_of(*, visit: Visit, user: User) -> str:
    if user.pk == visit.physician_id:
        return Speaker.PHYSICIAN
    if user.pk == visit.patient_id:
        return Speaker.PATIENT
    raise AudioRejected("Only the visit's patient and physician can record it.", status=403)


def _check_audio(*, data: bytes, limit: int) -> str:
    if len(data) > limit:
        raise AudioRejected(f"The audio is larger than {limit // (1024 * 1024)} MB.", status=413)
    if not data:
        raise AudioRejected("The audio is empty.")
    # The engine package is imported lazily: web processes load it only when audio arrives.
    from consults.speech.audio import UnsupportedAudio, sniff_audio

    try:
        return sniff_audio(data)
    except UnsupportedAudio as exc:
        raise AudioRejected(f"This is not a supported audio file: {exc}.", status=415) from exc


def chunk_receive(
    *,
    visit: Visit,
    user: User,
    index: int,
    start_ms: int,
    data: bytes,
    head_overlap_ms: int = 0,
    tail_overlap_ms: int = 0,
) -> ChunkReceipt:
    """Store one live chunk of the user's own microphone; idempotent on (recording, index).

    A repeat of the same bytes is a harmless no-op; different bytes for a stored index are a
    conflict. Nothing is stored without recording consent; without AI consent it is stored
    but not transcribed. The overlaps say how much audio the chunk shares with the previous
    and the next chunk of the track (the recorder overlaps them so no word is cut).
    """
    speaker = _speaker_of(visit=visit, user=user)
    if not consent_given(visit=visit, purpose=ConsentPurpose.RECORDING):
        raise AudioRejected("The patient has not consented to recording this consult.", status=403)
    if not 0 <= index <= MAX_CHUNK_INDEX or not 0 <= start_ms <= 24 * 3600 * 1000:
        raise AudioRejected("The chunk index or start offset is out of range.")
    if not (0 <= head_overlap_ms <= MAX_OVERLAP_MS and 0 <= tail_overlap_ms <= MAX_OVERLAP_MS):
        raise AudioRejected(f"A chunk overlap must be between 0 and {MAX_OVERLAP_MS} ms.")
    kind = _check_audio(data=data, limit=MAX_CHUNK_BYTES)
    digest = hashlib.sha256(data).hexdigest()
    recording, _ = Recording.objects.get_or_create(
        visit=visit, speaker=speaker, source=Recording.Source.LIVE, defaults={"user": user}
    )
    existing = AudioChunk.objects.filter(recording=recording, index=index).first()
    if existing is not None:
        return _same_or_conflict(existing=existing, digest=digest)
    transcribe = consent_given(visit=visit, purpose=ConsentPurpose.AI_NOTES)
    path = private_save(category="audio", data=data, suffix=f".{kind}")
    try:
        with transaction.atomic():
            chunk = AudioChunk.objects.create(
                recording=recording,
                index=index,
                start_s=start_ms / 1000,
                head_overlap_s=head_overlap_ms / 1000,
                tail_overlap_s=tail_overlap_ms / 1000,
                path=path,
                content_type=CONTENT_TYPES[kind],
                sha256=digest,
                size=len(data),
                status=ChunkStatus.RECEIVED if transcribe else ChunkStatus.STORED,
            )
    except IntegrityError:
        # A concurrent retry of the same chunk won the race.
        from telehealth.private_media import private_delete

        private_delete(path)
        existing = AudioChunk.objects.get(recording=recording, index=index)
        return _same_or_conflict(existing=existing, digest=digest)
    if transcribe:
        _enqueue(chunk=chunk)
    if visit.status == VisitStatus.COMPLETED:
        recordings_settle(visit_id=visit.pk)  # the last chunk of a call, arriving after its end
    return ChunkReceipt(chunk=chunk, created=True)


def _same_or_conflict(*, existing: AudioChunk, digest: str) -> ChunkReceipt:
    if existing.sha256 != digest:
        raise AudioRejected(
            f"Chunk {existing.index} was already received with different content.", status=409
        )
    return ChunkReceipt(chunk=existing, created=False)


def _enqueue(*, chunk: AudioChunk) -> None:
    """Queue the chunk's transcription (consults/transcripts/tasks.py) on the ml queue."""
    task = (
        "consults.tasks.transcribe_upload"
        if chunk.recording.source == Recording.Source.UPLOAD
        else "consults.tasks.transcribe_chunk"
    )
    send_on_commit(task, chunk.pk)


def recording_upload(*, visit: Visit, physician: User, data: bytes, speaker: str) -> Recording:
    """The physician adds an audio file of the visit after the fact; it is transcribed."""
    if physician.pk != visit.physician_id:
        raise AudioRejected("Only the visit's physician can add its audio.", status=403)
    if speaker not in Speaker.values:
        raise AudioRejected("Choose whose voice the file holds.")
    if not consent_given(visit=visit, purpose=ConsentPurpose.RECORDING):
        raise AudioRejected("The patient has not consented to recording this consult.", status=403)
    kind = _check_audio(data=data, limit=MAX_UPLOAD_BYTES)
    transcribe = consent_given(visit=visit, purpose=ConsentPurpose.AI_NOTES)
    path = private_save(category="audio", data=data, suffix=f".{kind}")
    with transaction.atomic():
        recording = Recording.objects.create(
            visit=visit,
            speaker=speaker,
            user=physician,
            source=Recording.Source.UPLOAD,
            status=Recording.Status.PROCESSING if transcribe else Recording.Status.DONE,
        )
        chunk = AudioChunk.objects.create(
            recording=recording,
            index=0,
            start_s=0.0,
            path=path,
            content_type=CONTENT_TYPES[kind],
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            status=ChunkStatus.RECEIVED if transcribe else ChunkStatus.STORED,
        )
        audit_record(
            actor=physician,
            action=AuditAction.WRITE,
            object_type="recording",
            object_id=recording.pk,
            patient=visit.patient,
        )
    if transcribe:
        _enqueue(chunk=chunk)
    return recording


def _transcriber():
    from consults.speech.factory import get_transcriber

    return get_transcriber(
        backend=settings.SPEECH_BACKEND,
        model=settings.SPEECH_MODEL,
        compute_type=settings.SPEECH_COMPUTE_TYPE,
        beam_size=settings.SPEECH_BEAM_SIZE,
        cpu_threads=settings.SPEECH_CPU_THREADS,
        encoder_window=settings.SPEECH_ENCODER_WINDOW,
        cache_dir=settings.SPEECH_MODEL_CACHE_DIR,
        language=settings.SPEECH_LANGUAGE,
        languages=settings.SPEECH_LANGUAGES,
        # A clinic's own model directory, loaded only if its model.bin has this sha256.
        model_path=settings.SPEECH_MODEL_PATH,
        model_sha256=settings.SPEECH_MODEL_SHA256,
    )


def _claim(*, chunk_id: int) -> AudioChunk | None:
    """Mark the chunk as being transcribed, or None when there is nothing to do."""
    with transaction.atomic():
        chunk = (
            AudioChunk.objects.select_for_update(of=("self",))
            .select_related("recording__visit")
            .filter(pk=chunk_id)
            .first()
        )
        if chunk is None or chunk.status in FINISHED_CHUNK_STATUSES:
            return None
        if not consent_given(visit=chunk.recording.visit, purpose=ConsentPurpose.AI_NOTES):
            # Consent withdrawn after the chunk arrived: keep the audio, do not transcribe.
            chunk.status = ChunkStatus.STORED
            chunk.save(update_fields=["status"])
            return None
        chunk.status = ChunkStatus.TRANSCRIBING
        chunk.attempts += 1
        chunk.save(update_fields=["status", "attempts"])
    return chunk


def chunk_transcribe(*, chunk_id: int) -> AudioChunk | None:
    """Transcribe one chunk and replace its segments atomically; a finished chunk is skipped.

    Corrupt or unsupported audio fails only this chunk, with the reason. Other errors
    propagate so that the task retries.
    """
    from consults.speech.audio import CorruptAudio, UnsupportedAudio, decode_audio
    from consults.speech.stitch import keep_window

    chunk = _claim(chunk_id=chunk_id)
    if chunk is None:
        return None
    if chunk.attempts > MAX_ATTEMPTS:
        # Redelivered again and again (a worker killed mid-chunk): stop trying.
        chunk_fail(chunk_id=chunk.pk, reason=f"gave up after {MAX_ATTEMPTS} attempts")
        return chunk
    recording = chunk.recording
    try:
        data = private_read(chunk.path)
        if recording.source == Recording.Source.UPLOAD:
            # Each window's lines are stored as it finishes: segments None, nothing to replace.
            segments, no_speech = None, False
            duration = _transcribe_in_windows(chunk=chunk, data=data)
            if duration is None:
                return None  # a later claim took the chunk over
        else:
            # A live chunk is ~6 s: refuse one that decodes to minutes (a decompression bomb).
            samples = decode_audio(data, max_seconds=LIVE_CHUNK_MAX_SECONDS)
            context = _speech_context(visit=recording.visit, before_s=chunk.start_s)
            with model_timer(f"whisper-{settings.SPEECH_MODEL}"):
                result = _transcriber().transcribe_array(
                    samples=samples, offset_s=chunk.start_s, hotwords=context.hotwords()
                )
            duration = result.duration_s
            head, tail = chunk.head_overlap_s, chunk.tail_overlap_s
            segments = keep_window(
                result.segments,
                keep_from=chunk.start_s + head / 2 if head else None,
                keep_until=chunk.start_s + duration - tail / 2 if tail else None,
            )
            segments = _corrected(
                segments,
                context=context,
                scorer=_text_scorer(
                    samples=samples, offset_s=chunk.start_s, language=result.language
                ),
            )
            no_speech = result.status == "no_speech"
    except (CorruptAudio, UnsupportedAudio) as exc:
        chunk_fail(chunk_id=chunk.pk, reason=str(exc))
        chunk.refresh_from_db()
        return chunk
    rows = _segments_store(chunk=chunk, segments=segments, duration=duration, no_speech=no_speech)
    if rows is not None:
        _after_transcription(chunk=chunk, rows=rows)
    chunk.refresh_from_db()
    return chunk


def _transcribe_in_windows(*, chunk: AudioChunk, data: bytes) -> float | None:
    """Transcribe the windows not yet done, storing each one's lines; the audio's length.

    A task redelivered after its worker died resumes after the last stored window. None when
    a later claim took the chunk over.
    """
    from consults.speech import SAMPLE_RATE as rate
    from consults.speech.audio import decode_audio
    from consults.speech.stitch import keep_window

    samples = decode_audio(data)
    window, overlap = int(UPLOAD_WINDOW_S * rate), int(UPLOAD_OVERLAP_S * rate)
    total = max(1, -(-len(samples) // window))
    # Window n owns the timeline from the middle of its overlap with window n-1 to the middle
    # of its overlap with window n+1: `cut` seconds into each window.
    cut = UPLOAD_WINDOW_S - UPLOAD_OVERLAP_S / 2
    for n in range(chunk.windows_done, total):
        # Each window also hears the last UPLOAD_OVERLAP_S of the one before, and keeps the
        # words from the middle of that overlap on (consults/speech/stitch.py).
        begin = max(0, n * window - overlap)
        piece = samples[begin : (n + 1) * window]
        context = _speech_context(
            visit=chunk.recording.visit, before_s=chunk.start_s + begin / rate
        )
        with model_timer(f"whisper-{settings.SPEECH_MODEL}"):
            result = _transcriber().transcribe_array(
                samples=piece, offset_s=chunk.start_s + begin / rate, hotwords=context.hotwords()
            )
        kept = keep_window(
            result.segments,
            keep_from=chunk.start_s + (n - 1) * UPLOAD_WINDOW_S + cut if n else None,
            keep_until=chunk.start_s + n * UPLOAD_WINDOW_S + cut if n < total - 1 else None,
        )
        kept = _corrected(
            kept,
            context=context,
            scorer=_text_scorer(
                samples=piece, offset_s=chunk.start_s + begin / rate, language=result.language
            ),
        )
        if not _window_store(
            chunk=chunk, window=n, segments=kept, progress=min(99, int(100 * (n + 1) / total))
        ):
            return None
    return len(samples) / rate


def _speech_context(*, visit: Visit, before_s: float):
    """What the visit already knows, as the engine's hint and correction lexicon."""
    from consults.speech.vocabulary import SpeechContext, load_formulary

    formulary = load_formulary(settings.SPEECH_FORMULARY_PATH)
    return SpeechContext(
        terms=speech_known_terms(visit=visit, formulary=formulary),
        patient_words=speech_patient_words(visit=visit),
        reason=visit.reason,
        previous_text=speech_previous_text(visit=visit, before_s=before_s),
        formulary=formulary,
        hint_chars=settings.SPEECH_HINT_CHARS,
    )


def _text_scorer(*, samples, offset_s: float, language: str):
    """The engine's check of a correction against the audio, where the engine has one."""
    make = getattr(_transcriber(), "text_scorer", None)
    return make(samples=samples, offset_s=offset_s, language=language or None) if make else None


def _corrected(segments: list, *, context, scorer=None) -> list:
    """Garbled drug names and spoken doses/vitals corrected, each change kept as evidence.

    ``scorer`` (the engine's ``text_scorer`` on the same audio) checks names that sound only a
    little like what was heard against the audio itself.
    """
    from consults.speech.correct import correct_segment

    return [
        correct_segment(
            s,
            lexicon=context.lexicon,
            preferred=context.terms,
            threshold=settings.SPEECH_CORRECTION_THRESHOLD,
            scorer=scorer,
        )
        for s in segments
    ]


def _segment_rows(*, chunk: AudioChunk, segments: list) -> list[TranscriptSegment]:
    recording = chunk.recording
    return [
        TranscriptSegment(
            visit_id=recording.visit_id,
            chunk=chunk,
            speaker=recording.speaker,
            start_s=s.start,
            end_s=s.end,
            text=s.text.strip(),
            avg_logprob=s.avg_logprob,
            no_speech_prob=s.no_speech_prob,
            heard_text=getattr(s, "heard_text", "") if getattr(s, "corrections", ()) else "",
            corrections=[c.as_dict() for c in getattr(s, "corrections", ())],
        )
        for s in segments
        if s.text.strip()
    ]


def _still_claimed(*, chunk: AudioChunk) -> bool:
    """Lock the chunk; True while this run's claim is the latest (call inside a transaction).

    The attempt number fences writes: when a redelivered or re-sent task claimed the chunk
    after this run (which was merely slow), that run alone may store its lines.
    """
    current = (
        AudioChunk.objects.select_for_update()
        .filter(pk=chunk.pk)
        .values_list("status", "attempts")
        .first()
    )
    return current == (ChunkStatus.TRANSCRIBING, chunk.attempts)


def _window_store(*, chunk: AudioChunk, window: int, segments: list, progress: int) -> bool:
    """Store one upload window's lines and count it done; False when the claim was overtaken."""
    with transaction.atomic():
        if not _still_claimed(chunk=chunk):
            return False
        if window == 0:
            TranscriptSegment.objects.filter(chunk=chunk).delete()
        TranscriptSegment.objects.bulk_create(_segment_rows(chunk=chunk, segments=segments))
        AudioChunk.objects.filter(pk=chunk.pk).update(windows_done=window + 1)
        Recording.objects.filter(pk=chunk.recording_id).update(progress=progress)
    chunk.windows_done = window + 1
    return True


def _segments_store(
    *, chunk: AudioChunk, segments: list | None, duration: float, no_speech: bool
) -> list[TranscriptSegment] | None:
    """Replace the chunk's lines with these (``None``: keep those its windows stored) and mark
    it done; None when a later claim took the chunk over."""
    recording = chunk.recording
    with transaction.atomic():
        if not _still_claimed(chunk=chunk):
            return None
        if segments is None:
            rows = list(TranscriptSegment.objects.filter(chunk=chunk))
        else:
            TranscriptSegment.objects.filter(chunk=chunk).delete()
            rows = TranscriptSegment.objects.bulk_create(
                _segment_rows(chunk=chunk, segments=segments)
            )
        AudioChunk.objects.filter(pk=chunk.pk).update(
            status=ChunkStatus.NO_SPEECH if no_speech or not rows else ChunkStatus.DONE,
            duration_s=duration,
            transcribed_at=timezone.now(),
            failure_reason="",
        )
        if recording.source == Recording.Source.UPLOAD:
            Recording.objects.filter(pk=recording.pk).update(
                status=Recording.Status.DONE, progress=100
            )
    return rows


def _after_transcription(*, chunk: AudioChunk, rows: list[TranscriptSegment]) -> None:
    visit = chunk.recording.visit
    room_push(visit_id=visit.pk, payload={"type": "transcript.updated"}, staff_only=True)
    recordings_settle(visit_id=visit.pk)
    _request_note_when_complete(visit_id=visit.pk)
    if chunk.recording.speaker != Speaker.PATIENT:
        return
    from consults.notes.red_flags import detect_red_flags

    for row in rows:
        flags = detect_red_flags(row.text)
        if not flags:
            continue
        worst = min(flags, key=lambda f: urgency_rank(f.urgency))
        # Triage raises the visit's urgency (consults/hooks.py: consults never imports triage).
        hooks.red_flag_heard(
            visit=visit, level=worst.urgency, reason=f"Patient said: {row.text}"[:300]
        )
        room_push(visit_id=visit.pk, payload={"type": "alert"}, staff_only=True)


def chunk_fail(*, chunk_id: int, reason: str) -> None:
    """Give up on one chunk with a reason; the rest of the recording is unaffected."""
    with transaction.atomic():
        AudioChunk.objects.filter(pk=chunk_id).update(
            status=ChunkStatus.FAILED, failure_reason=reason[:300]
        )
        TranscriptSegment.objects.filter(chunk_id=chunk_id).delete()
        chunk = AudioChunk.objects.select_related("recording").get(pk=chunk_id)
        if chunk.recording.source == Recording.Source.UPLOAD:
            Recording.objects.filter(pk=chunk.recording_id).update(status=Recording.Status.FAILED)
    room_push(
        visit_id=chunk.recording.visit_id, payload={"type": "transcript.updated"}, staff_only=True
    )
    recordings_settle(visit_id=chunk.recording.visit_id)
    _request_note_when_complete(visit_id=chunk.recording.visit_id)


def recordings_settle(*, visit_id: int) -> None:
    """Once the visit has ended, its live tracks stop saying "recording": ``processing`` while
    chunks are still being transcribed (progress: the share finished), then ``done``, 100 %."""
    if not Visit.objects.filter(pk=visit_id, status=VisitStatus.COMPLETED).exists():
        return
    live = Recording.objects.filter(visit_id=visit_id, source=Recording.Source.LIVE).annotate(
        total=Count("chunks"),
        waiting=Count(
            "chunks", filter=Q(chunks__status__in=[ChunkStatus.RECEIVED, ChunkStatus.TRANSCRIBING])
        ),
    )
    for recording in live:
        if recording.waiting:
            status = Recording.Status.PROCESSING
            progress = 100 * (recording.total - recording.waiting) // recording.total
        else:
            status, progress = Recording.Status.DONE, 100
        if (recording.status, recording.progress) != (status, progress):
            Recording.objects.filter(pk=recording.pk).update(status=status, progress=progress)


def _request_note_when_complete(*, visit_id: int) -> None:
    """The last chunk of a finished consult queues the note draft (once): notes listens."""
    transcript_settled.send(sender=Visit, visit=Visit.objects.get(pk=visit_id))


def segment_correction_revert(
    *, segment: TranscriptSegment, physician: User, index: int
) -> TranscriptSegment:
    """The physician reverts one automatic correction: the heard words come back, audited."""
    from consults.speech.types import apply_corrections

    visit = segment.visit
    if physician.pk != visit.physician_id:
        raise AudioRejected("Only the visit's physician can revert a correction.", status=403)
    with transaction.atomic():
        segment = TranscriptSegment.objects.select_for_update().get(pk=segment.pk)
        corrections = list(segment.corrections or [])
        if not 0 <= index < len(corrections):
            raise AudioRejected("This line has no such correction.", status=404)
        if corrections[index].get("reverted"):
            return segment
        corrections[index] = {
            **corrections[index],
            "reverted": True,
            "reverted_by": physician.pk,
            "reverted_at": timezone.now().isoformat(),
        }
        reverted = frozenset(i for i, c in enumerate(corrections) if c.get("reverted"))
        segment.corrections = corrections
        segment.text = apply_corrections(segment.heard_text, corrections, skip=reverted)
        segment.save(update_fields=["corrections", "text"])
        audit_record(
            actor=physician,
            action=AuditAction.WRITE,
            object_type="transcript_segment",
            object_id=segment.pk,
            patient=visit.patient,
            detail=f"automatic {corrections[index].get('kind', '')} correction reverted",
        )
    return segment


def segment_correct(*, segment: TranscriptSegment, physician: User, text: str) -> TranscriptSegment:
    """The physician corrects a line; the recognised text stays beside the correction."""
    visit = segment.visit
    if physician.pk != visit.physician_id:
        raise AudioRejected("Only the visit's physician can correct its transcript.", status=403)
    text = text.strip()
    if len(text) > 2000:
        raise AudioRejected("A line is limited to 2,000 characters.")
    segment.corrected_text = "" if text == segment.text else text
    segment.corrected_by = physician if segment.corrected_text else None
    segment.corrected_at = timezone.now() if segment.corrected_text else None
    with transaction.atomic():
        segment.save(update_fields=["corrected_text", "corrected_by", "corrected_at"])
        audit_record(
            actor=physician,
            action=AuditAction.WRITE,
            object_type="transcript_segment",
            object_id=segment.pk,
            patient=visit.patient,
            detail="correction" if segment.corrected_text else "correction removed",
        )
    return segment


# --- Lost work (the beat sweeper; docs/deploy.md, "Broker durability and lost work") ---------


def chunks_resend_lost(*, now) -> list[int]:
    """Re-send the tasks of lost chunks; the lost-work sweeper calls it (``lost_work_register``).

    The sweeper checks first that no message is merely waiting. A re-send that meets a slow
    original is harmless: the attempt number fences the chunk's lines.
    """
    chunks = list(chunks_lost(now=now))
    for chunk in chunks:
        _enqueue(chunk=chunk)
    return [chunk.pk for chunk in chunks]
