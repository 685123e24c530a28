"""The base for every page socket: text frames only, a size limit, bad JSON answered in-band."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer


class BoundedJsonConsumer(AsyncJsonWebsocketConsumer):
    """Rejects binary and oversized frames with an error frame; undecodable JSON becomes None."""

    max_frame_chars = 1024

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if bytes_data is not None or text_data is None or len(text_data) > self.max_frame_chars:
            await self.send_json({"type": "error", "error": "Message too large or not text."})
            return
        await super().receive(text_data=text_data, **kwargs)

    @classmethod
    async def decode_json(cls, text_data):
        try:
            return await super().decode_json(text_data)
        except ValueError:
            return None
