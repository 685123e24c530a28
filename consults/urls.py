from django.urls import path

from consults import views, views_room

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
    path("visits/<int:visit_id>/admit/", views_room.admit, name="admit"),
    path("visits/<int:visit_id>/room/", views_room.room, name="room"),
    path("visits/<int:visit_id>/end/", views_room.end, name="end"),
    path("visits/<int:visit_id>/consent/", views_room.consent, name="consent"),
    path("visits/<int:visit_id>/device-check/", views_room.device_check, name="device_check"),
    path("visits/<int:visit_id>/chat/", views_room.chat, name="chat"),
    path(
        "visits/<int:visit_id>/chat/<int:message_id>/attachment/",
        views_room.chat_attachment,
        name="chat_attachment",
    ),
]
