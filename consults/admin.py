from django.contrib import admin

from consults.models import AvailabilityException, AvailabilityRule, Visit
from telehealth.admin import AuditedReadsAdmin


@admin.register(Visit)
class VisitAdmin(AuditedReadsAdmin):
    audit_object_type = "visit"
    list_display = ("id", "patient", "physician", "kind", "status", "scheduled_start", "urgency")
    list_filter = ("status", "kind", "urgency")
    search_fields = ("patient__email", "physician__email", "reason")
    # Urgency changes go through the triage service (with a reason), not a raw edit.
    readonly_fields = ("urgency", "urgency_reason", "created_at")


admin.site.register(AvailabilityRule)
admin.site.register(AvailabilityException)
