"""A real coturn on loopback for tests, and the smallest TURN client that asks it for a relay.

Debian's ``coturn`` package provides ``turnserver``; .ci/run installs it. The client speaks just
enough STUN (RFC 5389) and TURN (RFC 5766) for one Allocate with long-term credentials: the
first request is refused with 401 and a realm and nonce, the second carries the username and a
MESSAGE-INTEGRITY keyed by MD5(username:realm:password).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import shutil
import socket
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

TURNSERVER = shutil.which("turnserver") or "/usr/bin/turnserver"
REALM = "telehealth.test"
MAGIC_COOKIE = 0x2112A442
ALLOCATE = 0x0003
ALLOCATE_SUCCESS = 0x0103
USERNAME, MESSAGE_INTEGRITY, ERROR_CODE = 0x0006, 0x0008, 0x0009
REALM_ATTR, NONCE, REQUESTED_TRANSPORT = 0x0014, 0x0015, 0x0019
UDP = 17


@dataclass
class TurnServer:
    port: int
    secret: str
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_turnserver(log_dir: Path) -> TurnServer:
    """coturn with the REST-API shared secret, listening and relaying on 127.0.0.1 only."""
    if not os.path.exists(TURNSERVER):
        raise RuntimeError("turnserver is required: apt-get install coturn")
    port, secret = _free_udp_port(), secrets.token_hex(16)
    relay_low = 40000 + secrets.randbelow(20000)
    log_path = log_dir / f"turnserver-{port}.log"
    command = [
        TURNSERVER,
        "-n",  # no configuration file: everything is on this line
        "--listening-ip=127.0.0.1",
        "--relay-ip=127.0.0.1",
        f"--listening-port={port}",
        f"--min-port={relay_low}",
        f"--max-port={relay_low + 200}",
        "--use-auth-secret",
        f"--static-auth-secret={secret}",
        f"--realm={REALM}",
        "--fingerprint",
        "--no-tls",
        "--no-dtls",
        "--no-cli",
        "--allow-loopback-peers",  # both browsers' relayed addresses are on 127.0.0.1
        "--log-file=stdout",
        "--simple-log",
        f"--pidfile={log_dir / f'turnserver-{port}.pid'}",
        f"--userdb={log_dir / f'turnserver-{port}.sqlite'}",  # never the shared /var/lib/turn
    ]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    server = TurnServer(port=port, secret=secret, process=process, log_path=log_path)
    deadline = time.monotonic() + 20
    while True:
        try:
            allocate(server.port, username="", password="", timeout=0.5)
            return server
        except TimeoutError:
            if process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"turnserver did not start:\n{log_path.read_text()}") from None


def _attribute(kind: int, value: bytes) -> bytes:
    padding = b"\x00" * (-len(value) % 4)
    return struct.pack("!HH", kind, len(value)) + value + padding


def _message(kind: int, transaction: bytes, attributes: bytes) -> bytes:
    return struct.pack("!HHI", kind, len(attributes), MAGIC_COOKIE) + transaction + attributes


def _with_integrity(kind: int, transaction: bytes, attributes: bytes, key: bytes) -> bytes:
    # The length in the header counts the MESSAGE-INTEGRITY attribute (24 bytes) it covers.
    header = struct.pack("!HHI", kind, len(attributes) + 24, MAGIC_COOKIE) + transaction
    digest = hmac.new(key, header + attributes, hashlib.sha1).digest()
    return header + attributes + _attribute(MESSAGE_INTEGRITY, digest)


def _parse(data: bytes) -> tuple[int, dict[int, bytes]]:
    kind, length = struct.unpack("!HH", data[:4])
    attributes, offset = {}, 20
    while offset < 20 + length:
        attr, size = struct.unpack("!HH", data[offset : offset + 4])
        attributes.setdefault(attr, data[offset + 4 : offset + 4 + size])
        offset += 4 + size + (-size % 4)
    return kind, attributes


def _exchange(sock: socket.socket, port: int, packet: bytes, timeout: float):
    sock.settimeout(timeout)
    sock.sendto(packet, ("127.0.0.1", port))
    try:
        return _parse(sock.recv(2048))
    except TimeoutError:
        raise TimeoutError("no answer from the TURN server") from None


def allocate(port: int, *, username: str, password: str, timeout: float = 5) -> int:
    """Ask for a UDP relay; return 0 when it is granted, else the STUN error code (401: the
    credentials were refused)."""
    transport = _attribute(REQUESTED_TRANSPORT, bytes([UDP, 0, 0, 0]))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        kind, attributes = _exchange(
            sock, port, _message(ALLOCATE, secrets.token_bytes(12), transport), timeout
        )
        if kind == ALLOCATE_SUCCESS:
            return 0
        realm, nonce = attributes.get(REALM_ATTR), attributes.get(NONCE)
        if realm is None or nonce is None or not username:
            return _error_code(attributes)
        key = hashlib.md5(f"{username}:{realm.decode()}:{password}".encode()).digest()  # noqa: S324 - the TURN key derivation
        signed = (
            _attribute(USERNAME, username.encode())
            + _attribute(REALM_ATTR, realm)
            + _attribute(NONCE, nonce)
            + transport
        )
        packet = _with_integrity(ALLOCATE, secrets.token_bytes(12), signed, key)
        kind, attributes = _exchange(sock, port, packet, timeout)
        return 0 if kind == ALLOCATE_SUCCESS else _error_code(attributes)


def _error_code(attributes: dict[int, bytes]) -> int:
    value = attributes.get(ERROR_CODE, b"\x00\x00\x00\x00")
    return (value[2] & 0x07) * 100 + value[3]
