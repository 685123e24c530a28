from django.urls import path

from triage.queue import consumers

websocket_urlpatterns = [
    path("ws/queue/", consumers.StaffQueueConsumer.as_asgi()),
    path("ws/visits/<int:visit_id>/", consumers.VisitWaitConsumer.as_asgi()),
]
