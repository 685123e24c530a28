from django.urls import path

from consults.room import consumers

websocket_urlpatterns = [
    path("ws/consults/<int:visit_id>/", consumers.ConsultRoomConsumer.as_asgi()),
]
