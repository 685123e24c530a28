from django.contrib import admin

from triage.models import Intake, UrgencyChange


@admin.register(Intake)
class IntakeAdmin(admin.ModelAdmin):
    list_display = ("visit", "reason", "symptom_duration", "created_at")


@admin.register(UrgencyChange)
class UrgencyChangeAdmin(admin.ModelAdmin):
    list_display = ("visit", "previous", "level", "source", "actor", "created_at")
    list_filter = ("source", "level")

    def has_change_permission(self, request, obj=None):
        return False
