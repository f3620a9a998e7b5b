"""Hostile clients: raw sockets on 127.0.0.1 that do what browsers never do (issue 10).

Only the standard library: each client writes exactly the bytes an attacker would, and reads the
server's frames itself (server frames are unmasked, so parsing them is a few lines).
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import struct
from pathlib import Path

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def connect(port: int, rcvbuf: int | None = None, timeout: float = 10.0) -> socket.socket:
    sock = socket.socket()
    if rcvbuf is not None:  # before connect, so the window is small from the start
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    return sock


def upgrade_request(port: int, key: str | None = "auto", version: str | None = "13", origin: str | None = None) -> bytes:
    lines = ["GET /ws HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket", "Connection: Upgrade"]
    if key is not None:
        lines.append("Sec-WebSocket-Key: " + (base64.b64encode(os.urandom(16)).decode() if key == "auto" else key))
    if version is not None:
        lines.append(f"Sec-WebSocket-Version: {version}")
    if origin is not None:
        lines.append(f"Origin: {origin}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_head(sock: socket.socket) -> tuple[int, bytes]:
    """Read an HTTP response head; returns (status, whatever came after it)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response head: {data[:200]!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), rest


def upgraded(port: int, rcvbuf: int | None = None) -> socket.socket:
    """A socket that completed the WebSocket handshake on /ws (and will then do as the test says)."""
    sock = connect(port, rcvbuf)
    sock.sendall(upgrade_request(port))
    status, rest = read_head(sock)
    assert status == 101, status
    assert not rest
    return sock


def frame(opcode: int, payload: bytes = b"", fin: bool = True, mask: bool = True, rsv: int = 0) -> bytes:
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def text(message: dict | str) -> bytes:
    return frame(TEXT, (message if isinstance(message, str) else json.dumps(message)).encode())


class Reader:
    """Reads the server's (unmasked) frames from a raw socket."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""

    def _need(self, n: int) -> bool:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                return False
            self.buf += chunk
        return True

    def next(self) -> tuple[int, bytes] | None:
        """The next frame as (opcode, payload), or None at EOF."""
        if not self._need(2):
            return None
        b0, b1 = self.buf[0], self.buf[1]
        n, at = b1 & 0x7F, 2
        if n == 126:
            if not self._need(4):
                return None
            n, at = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            if not self._need(10):
                return None
            n, at = struct.unpack("!Q", self.buf[2:10])[0], 10
        if not self._need(at + n):
            return None
        payload, self.buf = self.buf[at:at + n], self.buf[at + n:]
        return b0 & 0x0F, payload

    def until_message(self, predicate) -> dict:
        while True:
            got = self.next()
            if got is None:
                raise AssertionError("the server closed before the expected message")
            opcode, payload = got
            if opcode == TEXT:
                message = json.loads(payload)
                if predicate(message):
                    return message

    def close_code(self) -> int | None:
        """Read until the server's close frame; its code (None if the socket ended without one)."""
        while True:
            try:
                got = self.next()
            except (ConnectionResetError, TimeoutError):
                return None
            if got is None:
                return None
            opcode, payload = got
            if opcode == CLOSE:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005

    def at_eof(self) -> bool:
        """Drain until the server closes the TCP connection (True), or the socket's timeout (False)."""
        try:
            while self.sock.recv(65536):
                pass
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        return True


def http(port: int, path: str = "/healthz", host: str | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
    """A plain GET on a fresh connection; `timeout` is a hang detector, not a performance bound."""
    with connect(port, timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host or f'127.0.0.1:{port}'}\r\nConnection: close\r\n\r\n".encode())
        status, rest = read_head(sock)
        body = rest
        while chunk := sock.recv(65536):
            body += chunk
        return status, body


_LEVEL = re.compile(r" (ERROR|CRITICAL) |Traceback \(most recent call last\)")


def _lines(log: Path, since: int) -> list[str]:
    with open(log, "rb") as f:
        f.seek(since)
        return f.read().decode(errors="replace").splitlines()


def error_lines(log: Path, since: int = 0) -> list[str]:
    """ERROR/CRITICAL lines and tracebacks logged after byte offset `since`."""
    return [line for line in _lines(log, since) if _LEVEL.search(line)]


def warning_lines(log: Path, since: int = 0) -> list[str]:
    return [line for line in _lines(log, since) if " WARNING " in line]
