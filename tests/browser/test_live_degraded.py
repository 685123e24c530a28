"""A live page shows that live updates stopped when the channel layer fails, and recovers.

The fault is injected into the running server's channel layer (every send and subscribe raises
Redis' ConnectionError), as when Redis goes down; tests/test_redis_restart.py drills the same
path against a real Redis that is killed and restarted.
"""

import pytest
from channels.layers import InMemoryChannelLayer
from playwright.sync_api import expect
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.browser.conftest import in_thread, sign_in
from tests.factories import PASSWORD, PhysicianFactory

pytestmark = pytest.mark.browser


def _redis_down(*args, **kwargs):
    raise RedisConnectionError("Error 111 connecting to redis. Connection refused.")


def test_queue_page_says_reconnecting_while_the_layer_is_down(
    live_asgi, browser, monkeypatch, settings
):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    physician = in_thread(lambda: PhysicianFactory(email="dr.live@example.org"))
    context = browser.new_context()
    context.add_init_script("window.__livePingMs = 500")
    page = context.new_page()
    sign_in(page, live_asgi, physician.email, PASSWORD)
    page.goto(f"{live_asgi}/queue/")
    status = page.locator("#live-status")
    expect(status).to_have_text("Live", timeout=15_000)

    with monkeypatch.context() as fault:
        fault.setattr(InMemoryChannelLayer, "send", _redis_down)
        fault.setattr(InMemoryChannelLayer, "group_add", _redis_down)
        # The next ping's pong cannot travel: the server closes the socket (1013), the page
        # says so and keeps trying; reconnects are refused while the fault lasts.
        expect(status).to_have_text("Reconnecting…", timeout=10_000)
        assert status.get_attribute("data-state") == "degraded"
        page.wait_for_timeout(1500)
        expect(status).to_have_text("Reconnecting…")

    expect(status).to_have_text("Live", timeout=30_000)
