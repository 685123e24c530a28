from django.contrib import admin

from telehealth.admin import AuditedReadsAdmin
from triage.models import Intake, QueueSkip, UrgencyChange


@admin.register(Intake)
class IntakeAdmin(AuditedReadsAdmin):
    audit_object_type = "intake"
    audit_patients = ("visit__patient",)
    list_display = ("visit", "reason", "symptom_duration", "created_at")


@admin.register(UrgencyChange)
class UrgencyChangeAdmin(AuditedReadsAdmin):
    audit_object_type = "urgency_change"
    audit_patients = ("visit__patient",)
    list_display = ("visit", "previous", "level", "source", "actor", "created_at")
    list_filter = ("source", "level")

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(QueueSkip)
class QueueSkipAdmin(AuditedReadsAdmin):
    # As triage.queue.services.queue_skip_record names it: by the admitted visit; about both
    # patients.
    audit_object_type = "queue_skip"
    audit_object_id = "visit_id"
    audit_patients = ("visit__patient", "passed_over__patient")
    list_display = ("visit", "passed_over", "passed_over_urgency", "overdue_minutes", "actor")
    list_filter = ("passed_over_urgency",)

    def has_change_permission(self, request, obj=None):
        return False
