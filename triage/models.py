"""Intake answers and the history of every urgency change."""

from django.conf import settings
from django.db import models

from triage.urgency import Urgency


class Intake(models.Model):
    """What the patient told us when booking."""

    visit = models.OneToOneField("consults.Visit", on_delete=models.CASCADE, related_name="intake")
    reason = models.CharField(max_length=200)
    symptoms = models.TextField(blank=True)
    symptom_duration = models.CharField(max_length=100, blank=True)
    red_flags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Intake for visit #{self.visit_id}"


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
