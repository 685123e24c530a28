"""Clinical notes drafted from the transcript, edited and signed by the physician."""

from django.conf import settings
from django.db import models

from consults.models.visits import Visit


class ClinicalNote(models.Model):
    """The visit's note. ``content`` holds SOAP sections of items that cite transcript lines."""

    class Status(models.TextChoices):
        DRAFTING = "drafting", "Drafting"
        DRAFT = "draft", "Draft, awaiting review"
        SIGNED = "signed", "Signed"
        FAILED = "failed", "Drafting failed"

    visit = models.OneToOneField(Visit, on_delete=models.CASCADE, related_name="note")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFTING)
    version = models.PositiveIntegerField(default=0)
    # {"sections": {key: [{"text", "evidence": [line], "needs_review", "kind", "origin"}]},
    #  "lines": [{"index", "segment", "speaker", "start_s", "end_s", "text"}], "facts": {...}}
    content = models.JSONField(default=dict, blank=True)
    engine_version = models.CharField(max_length=100, blank=True)
    failure_reason = models.CharField(max_length=300, blank=True)
    drafted_at = models.DateTimeField(null=True, blank=True)
    # When drafting was last asked for (after the consult, or a physician's re-draft): the
    # lost-work sweeper re-sends a draft still not done long after it.
    requested_at = models.DateTimeField(null=True, blank=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    signed_at = models.DateTimeField(null=True, blank=True)
    after_visit_summary = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"Note for visit #{self.visit_id} v{self.version} ({self.status})"


class NoteRevision(models.Model):
    """Every version of a note, kept: drafted, edited, re-drafted, signed."""

    class Kind(models.TextChoices):
        DRAFTED = "drafted", "Drafted by the engine"
        EDITED = "edited", "Edited by the physician"
        SIGNED = "signed", "Signed"

    note = models.ForeignKey(ClinicalNote, on_delete=models.CASCADE, related_name="revisions")
    version = models.PositiveIntegerField()
    kind = models.CharField(max_length=12, choices=Kind.choices)
    content = models.JSONField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["note", "version"], name="one_revision_per_version")
        ]

    def __str__(self) -> str:
        return f"{self.note} revision {self.version} ({self.kind})"
