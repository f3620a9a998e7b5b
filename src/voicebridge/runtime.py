"""Where the WSGI threads and the asyncio side meet — the only module that crosses threads.

- `LoopThread` owns the one asyncio event loop that runs every upstream Voice Live session.
  WSGI threads hand it work with `call()` (non-blocking) or `run()` (blocking, with a timeout).
- `TabChannel` wraps one browser WebSocket. The tab's own WSGI thread does all socket I/O for it:
  it wakes on a single event that both simple-websocket's reader (a frame arrived) and the loop
  (something to send) set. The loop therefore never blocks on a slow browser, and a slow browser
  only ever stalls its own thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from simple_websocket import ConnectionClosed

T = TypeVar("T")
log = logging.getLogger("voicebridge.runtime")


class LoopThread:
    def __init__(self, name: str = "voicebridge-loop"):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def start(self) -> LoopThread:
        self._thread.start()
        return self

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, fn: Callable[..., object], *args: object) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)


class _Close:
    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str):
        self.code = code
        self.reason = reason


class TabChannel:
    """One browser socket. `send`/`close` are safe from any thread; `pump` runs on the tab's WSGI thread."""

    def __init__(self, ws: Any):
        self._ws = ws
        self._outbox: deque[str | _Close] = deque()
        # simple-websocket sets this event whenever a frame lands in ws.input_buffer; sharing it gives
        # the WSGI thread one thing to wait on for both directions.
        self._wake: threading.Event = ws.event
        self.open = True

    def send(self, text: str) -> None:
        self._outbox.append(text)
        self._wake.set()

    def close(self, code: int = 1000, reason: str = "") -> None:
        self._outbox.append(_Close(code, reason))
        self._wake.set()

    def pump(self, on_frames: Callable[[list[str | bytes]], None]) -> None:
        """Move frames both ways until the socket closes. Returns when the tab is gone."""
        ws = self._ws
        inbox: list[str | bytes] = ws.input_buffer
        outbox = self._outbox
        try:
            while True:
                self._wake.wait(0.5)  # also catches a close whose flag lands after the wake-up
                self._wake.clear()
                if inbox:
                    frames = []
                    while inbox:
                        frames.append(inbox.pop(0))
                    on_frames(frames)
                while outbox:
                    item = outbox.popleft()
                    if isinstance(item, _Close):
                        ws.close(item.code, item.reason)
                        return
                    ws.send(item)
                if not ws.connected and not inbox:
                    return
        except (ConnectionClosed, OSError):
            return
        finally:
            self.open = False
