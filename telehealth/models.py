"""Users with roles, the append-only audit log of access to health data, erasure requests."""

import zoneinfo

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models


class Role(models.TextChoices):
    PATIENT = "patient", "Patient"
    PHYSICIAN = "physician", "Physician"
    ADMIN = "admin", "Administrator"


TIME_ZONE_CHOICES = [(name, name) for name in sorted(zoneinfo.available_timezones())]


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra):
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.update(is_staff=True, is_superuser=True, role=Role.ADMIN)
        return self.create_user(email, password, **extra)


class User(AbstractUser):
    """A person who signs in: a patient, a physician or a clinic administrator."""

    username = None
    email = models.EmailField("email address", unique=True)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.PATIENT)
    time_zone = models.CharField(max_length=64, choices=TIME_ZONE_CHOICES, default="UTC")
    date_of_birth = models.DateField(null=True, blank=True)
    # Physicians only: whether they take patients from the on-demand ("first available") queue.
    serves_on_demand = models.BooleanField(default=False)
    specialty = models.CharField(max_length=100, blank=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []
    objects = UserManager()

    class Meta:
        ordering = ["last_name", "first_name", "email"]

    def __str__(self) -> str:
        return self.get_full_name() or self.email

    @property
    def display_name(self) -> str:
        if self.role == Role.PHYSICIAN:
            return f"Dr {self.get_full_name() or self.email}"
        return self.get_full_name() or self.email

    @property
    def is_patient(self) -> bool:
        return self.role == Role.PATIENT

    @property
    def is_physician(self) -> bool:
        return self.role == Role.PHYSICIAN

    @property
    def is_clinic_admin(self) -> bool:
        return self.role == Role.ADMIN or self.is_superuser


class AuditAction(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Write"
    DENIED = "denied", "Denied"
    EXPORT = "export", "Export"
    DELETE = "delete", "Delete"


class AuditEvent(models.Model):
    """One access to health data: who, what, when, from where. Never rewritten or deleted.

    The one change an event sees: when the same read repeats within ``AUDIT_REPEAT_WINDOW`` of
    it (same person, object and place), ``count`` and ``last_seen_at`` grow (telehealth.audit).
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    action = models.CharField(max_length=16, choices=AuditAction.choices)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64, blank=True)
    patient = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events_about",
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=256, blank=True)
    path = models.CharField(max_length=512, blank=True)
    detail = models.CharField(max_length=256, blank=True)
    count = models.PositiveIntegerField(default=1)
    last_seen_at = models.DateTimeField(null=True, blank=True)  # the last repeat, if any

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["patient", "created_at"]),
            # Finding the event a repeated read counts on.
            models.Index(fields=["actor", "object_type", "object_id", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.object_type}"

    def save(self, *args, **kwargs):
        # Append-only from the application: an existing row is never rewritten.
        if self.pk is not None:
            raise PermissionError("Audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit events are append-only")


class ErasureRequest(models.Model):
    """A patient's request to erase their data; a clinic administrator processes it.

    ``report`` says, per kind of data, what was removed and what was kept and why
    (``telehealth.retention``); it holds counts, dates and fixed texts, never health data.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for the clinic"
        DONE = "done", "Done"

    patient = models.ForeignKey(User, on_delete=models.PROTECT, related_name="erasure_requests")
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    processed_at = models.DateTimeField(null=True, blank=True)
    processed_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    report = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient"],
                condition=models.Q(status="pending"),
                name="one_pending_erasure_request_per_patient",
            ),
        ]

    def __str__(self) -> str:
        return f"Erasure request #{self.pk} ({self.get_status_display()})"
