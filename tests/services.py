"""Private services for fault drills: a Redis server the test may stop and restart, and a
RabbitMQ virtual host of its own.

Drills never touch the machine's shared Redis: each gets its own ``redis-server`` on a free
port with its data folder under the test's tmp_path, so killing it harms nothing else. A
RabbitMQ node is too heavy to start per test: a drill gets a virtual host of its own on the
RabbitMQ that ``$DRILL_AMQP_URL`` names (its queues, messages and connections are separate
from every other vhost's), deleted afterwards.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A ``redis-server`` on 127.0.0.1:<port>; ``stop``/``start``/``restart`` for drills.

    ``persistent=True`` turns on the append-only file with fsync on every write (what
    docs/deploy.md asks of a production broker); ``False`` is a Redis that forgets everything
    when it stops, like the machine's own.
    """

    def __init__(self, folder: Path, *, persistent: bool = True, port: int | None = None):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.persistent = persistent
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 10) -> None:
        args = [
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.folder),
            "--save",
            "",
            "--appendonly",
            "yes" if self.persistent else "no",
            "--appendfsync",
            "always",
            "--logfile",
            str(self.folder / "redis.log"),
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self.ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.folder / "redis.log").read_text(errors="replace")
                raise RuntimeError(f"redis-server did not start:\n{log}")
            time.sleep(0.05)

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server: SIGKILL (``kill=True``) or a clean SIGTERM shutdown."""
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        self.process.wait(timeout=10)
        self.process = None

    def restart(self, *, kill: bool = False, down_for: float = 0.0) -> None:
        self.stop(kill=kill)
        time.sleep(down_for)
        self.start()

    def client(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def waiting(self, queue: str) -> int:
        """Task messages waiting in a Celery queue (kombu keeps each queue as a Redis list)."""
        with self.client() as client:
            return client.llen(queue)

    def unacked(self) -> int:
        """Task messages a worker has taken and not yet acknowledged (kombu's ``unacked`` hash)."""
        with self.client() as client:
            return client.hlen("unacked")

    def unacked_expired(self, visibility_timeout: float) -> int:
        """Unacknowledged messages taken longer ago than the visibility timeout: a worker
        restores these to their queue when it starts, and then every few minutes."""
        with self.client() as client:
            return client.zcount("unacked_index", "-inf", time.time() - visibility_timeout)

    def queued_tasks(self, queue: str) -> list[tuple[str, list]]:
        """(task name, args) of each message waiting in ``queue``, oldest first."""
        with self.client() as client:
            raw = client.lrange(queue, 0, -1)
        tasks = []
        for item in reversed(raw):  # kombu pushes on the left and pops on the right
            message = json.loads(item)
            args = json.loads(base64.b64decode(message["body"]))[0]
            tasks.append((message["headers"]["task"], args))
        return tasks


@pytest.fixture
def private_redis(tmp_path):
    """A persistent private Redis for one test; stopped afterwards whatever happened."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop(kill=True)


@pytest.fixture
def forgetful_redis(tmp_path):
    """A private Redis without persistence: what it held is gone once it stops."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(tmp_path / "forgetful-redis", persistent=False)
    server.start()
    yield server
    server.stop(kill=True)


RABBITMQCTL = shutil.which("rabbitmqctl")


class PrivateVhost:
    """A RabbitMQ virtual host for one drill, created and deleted with ``rabbitmqctl``."""

    def __init__(self, server_url: str):
        parts = urlsplit(server_url)
        self.user = parts.username or "guest"
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.name = f"telehealth-drill-{uuid.uuid4().hex[:12]}"

    def url(self) -> str:
        return f"{self.base}/{quote(self.name, safe='')}"

    def _ctl(self, *args: str) -> str:
        return subprocess.run(
            [RABBITMQCTL, "-q", *args], check=True, capture_output=True, text=True, timeout=60
        ).stdout

    def create(self) -> None:
        self._ctl("add_vhost", self.name)
        self._ctl("set_permissions", "-p", self.name, self.user, ".*", ".*", ".*")

    def delete(self) -> None:
        self._ctl("delete_vhost", self.name)

    def ready(self, queue: str) -> int:
        """Messages waiting in ``queue``, asked of RabbitMQ itself (no statistics delay)."""
        from kombu import Connection

        with Connection(self.url()) as connection:
            return connection.default_channel.queue_declare(queue, passive=True).message_count

    def messages(self, queue: str) -> tuple[int, int]:
        """(ready, unacknowledged) messages of ``queue``; (0, 0) before it exists. From
        RabbitMQ's statistics, which lag by up to ``collect_statistics_interval`` (5 s)."""
        out = self._ctl(
            "list_queues",
            "-p",
            self.name,
            "--no-table-headers",
            "name",
            "messages_ready",
            "messages_unacknowledged",
        )
        for line in out.splitlines():
            name, ready, unacked = line.split()
            if name == queue:
                return int(ready), int(unacked)
        return 0, 0

    def drop_connections(self) -> int:
        """Close every client connection to this vhost, as a broker restart or a network cut
        would; returns how many."""
        out = self._ctl("list_connections", "--no-table-headers", "vhost", "pid")
        pids = [
            pid for vhost, pid in (line.split() for line in out.splitlines()) if vhost == self.name
        ]
        for pid in pids:
            self._ctl("close_connection", pid, "drill: connection dropped")
        return len(pids)

    def queue_type(self, queue: str) -> str:
        out = self._ctl("list_queues", "-p", self.name, "--no-table-headers", "name", "type")
        return dict(line.split() for line in out.splitlines()).get(queue, "")


@pytest.fixture
def private_vhost():
    """A fresh vhost on the RabbitMQ at ``$DRILL_AMQP_URL`` (.ci/run sets it in its second pass)."""
    server = os.environ.get("DRILL_AMQP_URL")
    if not server:
        pytest.skip("DRILL_AMQP_URL is not set (amqp://guest:guest@127.0.0.1:5672/ in CI)")
    if RABBITMQCTL is None:
        pytest.fail("DRILL_AMQP_URL is set but rabbitmqctl is not installed")
    vhost = PrivateVhost(server)
    vhost.create()
    yield vhost
    vhost.delete()
