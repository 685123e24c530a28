from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.http import HttpRequest

from telehealth.audit import audit_reads
from telehealth.models import AuditEvent, ErasureRequest, User


class AuditedReadsAdmin(admin.ModelAdmin):
    """The admin of a model that holds health data: each object a change page or a change list
    shows is audited as a read, like the app's own reads (telehealth.audit)."""

    audit_object_type: str  # the object_type of the events, as the app's own reads name it
    audit_object_id = "pk"  # the field holding the object_id of that type
    audit_patients: tuple[str, ...] = ("patient",)  # lookups from an object to its patient(s)

    def _audit(self, request: HttpRequest, pks: list, *, detail: str) -> None:
        fields = (self.audit_object_id, *self.audit_patients)
        rows = self.model._default_manager.filter(pk__in=pks).values_list(*fields)
        reads = [(row[0], patient) for row in rows for patient in row[1:] if patient is not None]
        audit_reads(request=request, object_type=self.audit_object_type, reads=reads, detail=detail)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        shown = getattr(response, "context_data", None) or {}
        if response.status_code == 200 and shown.get("original") is not None:
            self._audit(request, [shown["original"].pk], detail="admin")
        return response

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        shown = getattr(response, "context_data", None) or {}
        if response.status_code == 200 and shown.get("cl") is not None:
            # The page's rows, which the template then renders from the same cache.
            self._audit(request, [obj.pk for obj in shown["cl"].result_list], detail="admin list")
        return response


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
    list_display = (
        "created_at",
        "actor",
        "action",
        "object_type",
        "object_id",
        "patient",
        "count",
        "last_seen_at",
    )
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
