"""Where the WSGI threads and the asyncio side meet — the only module that crosses threads.

Flask and flask-sock accept each browser WebSocket (routing, the HTTP upgrade). Right after the
handshake the tab's socket is handed to the one asyncio event loop that also runs every upstream Voice
Live session, and the gunicorn thread just waits for the tab to end. Every audio frame then stays on
one thread from browser to Voice Live and back: no hand-off between threads per chunk, no thread per
direction, and a C-accelerated frame parser instead of a pure-Python one. (The first design kept two
threads per tab and handed each chunk across three of them; under load the GIL turns every hand-off
into a wait, see docs/performance.md.)

- `LoopThread` owns the event loop; WSGI threads reach it only through `call()` / `run()`.
- `serve_tab()` is what a gunicorn thread does for one tab.
- `TabConnection` is the tab's socket on the loop: an asyncio protocol around websockets' sans-I/O
  WebSocket implementation, already in the OPEN state because simple-websocket did the handshake.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from websockets.frames import Opcode
from websockets.protocol import Protocol as WebSocketProtocol
from websockets.protocol import Side

from .protocol import MAX_FRAME_BYTES
from .tasks import TaskOwner

T = TypeVar("T")
log = logging.getLogger("voicebridge.runtime")

# A tab that stops reading gets this much queued audio (about a minute) before it is cut off, so a
# stalled browser costs bounded memory and never slows anyone else.
MAX_WRITE_BUFFER = 4 * 1024 * 1024
CLOSE_HANDSHAKE_S = 2.0


class LoopThread:
    def __init__(self, name: str = "voicebridge-loop"):
        self.loop = asyncio.new_event_loop()
        self.tasks = TaskOwner("loop")  # the loop's own tasks (socket adoptions); sessions own theirs
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
            try:
                self.run(self.tasks.close(1.0), timeout=2.0)
            except Exception as exc:  # stopping goes on regardless
                log.warning("event=loop.tasks_left detail=%s", exc)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)


class HandshakeOnly:
    """simple-websocket `thread_class`: the handshake happens in its constructor, its reader thread
    never starts — the event loop reads the socket instead."""

    def __init__(self, target: Callable[[], None] | None = None, **_: object):
        self.name = "voicebridge-adopted"

    def start(self) -> None:
        return None


# flask-sock passes these to simple_websocket.Server for every /ws request.
SOCK_SERVER_OPTIONS = {"thread_class": HandshakeOnly}


class TabHandler(Protocol):
    def on_frame(self, frame: str | bytes) -> None: ...

    def on_closed(self) -> None: ...


def serve_tab(runtime: LoopThread, ws: Any, attach: Callable[[TabConnection], TabHandler]) -> None:
    """Run on the tab's gunicorn thread: give the upgraded socket to the loop, wait until the tab is gone."""
    done = threading.Event()
    sock = ws.sock.dup()  # the loop owns this descriptor; gunicorn closes its own when we return

    async def adopt() -> None:
        try:
            await runtime.loop.connect_accepted_socket(lambda: TabConnection(attach, done), sock=sock)
        except Exception:
            sock.close()
            done.set()
            raise

    runtime.call(lambda: runtime.tasks.spawn(adopt(), "adopt"))
    done.wait()
    ws.connected = False  # flask-sock's own close() must not write after our close frame


class TabConnection(asyncio.Protocol):
    """One browser WebSocket on the event loop. `send` and `close` are loop-thread only."""

    def __init__(self, attach: Callable[[TabConnection], TabHandler], done: threading.Event):
        self._attach = attach
        self._done = done
        self._ws = WebSocketProtocol(Side.SERVER, max_size=MAX_FRAME_BYTES)
        self._fragments: list[bytes] = []
        self._fragment_opcode: Opcode | None = None
        self._transport: asyncio.Transport | None = None
        self._handler: TabHandler | None = None
        self.open = False

    # asyncio.Protocol ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self.open = True
        self._handler = self._attach(self)

    def data_received(self, data: bytes) -> None:
        self._ws.receive_data(data)
        for frame in self._ws.events_received():
            opcode = frame.opcode
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                if frame.fin:
                    self._deliver(opcode, frame.data)
                else:
                    self._fragment_opcode, self._fragments = opcode, [frame.data]
            elif opcode is Opcode.CONT and self._fragment_opcode is not None:
                self._fragments.append(frame.data)
                if frame.fin:
                    whole, kind = b"".join(self._fragments), self._fragment_opcode
                    self._fragment_opcode, self._fragments = None, []
                    self._deliver(kind, whole)
        self._flush()

    def eof_received(self) -> bool | None:
        self._ws.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        handler, self._handler = self._handler, None
        try:
            if handler is not None:
                handler.on_closed()
        finally:
            self._done.set()

    # used by the session -------------------------------------------------------------------------

    def send(self, text: str) -> None:
        if not self.open:
            return
        self._ws.send_text(text.encode())
        self._flush()
        transport = self._transport
        if transport is not None and transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            log.warning("event=tab.too_slow buffered=%d", transport.get_write_buffer_size())
            transport.abort()

    def close(self, code: int = 1000, reason: str = "") -> None:
        if not self.open or self._transport is None:
            return
        try:
            self._ws.send_close(code, reason)
        except Exception:  # already closing: the protocol refuses a second close frame
            pass
        self._flush()
        # A browser that never answers the close frame does not keep the socket.
        asyncio.get_running_loop().call_later(CLOSE_HANDSHAKE_S, self._transport.abort)

    # internals -----------------------------------------------------------------------------------

    def _deliver(self, opcode: Opcode, data: bytes) -> None:
        if self._handler is None:
            return
        if opcode is Opcode.TEXT:
            try:
                self._handler.on_frame(data.decode())
            except UnicodeDecodeError:
                self._handler.on_frame(b"")  # not valid UTF-8: answered like any non-text frame
        else:
            self._handler.on_frame(data)

    def _flush(self) -> None:
        transport = self._transport
        if transport is None:
            return
        for chunk in self._ws.data_to_send():
            if chunk:
                transport.write(chunk)
            else:  # the protocol's signal that the close handshake is over
                transport.close()
