"""Live-page pushes are hints: a channel layer that is down fails no work, and the log says so
once per outage (the error class, no traceback), not once per push."""

import logging
from unittest import mock

import pytest

from consults.realtime import room_push
from telehealth import push
from triage.realtime import queue_changed


class FlakyLayer:
    def __init__(self) -> None:
        self.down = True
        self.sent: list[tuple[str, dict]] = []

    async def group_send(self, group: str, message: dict) -> None:
        if self.down:
            raise ConnectionError(
                "Error 111 connecting to redis.internal:6379. Connection refused."
            )
        self.sent.append((group, message))


@pytest.fixture
def layer():
    push._failing = None
    flaky = FlakyLayer()
    with mock.patch.object(push, "get_channel_layer", return_value=flaky):
        yield flaky
    push._failing = None


def test_pushes_while_the_layer_is_down_log_one_line_per_outage(
    layer, caplog, django_capture_on_commit_callbacks
):
    caplog.set_level(logging.INFO)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            room_push(visit_id=7, payload={"type": "transcript.updated"}, staff_only=True)
    layer.down = False
    with django_capture_on_commit_callbacks(execute=True):
        room_push(visit_id=7, payload={"type": "note.drafted"}, staff_only=True)
        room_push(visit_id=7, payload={"type": "note.drafted"}, staff_only=True)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert lines == [
        "live-page pushes failing: ConnectionError (pages refresh on their own)",
        "live-page pushes work again",
    ]
    assert not any(r.exc_info for r in caplog.records)
    assert "redis.internal" not in caplog.text
    assert (
        layer.sent
        == [("consult.7.staff", {"type": "room.push", "payload": {"type": "note.drafted"}})] * 2
    )


def test_a_queue_event_while_the_layer_is_down_fails_nothing(
    layer, caplog, django_capture_on_commit_callbacks
):
    visit = mock.Mock(pk=3, physician_id=None)
    with django_capture_on_commit_callbacks(execute=True):
        queue_changed(visit=visit, event="checked_in")
    assert [r.getMessage() for r in caplog.records if r.name == "telehealth.push"] == [
        "live-page pushes failing: ConnectionError (pages refresh on their own)"
    ]
