"""Intake answers and the history of every urgency change."""

from django.conf import settings
from django.db import models

from consults.urgency import RED_FLAGS, Urgency


class Intake(models.Model):
    """What the patient told us when booking."""

    visit = models.OneToOneField("consults.Visit", on_delete=models.CASCADE, related_name="intake")
    reason = models.CharField(max_length=200)
    symptoms = models.TextField(blank=True)
    symptom_duration = models.CharField(max_length=100, blank=True)
    # In the patient's words. The transcriber listens for these names (consults/speech).
    medicines = models.TextField(blank=True)
    allergies = models.TextField(blank=True)
    red_flags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Intake for visit #{self.visit_id}"

    @property
    def red_flag_labels(self) -> list[str]:
        return [RED_FLAGS[code][0] for code in self.red_flags if code in RED_FLAGS]


class UrgencyChange(models.Model):
    """One change of a visit's urgency, with its source and reason."""

    class Source(models.TextChoices):
        INTAKE = "intake", "Intake"
        PHOTO = "photo", "Photo triage"
        TRANSCRIPT = "transcript", "Live transcript alert"
        STAFF = "staff", "Staff override"

    visit = models.ForeignKey(
        "consults.Visit", on_delete=models.CASCADE, related_name="urgency_changes"
    )
    previous = models.CharField(max_length=16, choices=Urgency.choices, blank=True)
    level = models.CharField(max_length=16, choices=Urgency.choices)
    reason = models.CharField(max_length=300)
    source = models.CharField(max_length=16, choices=Source.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.visit_id}: {self.previous or '-'} → {self.level}"


class QueueSkip(models.Model):
    """A patient admitted before a more urgent or overdue one, with the physician's reason."""

    visit = models.ForeignKey(
        "consults.Visit", on_delete=models.CASCADE, related_name="queue_skips"
    )
    passed_over = models.ForeignKey(
        "consults.Visit", on_delete=models.CASCADE, related_name="passed_over_by"
    )
    # The passed-over visit as the physician saw it when admitting.
    passed_over_urgency = models.CharField(max_length=16, choices=Urgency.choices)
    overdue_minutes = models.PositiveIntegerField(default=0)
    reason = models.CharField(max_length=300)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.visit_id} admitted before #{self.passed_over_id}"


class PhotoKind(models.TextChoices):
    SKIN = "skin", "Skin lesion (mole, spot, rash)"
    WOUND = "wound", "Wound or ulcer"


class PhotoConcern(models.Model):
    """One lesion or wound of a patient, followed across visits (for the wound area trend)."""

    patient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="photo_concerns"
    )
    kind = models.CharField(max_length=8, choices=PhotoKind.choices)
    body_site = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.body_site}"


class Photo(models.Model):
    """A patient's photo, re-encoded without metadata and stored privately."""

    class Status(models.TextChoices):
        STORED = "stored", "Stored (no AI analysis)"
        QUEUED = "queued", "Waiting for analysis"
        ANALYSED = "analysed", "Analysed"
        FAILED = "failed", "Analysis failed"

    visit = models.ForeignKey("consults.Visit", on_delete=models.CASCADE, related_name="photos")
    concern = models.ForeignKey(PhotoConcern, on_delete=models.CASCADE, related_name="photos")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    file_path = models.CharField(max_length=300)
    sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    duration = models.CharField(max_length=100, blank=True)
    stated_area_cm2 = models.FloatField(null=True, blank=True)
    quality_score = models.FloatField()
    quality_flags = models.JSONField(default=list, blank=True)
    # Score of each quality check by code, so the page can say which one held the score down.
    quality_checks = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.STORED)
    failure_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The photo's scale, from a known length a clinician marked on it (e.g. 1 cm of a ruler).
    scale_px_per_cm = models.FloatField(null=True, blank=True)
    scale_points = models.JSONField(default=list, blank=True)
    scale_length_cm = models.FloatField(null=True, blank=True)
    scale_set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    scale_set_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Photo #{self.pk} ({self.concern})"


class PhotoAnalysis(models.Model):
    """What the model said about one photo, and what the physician made of it."""

    class Review(models.TextChoices):
        PENDING = "pending", "Not reviewed"
        CONFIRMED = "confirmed", "Confirmed by physician"
        OVERRULED = "overruled", "Overruled by physician"

    photo = models.OneToOneField(Photo, on_delete=models.CASCADE, related_name="analysis")
    model_version = models.CharField(max_length=100)
    can_assess = models.BooleanField()
    reason = models.CharField(max_length=500, blank=True)
    label = models.CharField(max_length=16, blank=True)
    probabilities = models.JSONField(default=dict, blank=True)
    urgency = models.CharField(max_length=16, choices=Urgency.choices)
    urgency_reason = models.CharField(max_length=300)
    heatmap_path = models.CharField(max_length=300, blank=True)
    mask_path = models.CharField(max_length=300, blank=True)
    area_px = models.PositiveIntegerField(null=True, blank=True)
    area_cm2 = models.FloatField(null=True, blank=True)
    wound_type = models.CharField(max_length=50, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    review = models.CharField(max_length=12, choices=Review.choices, default=Review.PENDING)
    review_note = models.CharField(max_length=300, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Analysis of photo #{self.photo_id}"
