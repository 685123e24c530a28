from django.urls import path

from triage.photos import views as views_photos
from triage.queue import views

app_name = "triage"

urlpatterns = [
    path("queue/", views.queue, name="queue"),
    path("queue/partial/", views.queue_partial, name="queue_partial"),
    path("board/", views.board, name="board"),
    path("board/partial/", views.board_partial, name="board_partial"),
    path("visits/<int:visit_id>/urgency/", views.urgency_override, name="urgency_override"),
    path("visits/<int:visit_id>/reassign/", views.reassign, name="reassign"),
    path("visits/<int:visit_id>/no-show/", views.no_show, name="no_show"),
    path("visits/<int:visit_id>/photos/", views_photos.photo_list, name="photo_list"),
    path("visits/<int:visit_id>/photos/add/", views_photos.photo_add, name="photo_add"),
    path("photos/<int:photo_id>/review/", views_photos.photo_review, name="photo_review"),
    path("photos/<int:photo_id>/scale/", views_photos.photo_scale, name="photo_scale"),
    path("photos/<int:photo_id>/<str:variant>/", views_photos.photo_image, name="photo_image"),
]
