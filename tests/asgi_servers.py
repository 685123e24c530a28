"""Real ASGI server processes for drills and benches: uvicorn subprocesses, sessions, sockets.

Plain helpers without pytest, imported by tests and by bench/signaling.py alike. The servers share
the caller's database (pass its URL in ``env``) and reach each other only through the channel
layer that ``REDIS_URL`` in ``env`` selects, as separate machines would.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(redis_url: str | None, *, database_url: str | None = None) -> dict:
    """A server's environment in a test: test settings, the test's database (or the given one),
    and the given Redis, or none (the embedded in-memory layer and filesystem broker)."""
    import os

    from tests import workers

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "telehealth.settings.test",
        "DATABASE_URL": database_url or workers.database_url(),
    }
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def session_for(user) -> str:
    """A signed-in session for ``user`` in the shared database; returns the session key."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    return store.session_key


@dataclass
class AsgiServer:
    """One ``uvicorn telehealth.asgi:application`` process on 127.0.0.1:``port``."""

    port: int
    process: subprocess.Popen
    log_path: Path | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


# What the Procfile and docs/deploy.md run uvicorn with, beyond the address: sockets without
# per-message compression (docs/deploy.md, "Web: several uvicorn processes"). The browser tests'
# in-process server takes the same setting as a keyword (tests/browser/conftest.py).
PRODUCTION_WS_PER_MESSAGE_DEFLATE = False
PRODUCTION_OPTIONS = ("--ws-per-message-deflate", str(PRODUCTION_WS_PER_MESSAGE_DEFLATE).lower())


def start_server(
    port: int,
    env: dict,
    log_path: Path | None = None,
    *,
    cwd: Path = ROOT,
    options: tuple[str, ...] = (),
) -> AsgiServer:
    """Start a server without waiting for it (see ``wait_listening``); ``cwd`` is the source
    tree it imports (bench/signaling.py runs an older commit's tree as its baseline), ``options``
    more uvicorn command-line options (``--ws wsproto``...)."""
    output = log_path.open("w") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "telehealth.asgi:application",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--lifespan",
            "off",
            *PRODUCTION_OPTIONS,
            *options,
        ],
        cwd=cwd,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    if log_path:
        output.close()  # the child holds its own descriptor
    return AsgiServer(port=port, process=process, log_path=log_path)


def wait_listening(servers: list[AsgiServer], timeout: float = 60) -> None:
    """Poll until every server accepts connections; raise with its log if one dies or stalls."""
    deadline = time.monotonic() + timeout
    for server in servers:
        while True:
            try:
                socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
                break
            except OSError:
                if server.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"server on {server.port} did not start:\n{server.log()}"
                    ) from None
                time.sleep(0.1)


def start_servers(
    count: int,
    env: dict,
    *,
    log_dir: Path | None = None,
    ports: list[int] | None = None,
    cwd: Path = ROOT,
    options: tuple[str, ...] = (),
) -> list[AsgiServer]:
    """Start ``count`` servers on free (or the given) ports and wait until all listen."""
    ports = ports or [free_port() for _ in range(count)]
    servers = [
        start_server(
            port,
            env,
            log_dir / f"asgi-{port}.log" if log_dir else None,
            cwd=cwd,
            options=options,
        )
        for port in ports
    ]
    try:
        wait_listening(servers)
    except BaseException:
        stop_servers(servers)
        raise
    return servers


def stop_servers(servers: list[AsgiServer]) -> None:
    for server in servers:
        server.stop()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self):
        return json.loads(self.body)


def http(
    server: AsgiServer, method: str, path: str, *, session: str = "", timeout: float = 30
) -> Reply:
    """One HTTP request as a signed-in browser would send it (CSRF cookie and header included)."""
    csrf = secrets.token_hex(16)  # any 32-character secret: Django compares cookie and header
    cookies = f"csrftoken={csrf}" + (f"; sessionid={session}" if session else "")
    request = urllib.request.Request(  # noqa: S310 - always http://127.0.0.1
        server.origin + path,
        method=method,
        data=b"" if method == "POST" else None,
        headers={"Cookie": cookies, "X-CSRFToken": csrf, "Referer": server.origin + "/"},
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            return Reply(response.status, _lower(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, _lower(error.headers), error.read())


def _lower(headers) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect is an answer worth asserting on, not something to follow


async def open_socket(server: AsgiServer, path: str, session: str, *, open_timeout: float = 30):
    """A WebSocket to ``path`` on ``server``, signed in by ``session`` (raises if refused)."""
    import websockets

    return await websockets.connect(
        f"ws://127.0.0.1:{server.port}{path}",
        additional_headers={"Cookie": f"sessionid={session}", "Origin": server.origin},
        max_size=2**20,
        open_timeout=open_timeout,
    )


async def open_consult(server: AsgiServer, visit_id: int, session: str, **kwargs):
    """A consult room socket, past its welcome frame."""
    ws = await open_socket(server, f"/ws/consults/{visit_id}/", session, **kwargs)
    welcome = json.loads(await ws.recv())
    assert welcome["type"] == "welcome", welcome
    return ws


def signal_frame(session: str, kind: str, sdp: str) -> str:
    """What consult.js sends for a session description (``kind``: offer or answer)."""
    return json.dumps(
        {"type": "signal", "session": session, "description": {"type": kind, "sdp": sdp}}
    )


async def recv_type(ws, kind: str, timeout: float | None = None) -> dict:
    """The next frame of type ``kind``, skipping others; TimeoutError after ``timeout`` seconds."""

    async with asyncio.timeout(timeout):  # no task per call, unlike asyncio.wait_for
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == kind:
                return message
