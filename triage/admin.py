from django.contrib import admin

from triage.models import Intake, QueueSkip, UrgencyChange


@admin.register(Intake)
class IntakeAdmin(admin.ModelAdmin):
    list_display = ("visit", "reason", "symptom_duration", "created_at")


@admin.register(UrgencyChange)
class UrgencyChangeAdmin(admin.ModelAdmin):
    list_display = ("visit", "previous", "level", "source", "actor", "created_at")
    list_filter = ("source", "level")

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(QueueSkip)
class QueueSkipAdmin(admin.ModelAdmin):
    list_display = ("visit", "passed_over", "passed_over_urgency", "overdue_minutes", "actor")
    list_filter = ("passed_over_urgency",)

    def has_change_permission(self, request, obj=None):
        return False
