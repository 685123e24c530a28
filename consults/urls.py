from django.urls import path

from consults.booking import views
from consults.notes import views as note_views
from consults.room import views as views_room
from consults.transcripts import views as transcript_views

app_name = "consults"

urlpatterns = [
    path("visits/", views.visit_list, name="visit_list"),
    path("visits/book/", views.book_start, name="book_start"),
    path("visits/book/on-demand/", views.book_on_demand, name="book_on_demand"),
    path("visits/book/<int:physician_id>/", views.book_slot, name="book_slot"),
    path("visits/<int:visit_id>/", views.visit_detail, name="visit_detail"),
    path("visits/<int:visit_id>/place/", views.visit_place, name="visit_place"),
    path("visits/<int:visit_id>/cancel/", views.visit_cancel, name="visit_cancel"),
    path("visits/<int:visit_id>/check-in/", views.visit_check_in, name="visit_check_in"),
    path("visits/<int:visit_id>/reschedule/", views.visit_reschedule, name="visit_reschedule"),
    path("availability/", views.availability, name="availability"),
    path("visits/<int:visit_id>/note/", note_views.note_detail, name="note"),
    path("visits/<int:visit_id>/note/progress/", note_views.note_progress, name="note_progress"),
    path("visits/<int:visit_id>/note/save/", note_views.note_save, name="note_save"),
    path("notes/to-sign/", note_views.notes_to_sign, name="notes_to_sign"),
    path("visits/<int:visit_id>/note/redraft/", note_views.note_redraft, name="note_redraft"),
    path("visits/<int:visit_id>/note/fhir/", note_views.note_fhir, name="note_fhir"),
    path("visits/<int:visit_id>/summary/", note_views.after_visit_summary, name="summary"),
    path("visits/<int:visit_id>/admit/", views_room.admit, name="admit"),
    path("visits/<int:visit_id>/room/", views_room.room, name="room"),
    path("visits/<int:visit_id>/end/", views_room.end, name="end"),
    path("visits/<int:visit_id>/leave/", views_room.leave, name="leave"),
    path("visits/<int:visit_id>/consent/", views_room.consent, name="consent"),
    path("visits/<int:visit_id>/device-check/", views_room.device_check, name="device_check"),
    path("visits/<int:visit_id>/chat/", views_room.chat, name="chat"),
    path(
        "visits/<int:visit_id>/chat/<int:message_id>/attachment/",
        views_room.chat_attachment,
        name="chat_attachment",
    ),
    path("visits/<int:visit_id>/audio/chunks/", transcript_views.chunk_upload, name="audio_chunk"),
    path(
        "visits/<int:visit_id>/audio/upload/",
        transcript_views.recording_upload,
        name="audio_upload",
    ),
    path(
        "visits/<int:visit_id>/audio/<int:chunk_id>/",
        transcript_views.chunk_audio,
        name="audio_chunk_file",
    ),
    path("visits/<int:visit_id>/transcript/", transcript_views.transcript_page, name="transcript"),
    path(
        "visits/<int:visit_id>/transcript/live/",
        transcript_views.transcript_live,
        name="transcript_live",
    ),
    path(
        "visits/<int:visit_id>/transcript/status/",
        transcript_views.transcript_status,
        name="transcript_status",
    ),
    path(
        "visits/<int:visit_id>/transcript/lines/<int:segment_id>/",
        transcript_views.segment_correct,
        name="transcript_correct",
    ),
    path(
        "visits/<int:visit_id>/transcript/lines/<int:segment_id>/corrections/<int:index>/revert/",
        transcript_views.segment_correction_revert,
        name="transcript_revert",
    ),
]
