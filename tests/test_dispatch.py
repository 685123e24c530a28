"""telehealth.consumers.dispatch_serially: how every page socket hands messages to handlers."""

import asyncio

import pytest
from channels.exceptions import StopConsumer

from telehealth.consumers import dispatch_serially

pytestmark = pytest.mark.asyncio


def source(queue: asyncio.Queue):
    return queue.get


async def test_each_source_in_its_order_and_handlers_never_side_by_side():
    client, layer = asyncio.Queue(), asyncio.Queue()
    seen, running = [], []

    async def handler(message):
        running.append(message)
        assert len(running) == 1, f"{running} at once"
        await asyncio.sleep(0)  # a handler that awaits lets the other reader try to run
        seen.append(message)
        running.remove(message)
        if message == "stop":
            raise StopConsumer

    for i in range(5):
        client.put_nowait(f"c{i}")
        layer.put_nowait(f"l{i}")
    task = asyncio.ensure_future(dispatch_serially([source(client), source(layer)], handler))
    await asyncio.sleep(0.05)
    client.put_nowait("stop")
    with pytest.raises(StopConsumer):
        await asyncio.wait_for(task, 2)
    assert [m for m in seen if m.startswith("c")] == [f"c{i}" for i in range(5)]
    assert [m for m in seen if m.startswith("l")] == [f"l{i}" for i in range(5)]
    assert seen[-1] == "stop"


async def test_a_handler_error_ends_it_and_the_other_reader_is_cancelled():
    client, layer = asyncio.Queue(), asyncio.Queue()
    cancelled = asyncio.Event()

    async def layer_receive():
        try:
            return await layer.get()
        except asyncio.CancelledError:
            cancelled.set()  # the channel layer unsubscribes here (channels_redis)
            raise

    async def handler(message):
        raise ValueError(message)

    client.put_nowait("boom")
    with pytest.raises(ValueError, match="boom"):
        await asyncio.wait_for(dispatch_serially([client.get, layer_receive], handler), 2)
    assert cancelled.is_set()


async def test_cancelling_the_consumer_cancels_its_readers():
    client, layer = asyncio.Queue(), asyncio.Queue()
    task = asyncio.ensure_future(dispatch_serially([client.get, layer.get], lambda m: None))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
