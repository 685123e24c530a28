"""Physician availability and visits (scheduled or on-demand)."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

from consults.urgency import Urgency


class AvailabilityRule(models.Model):
    """Recurring weekly hours, in the physician's own time zone."""

    physician = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="availability_rules"
    )
    weekday = models.PositiveSmallIntegerField(
        choices=[
            (0, "Monday"),
            (1, "Tuesday"),
            (2, "Wednesday"),
            (3, "Thursday"),
            (4, "Friday"),
            (5, "Saturday"),
            (6, "Sunday"),
        ]
    )
    start_time = models.TimeField()
    end_time = models.TimeField()
    slot_minutes = models.PositiveSmallIntegerField(default=20)

    class Meta:
        ordering = ["weekday", "start_time"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_time__gt=models.F("start_time")), name="rule_end_after_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.physician} {self.get_weekday_display()} {self.start_time}-{self.end_time}"


class AvailabilityException(models.Model):
    """A one-off change on a date: time off, or extra hours."""

    class Kind(models.TextChoices):
        UNAVAILABLE = "unavailable", "Unavailable"
        EXTRA = "extra", "Extra hours"

    physician = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="availability_exceptions"
    )
    date = models.DateField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # Empty times mean the whole day (for UNAVAILABLE).
    start_time = models.TimeField(null=True, blank=True)
    end_time = models.TimeField(null=True, blank=True)
    slot_minutes = models.PositiveSmallIntegerField(default=20)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["date", "start_time"]

    def __str__(self) -> str:
        return f"{self.physician} {self.date} {self.kind}"


class VisitStatus(models.TextChoices):
    BOOKED = "booked", "Booked"
    CHECKED_IN = "checked_in", "Waiting"
    IN_CONSULT = "in_consult", "In consult"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"
    NO_SHOW = "no_show", "No-show"


ACTIVE_STATUSES = [VisitStatus.BOOKED, VisitStatus.CHECKED_IN, VisitStatus.IN_CONSULT]


class Visit(models.Model):
    """A remote visit: booked into a physician's slot, or waiting in the on-demand queue."""

    class Kind(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        ON_DEMAND = "on_demand", "First available"

    patient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="visits_as_patient"
    )
    physician = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="visits_as_physician",
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SCHEDULED)
    status = models.CharField(
        max_length=16, choices=VisitStatus.choices, default=VisitStatus.BOOKED, db_index=True
    )
    scheduled_start = models.DateTimeField(null=True, blank=True)
    duration_minutes = models.PositiveSmallIntegerField(default=20)
    reason = models.CharField(max_length=200)
    # Set only through triage.services (intake, photo triage, live alerts, admin override).
    urgency = models.CharField(max_length=16, choices=Urgency.choices, default=Urgency.STANDARD)
    urgency_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    checked_in_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-scheduled_start", "-created_at"]
        constraints = [
            # The database is the referee for booking races: one active visit per slot.
            models.UniqueConstraint(
                fields=["physician", "scheduled_start"],
                condition=Q(status__in=ACTIVE_STATUSES) & Q(scheduled_start__isnull=False),
                name="one_active_visit_per_physician_slot",
            ),
            models.UniqueConstraint(
                fields=["patient", "scheduled_start"],
                condition=Q(status__in=ACTIVE_STATUSES) & Q(scheduled_start__isnull=False),
                name="one_active_visit_per_patient_time",
            ),
        ]

    def __str__(self) -> str:
        return f"Visit #{self.pk} ({self.get_status_display()})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class ConsentPurpose(models.TextChoices):
    RECORDING = "recording", "Record the consult's audio"
    AI_NOTES = "ai_notes", "AI transcription and note drafting"
    AI_PHOTOS = "ai_photos", "AI analysis of my photos"


class Consent(models.Model):
    """One consent decision for one purpose. Rows are appended; the latest row is in force."""

    patient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="consents"
    )
    visit = models.ForeignKey(Visit, on_delete=models.CASCADE, related_name="consents")
    purpose = models.CharField(max_length=16, choices=ConsentPurpose.choices)
    granted = models.BooleanField()
    version = models.CharField(max_length=16)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["visit", "purpose", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.purpose}={'yes' if self.granted else 'no'} (visit #{self.visit_id})"


class RoomPresence(models.Model):
    """Who is connected to a consult room, per socket, so any server process can tell."""

    visit = models.ForeignKey(Visit, on_delete=models.CASCADE, related_name="presences")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    channel_name = models.CharField(max_length=200, unique=True)
    joined_at = models.DateTimeField(auto_now_add=True)
    left_at = models.DateTimeField(null=True, blank=True)
    # Refreshed by the open socket; a row not seen for ROOM_PRESENCE_TTL seconds no longer counts,
    # so a socket whose disconnect never ran (dropped TCP, killed server) cannot stay "present".
    seen_at = models.DateTimeField(db_default=Now())

    def __str__(self) -> str:
        return f"{self.user} in visit #{self.visit_id}"


class ChatMessage(models.Model):
    """A text message in a consult, with an optional attachment stored privately."""

    visit = models.ForeignKey(Visit, on_delete=models.CASCADE, related_name="chat_messages")
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    text = models.TextField(max_length=2000, blank=True)
    attachment_path = models.CharField(max_length=300, blank=True)
    attachment_name = models.CharField(max_length=200, blank=True)
    attachment_type = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Message #{self.pk} in visit #{self.visit_id}"
