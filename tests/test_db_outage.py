"""The database drops away for a while: clean 503 pages, open calls carry on, recovery by itself.

A real uvicorn process serves the app. On PostgreSQL its DATABASE_URL goes through a TCP proxy the
test can cut (every connection dropped, new ones refused) and restore; on SQLite it gets a copy of
the test database in a folder the test moves away (a new connection cannot open the file) and back.
"""

import asyncio
import contextlib
import json
import socket
import sqlite3
import threading
import time
from pathlib import Path
from unittest import mock

import pytest
from channels.testing import WebsocketCommunicator
from django.db import OperationalError, connection
from websockets.exceptions import InvalidStatus

from consults.booking import services as booking_services
from consults.room import services as room_services
from telehealth.asgi import application
from telehealth.outage import RETRY_AFTER_S, RefuseSocketsWhenUnavailable
from tests.asgi_servers import (
    http,
    open_consult,
    recv_type,
    server_env,
    session_for,
    start_servers,
    stop_servers,
)
from tests.test_permissions import login

RECOVERY_S = 30


class CuttableProxy:
    """A TCP proxy on a free local port in front of ``target``, with a cable to pull.

    ``cut()`` drops every proxied connection and refuses new ones until ``restore()``, as when
    the database host falls off the network or restarts.
    """

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.cut_off = False
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            if self.cut_off:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                self.sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
        with self.lock:
            self.sockets -= {source, sink}

    def cut(self) -> None:
        self.cut_off = True
        with self.lock:
            ends = list(self.sockets)
        for end in ends:  # wakes both pumps, which close their pair
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def restore(self) -> None:
        self.cut_off = False

    def close(self) -> None:
        self.cut()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()


class PostgresOutage:
    def __init__(self):
        db = connection.settings_dict
        self.settings = db
        self.proxy = CuttableProxy((db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)))

    def database_url(self) -> str:
        user = self.settings.get("USER") or "postgres"
        return f"postgres://{user}@127.0.0.1:{self.proxy.port}/{self.settings['NAME']}"

    def cut(self) -> None:
        self.proxy.cut()

    def restore(self) -> None:
        self.proxy.restore()

    def close(self) -> None:
        self.proxy.close()


class SqliteOutage:
    def __init__(self, folder: Path):
        self.folder = folder
        self.away = folder.with_name(folder.name + "-away")

    def database_url(self) -> str:
        """A copy of the test database as committed now, for the server alone."""
        self.folder.mkdir()
        path = self.folder / "clinic.sqlite3"
        source, target = sqlite3.connect(connection.settings_dict["NAME"]), sqlite3.connect(path)
        try:
            source.backup(target)
        finally:
            source.close()
            target.close()
        return f"sqlite:///{path}"

    def cut(self) -> None:
        self.folder.rename(self.away)  # the file and its WAL move together

    def restore(self) -> None:
        self.away.rename(self.folder)

    def close(self) -> None:
        pass


@pytest.fixture
def outage(transactional_db, tmp_path):
    postgres = connection.vendor == "postgresql"
    drill = PostgresOutage() if postgres else SqliteOutage(tmp_path / "db")
    yield drill
    drill.close()


async def until(attempt, *, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, InvalidStatus):
            result = await attempt()
            if result:
                return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not recovered within {timeout}s")
        await asyncio.sleep(0.2)


def test_database_outage_gives_clean_503_pages_and_recovers_by_itself(
    outage, patient, physician, tmp_path
):
    visit = room_services.visit_admit(
        visit=booking_services.visit_join_on_demand(
            patient=patient, reason="Itchy rash on left forearm"
        ),
        physician=physician,
    )
    patient.last_name = "Quarrington-Vale"  # distinctive, so a match cannot be a coincidence
    patient.save(update_fields=["last_name"])
    session = session_for(patient)
    private = [b"Itchy rash", patient.email.encode(), b"Quarrington"]
    # The embedded layer and broker (no Redis): this drill is about the database alone.
    env = server_env(None, database_url=outage.database_url())
    (server,) = start_servers(1, env, log_dir=tmp_path)

    async def get(path: str, *, signed_in: bool = True):
        cookie = session if signed_in else ""
        return await asyncio.to_thread(http, server, "GET", path, session=cookie)

    async def scenario():
        page = await get("/visits/")
        assert page.status == 200 and b"Itchy rash" in page.body
        call = await open_consult(server, visit.pk, session)

        outage.cut()

        page = await get("/visits/")
        assert page.status == 503, page.body[:500]
        assert page.headers["retry-after"] == str(RETRY_AFTER_S)
        assert page.headers["cache-control"] == "no-store"
        assert b"Briefly unavailable" in page.body and b"css/app.css" in page.body
        assert b"Traceback" not in page.body
        assert not any(secret in page.body for secret in private)
        health = await get("/healthz", signed_in=False)  # as a load balancer asks
        assert health.status == 503
        assert health.json()["checks"]["database"] == {"ok": False, "error": "OperationalError"}
        # A call under way carries on: its socket needs the database only to join and leave.
        await call.send(json.dumps({"type": "ping", "t": 1}))
        assert (await recv_type(call, "pong", RECOVERY_S))["t"] == 1
        log = server.log()
        assert not any(secret.decode() in log for secret in private)
        records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        page_loggers = ("telehealth.outage", "django.request")
        page_records = [r for r in records if r["logger"] in page_loggers]
        messages = [r["message"] for r in page_records]
        assert "database unavailable: OperationalError on GET /visits/" in messages
        # One line per failed page, no traceback (/healthz logs its own detail for operators).
        assert not any("exception" in r for r in page_records)
        with pytest.raises(InvalidStatus):  # joining needs the database: refused, not hanging
            await open_consult(server, visit.pk, session)

        outage.restore()

        async def page_back():
            page = await get("/visits/")
            return page.status == 200 and b"Itchy rash" in page.body

        await until(page_back, timeout=RECOVERY_S)
        rejoined = await open_consult(server, visit.pk, session)
        assert (await get("/healthz", signed_in=False)).status == 200
        for ws in (call, rejoined):
            await ws.close()

    try:
        asyncio.run(scenario())
    finally:
        stop_servers([server])


@pytest.mark.asyncio
async def test_socket_refused_with_try_again_while_the_database_is_down(patient):
    app = RefuseSocketsWhenUnavailable(application)
    communicator = WebsocketCommunicator(
        app,
        "/ws/queue/",
        headers=[(b"origin", b"http://localhost"), (b"cookie", b"sessionid=" + b"k" * 32)],
    )
    down = OperationalError("connection refused")
    with mock.patch("django.contrib.sessions.backends.db.SessionStore.load", side_effect=down):
        connected, code = await communicator.connect()
    assert (connected, code) == (False, 1013)


def test_database_error_in_a_view_gives_the_503_page_not_a_500(client, patient, caplog):
    """The drill's outage is met by the session lookup; this one only by the view's own query."""
    login(client, patient)
    down = OperationalError("server closed the connection unexpectedly")
    with mock.patch("consults.booking.views.visits_for_patient", side_effect=down):
        response = client.get("/visits/")
    assert response.status_code == 503
    assert response["Retry-After"] == str(RETRY_AFTER_S)
    assert b"Briefly unavailable" in response.content
    assert "database unavailable: OperationalError on GET /visits/" in caplog.messages
    assert not any(record.exc_info for record in caplog.records)
    # Other errors are not disguised as an outage.
    with mock.patch("consults.booking.views.visits_for_patient", side_effect=ValueError("bug")):
        client.raise_request_exception = False
        assert client.get("/visits/").status_code == 500
