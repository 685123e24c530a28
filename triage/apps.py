from django.apps import AppConfig


class TriageConfig(AppConfig):
    name = "triage"
    verbose_name = "Triage"

    def ready(self) -> None:
        from consults.models import Visit
        from consults.selectors import visit_dates_of
        from telehealth.audit import audit_visit_dates_register
        from triage.models import Intake, Photo, UrgencyChange

        # The patient's "Who opened my record" page names the visit each audited object is of.
        photo_types = ("photo", "photo_photo", "photo_heatmap", "photo_mask", "photo_scale")
        for object_types, model, visit_path in (
            (("queue_entry", "photos"), Visit, ""),
            (photo_types, Photo, "visit"),
            (("intake",), Intake, "visit"),
            (("urgency_change",), UrgencyChange, "visit"),
        ):
            audit_visit_dates_register(
                object_types=object_types,
                visit_dates=visit_dates_of(model=model, visit_path=visit_path),
            )
