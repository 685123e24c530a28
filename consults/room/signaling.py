"""Schemas for what a consult page may send over its socket. Anything else is rejected."""

import math

MAX_FRAME_CHARS = 120_000
MAX_SDP_CHARS = 100_000
MAX_CANDIDATE_CHARS = 2_000
MAX_SESSION_CHARS = 64
MAX_SAFE_INTEGER = 2**53  # beyond it a browser reads back another number


class InvalidMessage(ValueError):
    """The message does not match any accepted schema; the text goes back in an error frame."""


def _require_keys(message: dict, allowed: set[str]) -> None:
    extra = set(message) - allowed
    if extra:
        raise InvalidMessage(f"Unexpected fields: {', '.join(sorted(extra))[:200]}")


def _short_str(value, *, limit: int, name: str, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidMessage(f"{name} must be text of at most {limit} characters")
    return value


def _number(value, *, name: str) -> int | float | None:
    """A number the page reads back unchanged: not a boolean, NaN, infinite or over 2**53."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidMessage(f"{name} must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidMessage(f"{name} must be a finite number")
    if isinstance(value, int) and abs(value) > MAX_SAFE_INTEGER:
        raise InvalidMessage(f"{name} is out of range")
    return value


def _session(message: dict) -> str:
    session = _short_str(message.get("session"), limit=MAX_SESSION_CHARS, name="session")
    if not session:
        raise InvalidMessage("session is required")
    return session


def _description(value) -> dict:
    if not isinstance(value, dict):
        raise InvalidMessage("description must be an object")
    _require_keys(value, {"type", "sdp"})
    if value.get("type") not in ("offer", "answer", "rollback"):  # a tuple: the value may be a list
        raise InvalidMessage("description.type must be offer, answer or rollback")
    sdp = _short_str(value.get("sdp", ""), limit=MAX_SDP_CHARS, name="description.sdp")
    return {"type": value["type"], "sdp": sdp}


def _candidate(value) -> dict | None:
    if value is None:
        return None  # end of candidates
    if not isinstance(value, dict):
        raise InvalidMessage("candidate must be an object or null")
    _require_keys(value, {"candidate", "sdpMid", "sdpMLineIndex", "usernameFragment"})
    line_index = value.get("sdpMLineIndex")
    if line_index is not None and (
        isinstance(line_index, bool) or not isinstance(line_index, int) or not 0 <= line_index < 64
    ):
        raise InvalidMessage("candidate.sdpMLineIndex must be a small integer")
    return {
        "candidate": _short_str(
            value.get("candidate", ""), limit=MAX_CANDIDATE_CHARS, name="candidate.candidate"
        ),
        "sdpMid": _short_str(value.get("sdpMid"), limit=64, name="sdpMid", optional=True),
        "sdpMLineIndex": line_index,
        "usernameFragment": _short_str(
            value.get("usernameFragment"), limit=256, name="usernameFragment", optional=True
        ),
    }


def validate_inbound(message) -> dict:
    """Return a clean copy of an accepted message, or raise InvalidMessage."""
    if not isinstance(message, dict):
        raise InvalidMessage("Messages must be JSON objects")
    kind = message.get("type")
    if kind == "ping":
        _require_keys(message, {"type", "t"})
        return {"type": "ping", "t": _number(message.get("t"), name="t")}
    if kind == "hello":
        _require_keys(message, {"type", "session"})
        return {"type": "hello", "session": _session(message)}
    if kind == "signal":
        _require_keys(message, {"type", "session", "description", "candidate"})
        has_description, has_candidate = "description" in message, "candidate" in message
        if has_description == has_candidate:
            raise InvalidMessage("A signal carries exactly one of description or candidate")
        clean = {"type": "signal", "session": _session(message)}
        if has_description:
            clean["description"] = _description(message["description"])
        else:
            clean["candidate"] = _candidate(message["candidate"])
        return clean
    if kind == "media":
        _require_keys(message, {"type", "audio", "video", "screen"})
        if not all(isinstance(message.get(k, False), bool) for k in ("audio", "video", "screen")):
            raise InvalidMessage("audio, video and screen must be true or false")
        return {
            "type": "media",
            "audio": message.get("audio", False),
            "video": message.get("video", False),
            "screen": message.get("screen", False),
        }
    raise InvalidMessage("Unknown message type")
