"""Pushes to open pages through the channel layer: hints that never fail the work that sent them.

Pages also refresh on their own, so with Redis down the change is saved, the request answers
and the task finishes; the log says once that pushes are failing (the error class, no
traceback) and once that they work again, not once per push.
"""

import logging
import threading

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)

# The error class of the outage under way in this process, or None.
_failing: str | None = None
_lock = threading.Lock()


def _note_outcome(error: str | None) -> None:
    global _failing
    with _lock:
        before, _failing = _failing, error
    if error == before:
        return
    if error is None:
        log.info("live-page pushes work again")
    else:
        log.warning("live-page pushes failing: %s (pages refresh on their own)", error)


def group_send_on_commit(messages: list[tuple[str, dict]]) -> None:
    """Send each ``(group, message)`` once the transaction commits; a failure is logged, not
    raised."""

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            for group, message in messages:
                async_to_sync(layer.group_send)(group, message)
        except Exception as error:  # a hint: whatever broke, the work itself is saved
            _note_outcome(type(error).__name__)
            return
        _note_outcome(None)

    transaction.on_commit(send)
