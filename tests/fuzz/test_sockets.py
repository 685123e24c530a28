"""The page sockets survive fuzzed frames: the consult room relays exactly the frames its schema
accepts (cleaned) and answers everything else with an error frame, the queue sockets answer a
ping with a pong and anything else with an error, and no frame ever crashes a consumer.

Each example sends the fuzzed frame and then sentinels (a ``hello`` the other side must relay,
a ``ping`` the sender must answer), so what the frame caused is read without sleeping: it is
whatever arrives before the sentinels.
"""

import asyncio
import contextlib
import json
import math
import random

import pytest
from channels.testing import WebsocketCommunicator
from hypothesis import event, example, given
from hypothesis import strategies as st

from consults.booking import services as booking_services
from consults.room import services as room_services
from consults.room.signaling import MAX_FRAME_CHARS
from telehealth.asgi import application
from telehealth.consumers import MAX_JSON_DEPTH
from tests.fuzz.support import fuzz_settings, tally
from triage.queue.consumers import MAX_MESSAGE_BYTES

pytestmark = pytest.mark.django_db(transaction=True)

MEMORY_BOUND_MIB = 128
ROLES = ("patient", "physician")
SENTINEL = 7_654_321_000  # sentinel pings carry t = SENTINEL + n, which no fuzzed ping does
TIMEOUT = 10  # a deadline for frames that must arrive (the Redis layer included), not a sleep


# --- The schema, written out independently of consults/signaling.py ----------------------------


class Rejected(Exception):
    pass


def _text(value, limit, *, optional=False):
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise Rejected
    return value


def _keys(message, allowed):
    if not set(message) <= allowed:
        raise Rejected


def _number(value):
    """A JSON number a browser reads back as the same finite number (performance.now())."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Rejected
    if isinstance(value, float) and not math.isfinite(value):
        raise Rejected
    if isinstance(value, int) and abs(value) > 2**53:
        raise Rejected
    return value


def _session(message):
    session = _text(message.get("session"), 64)
    if not session:
        raise Rejected
    return session


def expected_room_message(content):
    """What the room must do with ``content``: the clean message, or Rejected."""
    if not isinstance(content, dict):
        raise Rejected
    kind = content.get("type")
    if kind == "ping":
        _keys(content, {"type", "t"})
        return {"type": "ping", "t": _number(content.get("t"))}
    if kind == "hello":
        _keys(content, {"type", "session"})
        return {"type": "hello", "session": _session(content)}
    if kind == "media":
        _keys(content, {"type", "audio", "video", "screen"})
        flags = {k: content.get(k, False) for k in ("audio", "video", "screen")}
        if not all(isinstance(v, bool) for v in flags.values()):
            raise Rejected
        return {"type": "media", **flags}
    if kind != "signal":
        raise Rejected
    _keys(content, {"type", "session", "description", "candidate"})
    if ("description" in content) == ("candidate" in content):
        raise Rejected
    clean = {"type": "signal", "session": _session(content)}
    if "description" in content:
        description = content["description"]
        if not isinstance(description, dict):
            raise Rejected
        _keys(description, {"type", "sdp"})
        if description.get("type") not in ("offer", "answer", "rollback"):
            raise Rejected
        clean["description"] = {
            "type": description["type"],
            "sdp": _text(description.get("sdp", ""), 100_000),
        }
        return clean
    candidate = content["candidate"]
    if candidate is not None:
        if not isinstance(candidate, dict):
            raise Rejected
        _keys(candidate, {"candidate", "sdpMid", "sdpMLineIndex", "usernameFragment"})
        index = candidate.get("sdpMLineIndex")
        if index is not None and (
            isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 64
        ):
            raise Rejected
        candidate = {
            "candidate": _text(candidate.get("candidate", ""), 2_000),
            "sdpMid": _text(candidate.get("sdpMid"), 64, optional=True),
            "sdpMLineIndex": index,
            "usernameFragment": _text(candidate.get("usernameFragment"), 256, optional=True),
        }
    clean["candidate"] = candidate
    return clean


def _depth(value) -> int:
    if isinstance(value, dict):
        value = list(value.values())
    if not isinstance(value, list):
        return 0
    return 1 + max(map(_depth, value), default=0)


def decoded(frame, limit):
    """The JSON a consumer receives from ``frame``, or Rejected (binary, too long, not JSON,
    nested deeper than MAX_JSON_DEPTH)."""
    if isinstance(frame, bytes) or len(frame) > limit:
        raise Rejected
    try:
        content = json.loads(frame)
        if _depth(content) > MAX_JSON_DEPTH:
            raise Rejected
    except (ValueError, RecursionError) as exc:
        raise Rejected from exc
    return content


# --- Frames -----------------------------------------------------------------------------------

FIELDS = [
    "type",
    "t",
    "session",
    "description",
    "candidate",
    "audio",
    "video",
    "screen",
    "sdp",
    "sdpMid",
    "sdpMLineIndex",
    "usernameFragment",
    "from",
    "role",
    "sender",
    "payload",
]
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def long_text(*limits):
    return st.sampled_from([n + d for n in limits for d in (-1, 0, 1)]).map(lambda n: "v" * n)


numbers = st.one_of(
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([2**53, 2**53 + 1, -(2**53) - 1, 10**400, True, 1e308]),
)
descriptions = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["offer", "answer", "rollback", "pranswer", ""]) | json_values,
        "sdp": st.text(max_size=40) | long_text(100_000) | json_values,
        "extra": json_values,
    },
)
candidates = st.fixed_dictionaries(
    {},
    optional={
        "candidate": st.text(max_size=40) | long_text(2_000) | json_values,
        "sdpMid": st.text(max_size=4) | long_text(64) | json_values,
        "sdpMLineIndex": st.integers(-2, 66) | numbers | json_values,
        "usernameFragment": st.text(max_size=8) | long_text(256) | json_values,
        "extra": json_values,
    },
)
FIELD_VALUES = {
    "t": numbers | json_values,
    "session": st.text(min_size=1, max_size=8) | long_text(64) | st.just("") | json_values,
    "description": descriptions | json_values,
    "candidate": st.none() | candidates | json_values,
    "audio": st.booleans() | json_values,
    "video": st.booleans() | json_values,
    "screen": st.booleans() | json_values,
}


@st.composite
def messages(draw):
    """Objects shaped like the schema's messages, each field right, wrong or missing."""
    kinds = ["ping", "hello", "signal", "media", "peer.joined", "room.relay", "welcome", ""]
    message = {"type": draw(st.sampled_from(kinds) | json_values)}
    for key in draw(st.sets(st.sampled_from(sorted(FIELD_VALUES)), max_size=4)):
        message[key] = draw(FIELD_VALUES[key])
    if draw(st.integers(0, 9)) == 0:
        message[draw(st.sampled_from(FIELDS))] = draw(json_values)
    return message


sessions = st.text(min_size=1, max_size=64)
valid_messages = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("ping")},
        optional={
            "t": st.none()
            | st.integers(-(2**53), 2**53)
            | st.floats(allow_nan=False, allow_infinity=False)
        },
    ),
    st.fixed_dictionaries({"type": st.just("hello"), "session": sessions}),
    st.fixed_dictionaries(
        {
            "type": st.just("signal"),
            "session": sessions,
            "description": st.fixed_dictionaries(
                {"type": st.sampled_from(["offer", "answer", "rollback"])},
                optional={"sdp": st.text(max_size=200) | st.just("v" * 100_000)},
            ),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("signal"),
            "session": sessions,
            "candidate": st.none()
            | st.fixed_dictionaries(
                {},
                optional={
                    "candidate": st.text(max_size=100),
                    "sdpMid": st.none() | st.text(max_size=64),
                    "sdpMLineIndex": st.none() | st.integers(0, 63),
                    "usernameFragment": st.none() | st.text(max_size=256),
                },
            ),
        }
    ),
    st.fixed_dictionaries(
        {"type": st.just("media")},
        optional={key: st.booleans() for key in ("audio", "video", "screen")},
    ),
)


@st.composite
def nearly_valid_messages(draw):
    """A valid message with one field replaced by any JSON value, or dropped."""
    message = draw(valid_messages)
    key = draw(st.sampled_from(sorted(message)) | st.sampled_from(FIELDS))
    if draw(st.integers(0, 3)) == 0:
        message.pop(key, None)
    else:
        message[key] = draw(json_values)
    return message


def nested(depth: int, kind: str) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    return '{"type":' * depth + '"ping"' + "}" * depth


def number_text(digits: int) -> str:
    return '{"type": "ping", "t": ' + "9" * digits + "}"


frames = st.one_of(
    valid_messages.map(json.dumps),
    nearly_valid_messages().map(json.dumps),
    messages().map(json.dumps),
    json_values.map(json.dumps),
    st.builds(
        lambda text, cut: text[:cut], messages().map(json.dumps), st.integers(0, 40)
    ),  # truncated
    st.builds(
        nested,
        st.sampled_from([2, 500, 999, 1_000, 5_000, 20_000, 59_990]) | st.integers(1, 70_000),
        st.sampled_from(["list", "object"]),
    ),
    st.builds(number_text, st.sampled_from([17, 300, 4_300, 4_301, 20_000])),
    st.text(max_size=64),
    long_text(MAX_FRAME_CHARS, MAX_MESSAGE_BYTES),
    st.binary(max_size=64),
)


# --- Sockets kept open across examples --------------------------------------------------------


async def _open(path, user):
    communicator = WebsocketCommunicator(
        application, path, headers=[(b"origin", b"http://localhost")]
    )
    communicator.scope["user"] = user
    connected, code = await communicator.connect(timeout=TIMEOUT)
    assert connected, code
    return communicator


def _strict_json(text: str):
    def refuse(constant):
        raise AssertionError(f"the server sent {constant}, which is not JSON")

    message = json.loads(text, parse_constant=refuse)
    assert isinstance(message, dict) and isinstance(message.get("type"), str)
    return message


async def _read_until(communicator, is_last) -> list | None:
    """Frames up to and including the one ``is_last`` picks; None if the socket was closed."""
    seen = []
    while True:
        output = await communicator.receive_output(timeout=TIMEOUT)
        if output["type"] == "websocket.close":
            return None
        assert output["type"] == "websocket.send" and output.get("text") is not None, output
        message = _strict_json(output["text"])
        seen.append(message)
        if is_last(message):
            return seen


class Sockets:
    """One event loop and the open sockets of a test; reopened after a failed example."""

    def __init__(self, paths: dict[str, tuple[str, object]]):
        self.paths = paths
        self.loop = asyncio.new_event_loop()
        self.open: dict[str, WebsocketCommunicator] = {}
        self.counter = 0
        self.opened = 0

    def run(self, coroutine_function, *args):
        return self.loop.run_until_complete(self._guarded(coroutine_function, *args))

    async def _guarded(self, coroutine_function, *args):
        if not self.open:
            # Hypothesis seeds the global random for every example, and the in-memory layer
            # names channels with it: reseed, or a reopened socket reuses a recorded name.
            self.opened += 1
            random.seed(f"sockets-{id(self)}-{self.opened}")
            for name, (path, user) in self.paths.items():
                self.open[name] = await _open(path, user)
                if name in ROLES:
                    assert (await self.open[name].receive_json_from(TIMEOUT))["type"] == "welcome"
        try:
            return await coroutine_function(self, *args)
        except BaseException:
            await self._close()  # the next example starts from fresh sockets
            raise

    async def _close(self):
        for communicator in self.open.values():
            with contextlib.suppress(Exception):  # it may have crashed already
                await communicator.disconnect(timeout=TIMEOUT)
        self.open = {}

    def close(self):
        self.loop.run_until_complete(self._close())
        self.loop.close()

    async def send(self, name, frame):
        # send_input, not send_to: send_to refuses empty frames, which a browser can send.
        key = "bytes" if isinstance(frame, bytes) else "text"
        await self.open[name].send_input({"type": "websocket.receive", key: frame})


@pytest.fixture(autouse=True)
def _no_rate_limits(settings):
    """Thousands of frames from one user: what is fuzzed here is validation, not the per-user
    limits (tests/test_room_access.py closes a flood)."""
    settings.SOCKET_FRAME_RATE = settings.SOCKET_FRAME_BURST = 10**9
    settings.SOCKET_CONNECTS_PER_MINUTE = 10**9


def _assert_error_frame(message):
    assert message["type"] == "error", message
    error = message.get("error")
    assert isinstance(error, str) and 0 < len(error.strip()) <= 300, message


@pytest.fixture
def room(patient, physician):
    visit = booking_services.visit_join_on_demand(patient=patient, reason="Rash")
    visit = room_services.visit_admit(visit=visit, physician=physician)
    path = f"/ws/consults/{visit.pk}/"
    sockets = Sockets({"patient": (path, patient), "physician": (path, physician)})
    yield sockets
    sockets.close()


async def _room_exchange(sockets: Sockets, frame):
    sockets.counter += 1
    n = SENTINEL + sockets.counter
    await sockets.send("patient", frame)
    await sockets.send("patient", json.dumps({"type": "hello", "session": f"sentinel-{n}"}))
    await sockets.send("patient", json.dumps({"type": "ping", "t": n}))
    to_sender = await _read_until(sockets.open["patient"], lambda m: m == {"type": "pong", "t": n})
    to_peer = await _read_until(
        sockets.open["physician"],
        lambda m: m.get("type") == "peer.joined" and m.get("session") == f"sentinel-{n}",
    )
    return to_sender, to_peer


@fuzz_settings(1200)
@given(frame=frames)
@example(frame='{"type": "signal", "session": "s", "description": {"type": ["offer"]}}')
@example(frame='{"type": "ping", "t": NaN}')
@example(frame='{"type": "ping", "t": true}')
@example(frame='{"type": "signal", "session": "s", "candidate": {"sdpMLineIndex": true}}')
@example(frame=nested(60_000, "list"))  # within the frame limit, past the JSON nesting limit
@example(frame=b"\x00\xff binary")
def test_room_relays_exactly_the_valid_frames_and_answers_the_rest(room, frame):
    tally("socket: consult room (ConsultRoomConsumer)")
    to_sender, to_peer = room.run(_room_exchange, frame)
    assert to_sender is not None and to_peer is not None, "the room closed a socket"
    relayed, answers = to_peer[:-1], to_sender[:-1]
    try:
        message = expected_room_message(decoded(frame, MAX_FRAME_CHARS))
    except Rejected:
        event("refused")
        assert len(answers) == 1, answers
        _assert_error_frame(answers[0])
        assert relayed == [], "an invalid frame reached the other side"
        return
    event(f"accepted: {message['type']}")  # --hypothesis-show-statistics shows the mix
    if message["type"] == "ping":
        assert answers == [{"type": "pong", "t": message["t"]}] and relayed == []
    elif message["type"] == "hello":
        assert answers == []
        joined = {"type": "peer.joined", "role": "patient", "session": message["session"]}
        assert relayed == [joined]
    else:
        assert answers == [] and relayed == [{**message, "from": "patient"}]


@pytest.fixture
def queue_pages(patient, physician):
    visit = booking_services.visit_join_on_demand(patient=patient, reason="Cough")
    sockets = Sockets(
        {"staff": ("/ws/queue/", physician), "waiting": (f"/ws/visits/{visit.pk}/", patient)}
    )
    yield sockets
    sockets.close()


async def _page_exchange(sockets: Sockets, name, frame):
    sockets.counter += 1
    n = SENTINEL + sockets.counter
    await sockets.send(name, frame)
    await sockets.send(name, json.dumps({"type": "ping", "t": n}))
    return await _read_until(sockets.open[name], lambda m: m == {"type": "pong", "t": n})


def expected_pong(content):
    if not isinstance(content, dict) or content.get("type") != "ping":
        raise Rejected
    _keys(content, {"type", "t"})
    return {"type": "pong", "t": _number(content.get("t"))}


@fuzz_settings(600)
@given(socket=st.sampled_from(["staff", "waiting"]), frame=frames)
@example(socket="staff", frame='{"type": "ping", "t": Infinity}')
@example(socket="waiting", frame='{"type": "ping", "t": {"deep": [1, 2]}}')
@example(socket="staff", frame=b"\x00")
def test_queue_sockets_answer_a_ping_or_an_error_never_crash(queue_pages, socket, frame):
    tally("socket: queue pages (StaffQueueConsumer, VisitWaitConsumer)")
    seen = queue_pages.run(_page_exchange, socket, frame)
    assert seen is not None, "the page socket closed"
    answers = [m for m in seen[:-1] if m["type"] != "queue.changed"]  # the page's own news
    assert len(answers) == 1, answers
    try:
        pong = expected_pong(decoded(frame, MAX_MESSAGE_BYTES))
    except Rejected:
        event("refused")
        _assert_error_frame(answers[0])
        return
    event("accepted: ping")
    assert answers == [pong]
