"""Where the WSGI threads and the asyncio side meet — the only module that crosses threads.

Every socket lives on the one asyncio event loop of its worker process (front.py reads HTTP there and
runs Flask between the loop's other callbacks); after the WebSocket handshake of /ws the upgraded
socket stays on the loop as a `TabConnection`. Every audio frame therefore stays on one thread from
browser to Voice Live and back, and no client, however slow, idle or hostile, holds a thread. The one
crossing left is `LoopThread.run()` (drain and shutdown from the worker's main thread) and the
fallback in `adopt()` for WSGI servers that lend a thread per connection (werkzeug's, in tests).

- `LoopThread` owns the event loop; other threads reach it only through `call()` / `run()`.
- `HandshakeOnly` + `adopt()`: simple-websocket performs the handshake (its reader thread never starts)
  and the route hands the tab to the loop and returns at once.
- `TabConnection` is the tab's socket on the loop: an asyncio protocol around websockets' sans-I/O
  WebSocket implementation, already OPEN because simple-websocket did the handshake. It bounds what a
  tab may cost: queued output (pongs included), fragments, idle time, silence.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from websockets.frames import Opcode
from websockets.protocol import Protocol as WebSocketProtocol
from websockets.protocol import Side, State

from .protocol import MAX_FRAME_BYTES, CloseCode
from .tasks import TaskOwner

T = TypeVar("T")
log = logging.getLogger("voicebridge.runtime")

# A tab that stops reading gets this much queued output (about a minute of audio, or pongs, or
# anything else) before it is cut off, so a stalled browser costs bounded memory.
MAX_WRITE_BUFFER = 4 * 1024 * 1024
# A fragmented message may have at most this many frames (empty continuations included).
MAX_FRAGMENTS = 1024
CLOSE_HANDSHAKE_S = 2.0
# Bytes parsed per loop iteration from one tab: a 20 ms audio frame is ~1.3 KB.
READ_STEP = 16 * 1024
# Browsers never send pings (no API for it); a client may, but not as a flood.
MAX_PINGS_PER_TICK = 64
# The key under which front.py offers `adopt()` its way to take the socket over (see app.py's /ws).
ADOPT_KEY = "voicebridge.adopt"


@dataclass(frozen=True, slots=True)
class TabLimits:
    # A tab with no upstream session (never started, or stopped) is closed after this long.
    no_session_s: float = 15.0
    # A tab from which nothing (no frame, no pong) arrived for this long is gone: closed, upstream too.
    silence_s: float = 30.0

    @property
    def ping_every_s(self) -> float:
        return self.silence_s / 3

    @property
    def tick_s(self) -> float:
        return max(0.05, min(self.no_session_s, self.silence_s) / 5)


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
    # Set while the tab has no upstream session (before session.start, after stop).
    closed: asyncio.Event

    def on_frame(self, frame: str | bytes) -> None: ...

    def on_closed(self) -> None: ...


def adopt(ws: Any, attach: Callable[[TabConnection], TabHandler], runtime: LoopThread) -> None:
    """Called by the /ws route right after the handshake: the loop takes the socket (front.py writes the
    captured 101 and switches the connection to a TabConnection) and the route returns at once."""
    take_over = ws.environ.get(ADOPT_KEY)
    if take_over is not None:
        ws.connected = False  # flask-sock's own close() must not write a close frame
        take_over(attach)
        return
    # Another WSGI server (werkzeug's development server in tests): it already sent the 101 and lends
    # this thread for the connection, so the loop takes a duplicate of the socket and the thread waits.
    done = threading.Event()
    sock = ws.sock.dup()  # the loop owns this descriptor; the server closes its own when we return

    async def take() -> None:
        try:
            await runtime.loop.connect_accepted_socket(
                lambda: TabConnection(attach, on_lost=lambda _: done.set()), sock=sock
            )
        except Exception:
            sock.close()
            done.set()
            raise

    runtime.call(lambda: runtime.tasks.spawn(take(), "adopt"))
    done.wait()
    ws.connected = False


class TabConnection(asyncio.Protocol):
    """One browser WebSocket on the event loop. Every method runs on the loop."""

    def __init__(
        self,
        attach: Callable[[TabConnection], TabHandler],
        limits: TabLimits | None = None,
        on_lost: Callable[[TabConnection], None] | None = None,
        replay: list[str] | None = None,
    ):
        self._attach = attach
        self._limits = limits or TabLimits()
        self._on_lost = on_lost
        self._replay = replay or []  # frames a sibling worker read from this socket before handing it over
        self._ws = WebSocketProtocol(Side.SERVER, max_size=MAX_FRAME_BYTES)
        self._fragments = bytearray()
        self._fragment_opcode: Opcode | None = None
        self._fragment_count = 0
        self._transport: asyncio.Transport | None = None
        self._handler: TabHandler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._heard = 0.0
        self._no_session_since: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._abort_timer: asyncio.TimerHandle | None = None
        self._backlog = bytearray()
        self._stepping = False
        self._eof = False
        self._pings = 0
        self.open = False
        # The server cut this tab off (protocol abuse, too slow, silent): it may not leave a session parked
        # for a resume, as a tab that merely lost its network may (session/core.py).
        self.refused = False

    # asyncio.Protocol ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._loop = asyncio.get_running_loop()
        self._heard = self._no_session_since = self._loop.time()
        self.open = True
        self._handler = self._attach(self)
        for text in self._replay:
            self._deliver(Opcode.TEXT, text.encode())
        self._replay = []
        self._flush()
        self._timer = self._loop.call_later(self._limits.tick_s, self._tick)

    def data_received(self, data: bytes) -> None:
        self._heard = self._loop.time()  # type: ignore[union-attr]
        if self._backlog or len(data) > READ_STEP:
            # A big read (a flood of tiny frames parses slowly): at most READ_STEP bytes per loop
            # iteration, reading paused meanwhile, so one client never holds the loop for long.
            self._backlog += data
            if not self._stepping:
                self._stepping = True
                self._transport.pause_reading()  # type: ignore[union-attr]
                self._loop.call_soon(self._step)  # type: ignore[union-attr]
            return
        self._process(data)

    def _step(self) -> None:
        if self._transport is None:
            self._backlog = bytearray()
            return
        chunk = bytes(self._backlog[:READ_STEP])
        del self._backlog[:READ_STEP]
        self._process(chunk)
        if self._backlog and self._transport is not None:
            self._loop.call_soon(self._step)  # type: ignore[union-attr]
            return
        self._stepping = False
        if self._eof:
            self._eof = False
            self._ws.receive_eof()
            self._flush()
        elif self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def _process(self, data: bytes) -> None:
        self._ws.receive_data(data)
        for frame in self._ws.events_received():
            if not self.open:
                break  # closing: the rest is read only to finish the close handshake
            opcode = frame.opcode
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                if frame.fin:
                    self._deliver(opcode, frame.data)
                else:
                    self._fragment_opcode, self._fragment_count = opcode, 1
                    self._fragments = bytearray(frame.data)
            elif opcode is Opcode.CONT and self._fragment_opcode is not None:
                self._fragment_count += 1
                if self._fragment_count > MAX_FRAGMENTS:
                    # websockets bounds a message's bytes; this bounds its frames (empty ones cost too).
                    self._refuse(CloseCode.MESSAGE_TOO_BIG, "message has too many fragments", "too_many_fragments")
                    return
                self._fragments += frame.data
                if frame.fin:
                    whole, kind = bytes(self._fragments), self._fragment_opcode
                    self._fragment_opcode, self._fragments = None, bytearray()
                    self._deliver(kind, whole)
            elif opcode is Opcode.PING:
                self._pings += 1  # (websockets answers it)
                if self._pings > MAX_PINGS_PER_TICK:
                    self._refuse(CloseCode.POLICY_VIOLATION, "too many pings", "ping_flood")
                    return
        self._flush()

    def _refuse(self, code: int, reason: str, why: str) -> None:
        """The tab abuses the protocol: close frame, then close the TCP connection without reading on."""
        log.info("event=tab.refused reason=%s", why)
        self.refused = True
        self._fragments = bytearray()
        self._backlog = bytearray()
        self.close(code, reason)
        if self._transport is not None:
            self._transport.close()  # flushes the close frame; nothing more is read

    def eof_received(self) -> bool | None:
        if self._stepping:
            self._eof = True  # after the backlog, in order
            return True  # keep the transport open until then
        self._ws.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._timer, self._abort_timer):
            if timer is not None:
                timer.cancel()
        self.open = False
        self._transport = None
        try:
            self._release()
        finally:
            if self._on_lost is not None:
                self._on_lost(self)

    # used by the session -------------------------------------------------------------------------

    def send(self, text: str) -> None:
        if not self.open:
            return  # the close handshake has begun: nothing more may be sent
        self._ws.send_text(text.encode())
        self._flush()

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self._transport is None:
            return
        if self._ws.state is State.OPEN:
            self._ws.send_close(code, reason)
        self._flush()

    def hand_over(self, send: Callable[[Any], bool]) -> bool:
        """Give this socket to a sibling worker (`send` passes the descriptor): this process lets go of
        it without a word to the tab, which carries on with the sibling. False: nothing changed."""
        transport = self._transport
        if transport is None or not self.open or self._backlog or self._ws.state is not State.OPEN:
            return False
        sock = transport.get_extra_info("socket")
        if sock is None or not send(sock):
            return False
        self.open = False
        self._handler = None  # its session is forgotten: nothing more reaches it from here
        transport.abort()  # closes this process's descriptor only; the sibling holds its own
        return True

    def abort(self) -> None:
        transport = self._transport
        self.open = False
        self._release()
        if transport is not None:
            transport.abort()

    # internals -----------------------------------------------------------------------------------

    def _deliver(self, opcode: Opcode, data: bytes) -> None:
        handler = self._handler
        if handler is None:
            return
        if opcode is Opcode.TEXT:
            try:
                text = data.decode()
            except UnicodeDecodeError:
                handler.on_frame(b"")  # not valid UTF-8: answered like any non-text frame
                return
            handler.on_frame(text)
        else:
            handler.on_frame(data)

    def _flush(self) -> None:
        transport = self._transport
        if transport is None:
            return
        for chunk in self._ws.data_to_send():
            if chunk:
                transport.write(chunk)
            else:  # the protocol's signal that the close handshake is over
                transport.close()
        if self.open and self._ws.state is not State.OPEN:
            # A close frame either way, a protocol error, an oversized message: the tab is leaving.
            # End its session now (not when the socket finally goes), and never wait long for it.
            if self._ws.close_rcvd is None and self._ws.close_sent is not None and self._ws.close_sent.code in (
                CloseCode.PROTOCOL_ERROR, CloseCode.MESSAGE_TOO_BIG, CloseCode.POLICY_VIOLATION
            ):
                self.refused = True  # the protocol refused a frame: no resume for this tab
            self.open = False
            self._release()
            self._abort_timer = self._loop.call_later(CLOSE_HANDSHAKE_S, transport.abort)  # type: ignore[union-attr]
        if transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            # Whatever filled it (audio, pongs, errors): a tab that does not read is cut off.
            log.warning("event=tab.too_slow buffered=%d", transport.get_write_buffer_size())
            self.refused = True
            self.abort()

    def _release(self) -> None:
        handler, self._handler = self._handler, None
        if handler is not None:
            handler.on_closed()

    def _tick(self) -> None:
        if self._transport is None:
            return
        self._pings = 0
        if self.open:
            now = self._loop.time()  # type: ignore[union-attr]
            limits = self._limits
            handler = self._handler
            if now - self._heard >= limits.silence_s:
                # Not even a pong: the tab is gone (closed laptop, lost network, no FIN).
                log.info("event=tab.silent seconds=%.0f", now - self._heard)
                self.refused = True  # by now a tab that only lost its network would have resumed already
                self.abort()
                return
            if handler is not None and handler.closed.is_set():
                if self._no_session_since is None:
                    self._no_session_since = now
                elif now - self._no_session_since >= limits.no_session_s:
                    log.info("event=tab.idle seconds=%.0f", now - self._no_session_since)
                    self.close(CloseCode.GOING_AWAY, "idle: no session")
            else:
                self._no_session_since = None
            if self.open and now - self._heard >= limits.ping_every_s:
                self._ws.send_ping(b"")
                self._flush()
        self._timer = self._loop.call_later(self._limits.tick_s, self._tick)  # type: ignore[union-attr]
