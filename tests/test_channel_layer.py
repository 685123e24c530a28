"""The pipelined pub/sub channel layer (telehealth/channel_layer.py) on a private redis-server:
every message arrives, each sender's in order, concurrent publishes share pipelines, and a
Redis that is gone fails the senders instead of hanging them."""

import asyncio

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from telehealth.channel_layer import PipelinedPubSubChannelLayer, PipelinedShard


def layer_for(url: str, **host) -> PipelinedPubSubChannelLayer:
    return PipelinedPubSubChannelLayer(
        hosts=[{"address": url, "socket_connect_timeout": 1, **host}], prefix="layertest"
    )


def test_concurrent_group_sends_all_arrive_in_order_and_share_pipelines(
    forgetful_redis, monkeypatch
):
    executed = []
    original = PipelinedShard._flush_pending

    async def counting(self):
        executed.append(len(self._pending))
        await original(self)

    monkeypatch.setattr(PipelinedShard, "_flush_pending", counting)

    async def scenario():
        sender, receiver = layer_for(forgetful_redis.url()), layer_for(forgetful_redis.url())
        channel = await receiver.new_channel()
        await receiver.group_add("room-1", channel)
        # Ten senders, twenty messages each, all published at once.
        await asyncio.gather(
            *(
                asyncio.gather(
                    *(
                        sender.group_send("room-1", {"type": "relay", "who": w, "n": n})
                        for n in range(20)
                    )
                )
                for w in range(10)
            )
        )
        got = [await asyncio.wait_for(receiver.receive(channel), 5) for _ in range(200)]
        await sender.flush()
        await receiver.flush()
        return got

    got = asyncio.run(scenario())
    for who in range(10):
        assert [m["n"] for m in got if m["who"] == who] == list(range(20))
    # The first publish goes out alone; the 199 queued behind it share far fewer pipelines.
    assert sum(executed) >= 1 and len(executed) < 20


def test_a_redis_that_is_gone_fails_the_senders_instead_of_hanging_them(forgetful_redis):
    async def scenario():
        layer = layer_for(forgetful_redis.url(), retry_on_error=[])
        await layer.group_send("room-1", {"type": "relay"})  # connected and working
        forgetful_redis.stop(kill=True)
        results = await asyncio.wait_for(
            asyncio.gather(
                *(layer.group_send("room-1", {"type": "relay", "n": n}) for n in range(5)),
                return_exceptions=True,
            ),
            timeout=15,
        )
        return results

    results = asyncio.run(scenario())
    assert len(results) == 5
    for result in results:
        assert isinstance(result, (RedisConnectionError, RedisTimeoutError, OSError)), result


@pytest.mark.parametrize("messages", [1, 3])
def test_a_lone_message_goes_out_without_waiting_for_company(forgetful_redis, messages):
    async def scenario():
        sender, receiver = layer_for(forgetful_redis.url()), layer_for(forgetful_redis.url())
        channel = await receiver.new_channel()
        for n in range(messages):
            await sender.send(channel, {"type": "relay", "n": n})
            assert (await asyncio.wait_for(receiver.receive(channel), 5))["n"] == n
        await sender.flush()
        await receiver.flush()

    asyncio.run(scenario())
