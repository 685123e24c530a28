"""The Redis pub/sub channel layer, with publishes pipelined.

channels_redis's ``RedisPubSubChannelLayer`` publishes one message at a time per process: each
``send``/``group_send`` takes the shard's lock, writes one PUBLISH and waits for Redis's reply
before the next may start, and the same lock serializes the SUBSCRIBEs of sockets that are
connecting. Under load the relayed signaling messages of every room of a process queue behind
one another, one Redis round trip each, and behind the subscriptions of new sockets.

Here the publishes skip that lock: each joins a batch, and one flusher per shard sends the batch
as a single pipeline (one write, one read of all the replies) while the next batch fills. One
message alone goes out at once, as before; under load N messages cost one round trip instead of
N. Order is kept (batches go out one after the other, in arrival order), and a Redis error
reaches every caller of the failed batch, as it reached the one caller before (the connection's
retry policy from ``CHANNEL_LAYERS`` still applies to the pipeline). Delivery stays at most
once, as with any pub/sub. The receiving loop waits on the subscription socket instead of
polling it; subscriptions and flush are channels_redis's own.

``bench/signaling.py`` compares the two (``--variant``).
"""

import asyncio
import logging

from channels_redis.pubsub import (
    RedisPubSubChannelLayer,
    RedisPubSubLoopLayer,
    RedisSingleShardConnection,
)
from channels_redis.utils import _wrap_close, decode_hosts

log = logging.getLogger(__name__)

_Pending = tuple[str, bytes, asyncio.Future]


class PipelinedShard(RedisSingleShardConnection):
    def __init__(self, host, channel_layer) -> None:
        super().__init__(host, channel_layer)
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task | None = None

    async def publish(self, channel, message):
        future = asyncio.get_running_loop().create_future()
        self._pending.append((channel, message, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush_pending())
        await future

    async def _flush_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                self._ensure_redis()
                async with self._redis.pipeline(transaction=False) as pipe:
                    for channel, message, _ in batch:
                        pipe.publish(channel, message)
                    await pipe.execute()
            except Exception as error:  # noqa: BLE001 - handed to every caller of the batch
                _settle(batch, error)
            except BaseException:  # cancelled: its callers must not wait forever
                for _, _, future in batch:
                    future.cancel()
                raise
            else:
                _settle(batch, None)

    async def _do_receiving(self):
        """As channels_redis's, but waiting on the socket itself: its version polls with a
        0.1 s timeout, which sets up and cancels a timer for every message received."""
        while True:
            try:
                if self._pubsub and self._pubsub.subscribed:
                    message = await self._pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=None
                    )
                    self._receive_message(message)
                else:
                    await asyncio.sleep(0.1)
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except Exception:
                log.exception("receiving from the channel layer failed; retrying in 1 s")
                await asyncio.sleep(1)


def _settle(batch: list[_Pending], error: BaseException | None) -> None:
    for _, _, future in batch:
        if future.done():
            continue  # its caller was cancelled; the message went out (or failed) anyway
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


class PipelinedPubSubLoopLayer(RedisPubSubLoopLayer):
    def __init__(self, hosts=None, *args, **kwargs) -> None:
        super().__init__(hosts, *args, **kwargs)
        self._shards = [PipelinedShard(host, self) for host in decode_hosts(hosts)]


class PipelinedPubSubChannelLayer(RedisPubSubChannelLayer):
    def _get_layer(self):
        loop = asyncio.get_running_loop()
        try:
            return self._layers[loop]
        except KeyError:
            layer = PipelinedPubSubLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            self._layers[loop] = layer
            _wrap_close(self, loop)
            return layer
