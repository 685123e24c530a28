"""The consult room: admission from the lobby, consent, the call page and its signaling
socket, ICE servers, chat with attachments, hanging up.

``services`` (writes), ``views`` (HTTP), ``consumers`` and ``signaling`` (the WebSocket),
``ice``, ``attachments``.
"""
