from django.apps import AppConfig


class TriageConfig(AppConfig):
    name = "triage"
    verbose_name = "Triage"

    def ready(self) -> None:
        from consults import hooks
        from consults.models import Visit
        from consults.selectors import visit_dates_of
        from telehealth.audit import audit_visit_dates_register
        from telehealth.lost_work import lost_work_register
        from telehealth.observability import scrape_collector_register
        from triage import realtime, services
        from triage.metrics import QueueDepthCollector
        from triage.models import Intake, Photo, UrgencyChange

        # Registered in every process: services send tasks by name (telehealth.lost_work).
        from triage.photos import tasks as _tasks  # noqa: F401
        from triage.photos.services import photos_resend_lost
        from triage.queue import selectors
        from triage.queue import services as queue_services
        from triage.retention import retention_register

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
        # What the visit layer tells and asks of triage (consults/hooks.py: it never imports us).
        hooks.hook_register("visit_changed", realtime.queue_changed)
        hooks.hook_register("intake_record", services.intake_record)
        hooks.hook_register("queue_passed_over", selectors.queue_passed_over)
        hooks.hook_register("queue_skip_record", queue_services.queue_skip_record)
        hooks.hook_register("waiting_place", selectors.waiting_place)
        hooks.hook_register("red_flag_heard", services.visit_urgency_raise_heard)
        # What the core's sweeper, retention and metrics run (telehealth never imports triage).
        lost_work_register("photos", photos_resend_lost)
        retention_register()
        scrape_collector_register(QueueDepthCollector)
