from django.apps import AppConfig


class ConsultsConfig(AppConfig):
    name = "consults"
    verbose_name = "Consults"

    def ready(self) -> None:
        # The feature folders' tasks register here (Celery's autodiscovery only looks for
        # <app>.tasks), in the worker and in the web process that sends them by name.
        from consults.booking import tasks as _booking_tasks  # noqa: F401
        from consults.models import AudioChunk, ChatMessage, Recording, TranscriptSegment, Visit
        from consults.notes import tasks as _note_tasks  # noqa: F401
        from consults.notes.services import note_request_when_settled, notes_resend_lost
        from consults.retention import retention_register
        from consults.selectors import visit_dates_of
        from consults.transcripts import tasks as _transcript_tasks  # noqa: F401
        from consults.transcripts.services import chunks_resend_lost, transcript_settled
        from telehealth.audit import audit_visit_dates_register
        from telehealth.lost_work import lost_work_register

        # The patient's "Who opened my record" page names the visit each audited object is of.
        for object_types, model, visit_path in (
            (("visit", "consult", "chat", "note", "note_fhir", "summary", "transcript"), Visit, ""),
            (("attachment",), ChatMessage, "visit"),
            (("recording",), Recording, "visit"),
            (("audio",), AudioChunk, "recording__visit"),
            (("transcript_segment",), TranscriptSegment, "visit"),
        ):
            audit_visit_dates_register(
                object_types=object_types,
                visit_dates=visit_dates_of(model=model, visit_path=visit_path),
            )
        # The note is drafted once the transcript is complete (transcripts never import notes).
        transcript_settled.connect(note_request_when_settled, dispatch_uid="notes-draft")
        # What the core's sweeper and retention run (telehealth never imports consults).
        lost_work_register("chunks", chunks_resend_lost)
        lost_work_register("notes", notes_resend_lost)
        retention_register()
