"""Consult audio (one recording per speaker track), its chunks, and the transcript segments."""

from django.conf import settings
from django.db import models

from consults.models.visits import Visit


class Speaker(models.TextChoices):
    PATIENT = "patient", "Patient"
    PHYSICIAN = "physician", "Physician"


class Recording(models.Model):
    """One speaker's audio track of a visit: live chunks from the call, or an uploaded file."""

    class Source(models.TextChoices):
        LIVE = "live", "Live call"
        UPLOAD = "upload", "Uploaded file"

    class Status(models.TextChoices):
        RECORDING = "recording", "Recording"
        PROCESSING = "processing", "Processing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    visit = models.ForeignKey(Visit, on_delete=models.CASCADE, related_name="recordings")
    speaker = models.CharField(max_length=16, choices=Speaker.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.LIVE)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECORDING)
    # Uploads only: 0-100, set by the transcription task as it goes.
    progress = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # One live track per speaker per visit; uploads may be many.
            models.UniqueConstraint(
                fields=["visit", "speaker"],
                condition=models.Q(source="live"),
                name="one_live_recording_per_speaker",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.speaker} {self.source} recording of visit #{self.visit_id}"


class ChunkStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    TRANSCRIBING = "transcribing", "Transcribing"
    DONE = "done", "Done"
    NO_SPEECH = "no_speech", "No speech"
    FAILED = "failed", "Failed"
    STORED = "stored", "Stored, not transcribed"


# Chunks in these states need no more work.
FINISHED_CHUNK_STATUSES = [
    ChunkStatus.DONE,
    ChunkStatus.NO_SPEECH,
    ChunkStatus.FAILED,
    ChunkStatus.STORED,
]


class AudioChunk(models.Model):
    """One independently decodable piece of a recording, stored privately."""

    recording = models.ForeignKey(Recording, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    # Seconds on the visit timeline (from the consult's start) where this chunk begins.
    start_s = models.FloatField()
    duration_s = models.FloatField(null=True, blank=True)
    # Seconds this chunk shares with the previous / next chunk of the same track: words are
    # kept by the piece that owns the middle of each overlap (consults/speech/stitch.py).
    head_overlap_s = models.FloatField(default=0)
    tail_overlap_s = models.FloatField(default=0)
    path = models.CharField(max_length=300)
    content_type = models.CharField(max_length=64)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveIntegerField()
    status = models.CharField(
        max_length=16, choices=ChunkStatus.choices, default=ChunkStatus.RECEIVED, db_index=True
    )
    failure_reason = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Uploads: windows whose lines are stored; a redelivered task resumes after them.
    windows_done = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    transcribed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["recording", "index"]
        constraints = [
            models.UniqueConstraint(fields=["recording", "index"], name="one_chunk_per_index"),
        ]

    def __str__(self) -> str:
        return f"chunk {self.index} of recording #{self.recording_id}"


class TranscriptSegment(models.Model):
    """One recognised line; a physician's correction is kept beside the original text."""

    visit = models.ForeignKey(Visit, on_delete=models.CASCADE, related_name="transcript_segments")
    chunk = models.ForeignKey(AudioChunk, on_delete=models.CASCADE, related_name="segments")
    speaker = models.CharField(max_length=16, choices=Speaker.choices)
    # Seconds on the consult timeline.
    start_s = models.FloatField()
    end_s = models.FloatField()
    text = models.TextField()
    avg_logprob = models.FloatField()
    no_speech_prob = models.FloatField()
    corrected_text = models.TextField(blank=True)
    corrected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    corrected_at = models.DateTimeField(null=True, blank=True)
    # The engine's own corrections (consults/speech/correct.py): the words as heard, and one
    # dict per change (start, end, heard, corrected, kind, confidence, reason, at; plus
    # reverted, reverted_by, reverted_at once the physician reverts it).
    heard_text = models.TextField(blank=True, default="")
    corrections = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["start_s", "id"]
        indexes = [models.Index(fields=["visit", "start_s"])]

    def __str__(self) -> str:
        return f"{self.speaker} {self.start_s:.1f}s: {self.text[:40]}"

    @property
    def shown_text(self) -> str:
        return self.corrected_text or self.text
