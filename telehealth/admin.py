from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from telehealth.models import AuditEvent, ErasureRequest, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ("email",)
    list_display = ("email", "first_name", "last_name", "role", "is_active")
    list_filter = ("role", "is_active", "serves_on_demand")
    search_fields = ("email", "first_name", "last_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Person", {"fields": ("first_name", "last_name", "date_of_birth", "time_zone")}),
        ("Role", {"fields": ("role", "specialty", "serves_on_demand")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "role", "password1", "password2")}),
    )


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor", "action", "object_type", "object_id", "patient")
    list_filter = ("action", "object_type")
    search_fields = ("actor__email", "patient__email", "object_id")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ErasureRequest)
class ErasureRequestAdmin(admin.ModelAdmin):
    """Read-only: requests are filed by patients and processed on the erasure requests page,
    where the service keeps the report and the audit trail."""

    list_display = ("created_at", "patient", "status", "processed_at", "processed_by")
    list_filter = ("status",)
    search_fields = ("patient__email",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
