from django.urls import path

from triage import views

app_name = "triage"

urlpatterns = [
    path("queue/", views.queue, name="queue"),
    path("queue/partial/", views.queue_partial, name="queue_partial"),
    path("board/", views.board, name="board"),
    path("board/partial/", views.board_partial, name="board_partial"),
    path("visits/<int:visit_id>/urgency/", views.urgency_override, name="urgency_override"),
    path("visits/<int:visit_id>/reassign/", views.reassign, name="reassign"),
    path("visits/<int:visit_id>/no-show/", views.no_show, name="no_show"),
]
