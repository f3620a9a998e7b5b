"""A test client that speaks the browser contract over a real WebSocket, as a tab would."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlparse

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from .audio import chunks

Message = dict


class Tab:
    def __init__(self, base_url: str, headers: Mapping[str, str] | None = None, source: str | None = None):
        """`headers` go with the upgrade request; `source` is the local address to connect from (another
        127.x.y.z address is another peer as far as the server can tell)."""
        url = base_url.replace("http://", "ws://", 1) + "/ws"
        sock = None
        if source is not None:
            target = urlparse(base_url)
            sock = socket.create_connection((target.hostname, target.port), timeout=5, source_address=(source, 0))
        self.ws = connect(
            url, open_timeout=5, max_size=None, compression=None, additional_headers=dict(headers or {}), sock=sock,
            legacy=True,
        )
        self.messages: list[Message] = []
        self.close_code: int | None = None
        self.closed = threading.Event()
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for raw in self.ws:
                message = json.loads(raw)
                with self._cond:
                    self.messages.append(message)
                    self._cond.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._cond:
                self.close_code = self.ws.close_code
                self.closed.set()
                self._cond.notify_all()

    # sending -------------------------------------------------------------------------------------
    def send(self, message: Message | str) -> None:
        self.ws.send(message if isinstance(message, str) else json.dumps(message))

    def start(self) -> None:
        self.send({"type": "session.start"})

    def stop(self) -> None:
        self.send({"type": "session.stop"})

    def speak(self, pcm: bytes) -> None:
        """Stream PCM as 20 ms audio messages (faster than real time: the VAD runs in audio time)."""
        for chunk in chunks(pcm):
            self.send({"type": "audio", "data": base64.b64encode(chunk).decode()})

    def report(self, item_id: str, played_ms: int) -> None:
        self.send({"type": "playback", "item_id": item_id, "played_ms": played_ms})

    def close(self) -> None:
        self.ws.close()

    # waiting -------------------------------------------------------------------------------------
    def wait_for(self, predicate: Callable[[Message], bool], timeout: float = 10.0, start: int = 0) -> Message:
        deadline = time.monotonic() + timeout
        seen = start
        with self._cond:
            while True:
                for message in self.messages[seen:]:
                    if predicate(message):
                        return message
                seen = len(self.messages)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.closed.is_set() and seen == len(self.messages)):
                    raise AssertionError(f"no matching message within {timeout}s; got: {self.summary()}")
                self._cond.wait(remaining)

    def wait_state(self, state: str, timeout: float = 10.0, start: int = 0) -> Message:
        return self.wait_for(lambda m: m.get("type") == "state" and m.get("state") == state, timeout, start)

    def wait_reply(self, start: int = 0, timeout: float = 15.0) -> Message:
        """The next assistant reply's final transcript, spoken in full (an interrupted one is no reply)."""
        return self.wait_for(lambda m: m.get("type") == "transcript" and m.get("role") == "assistant"
                             and m.get("final") and not m.get("interrupted"), timeout, start)

    def wait_count(self, kind: str, count: int, timeout: float = 10.0) -> list[Message]:
        self.wait_for(lambda _: len(self.of_type(kind)) >= count, timeout)
        return self.of_type(kind)

    def wait_closed(self, timeout: float = 10.0) -> int | None:
        assert self.closed.wait(timeout), "the server did not close the socket"
        return self.close_code

    # reading -------------------------------------------------------------------------------------
    def mark(self) -> int:
        with self._cond:
            return len(self.messages)

    def of_type(self, kind: str) -> list[Message]:
        with self._cond:
            return [m for m in self.messages if m.get("type") == kind]

    def states(self) -> list[str]:
        return [m["state"] for m in self.of_type("state")]

    def audio(self, item_id: str | None = None) -> bytes:
        return b"".join(
            base64.b64decode(m["data"]) for m in self.of_type("audio") if item_id is None or m["item_id"] == item_id
        )

    def summary(self) -> list[str]:
        with self._cond:
            return [
                m["type"] + (f":{m.get('state') or m.get('code') or ''}" if m["type"] in ("state", "error") else "")
                for m in self.messages
            ][-40:]
