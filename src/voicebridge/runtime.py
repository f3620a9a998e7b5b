"""Where the WSGI threads and the asyncio side meet — the only module that crosses threads.

Every socket lives on the one asyncio event loop of its worker process (front.py reads HTTP there and
runs Flask between the loop's other callbacks); after the WebSocket handshake of /ws the upgraded
socket stays on the loop as a `TabConnection`. Every audio frame therefore stays on one thread from
browser to Voice Live and back, and no client, however slow, idle or hostile, holds a thread. The one
crossings left are the worker's main thread handing the loop its work (`LoopThread.call()` / `run()`:
start serving, drain, shut down), the heartbeat (`LoopWatch`: the loop beats, the main thread watches),
and the fallback in `adopt()` for WSGI servers that lend a thread per connection (werkzeug's, in tests).

- `LoopThread` owns the event loop; other threads reach it only through `call()` / `run()`, and may ask
  it what it is running (`running()`) when it stops beating.
- `LoopWatch`: the heartbeat only a running loop can give, and the report of a loop that is blocked.
- `HandshakeOnly` + `adopt()`: simple-websocket performs the handshake (its reader thread never starts)
  and the route hands the tab to the loop and returns at once.
- `TabConnection` is the tab's socket on the loop: an asyncio protocol around websockets' sans-I/O
  WebSocket implementation, already OPEN because simple-websocket did the handshake. It bounds what a
  tab may cost: queued output (pongs included), fragments, idle time, silence.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
import traceback
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

    def running(self) -> str:
        """What the loop thread is doing right now, for a report when it is blocked (any thread): the task
        it runs and the innermost frames of its stack outside asyncio."""
        task = asyncio.current_task(self.loop)
        frame = sys._current_frames().get(self._thread.ident or -1)
        frames = [f for f in traceback.extract_stack(frame) if f"{os.sep}asyncio{os.sep}" not in f.filename] if frame else []
        where = " < ".join(f"{os.path.basename(f.filename)}:{f.lineno} {f.name}" for f in reversed(frames[-4:]))
        return f"task={task.get_name() if task is not None else '-'} at={where or '-'}"

    def stop(self) -> None:
        if self._thread.is_alive():
            try:
                self.run(self.tasks.close(1.0), timeout=2.0)
            except Exception as exc:  # stopping goes on regardless
                log.warning("event=loop.tasks_left detail=%s", exc)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)


class LoopWatch:
    """The worker's heartbeat, beaten by the loop itself, and what a blocked loop was doing.

    gunicorn replaces a worker that has not beaten for its `timeout`; a beat from any other thread would
    prove only that that thread runs, while one `async def` tool calling time.sleep freezes every tab.
    So the loop beats (`beat`, every `every_s`), and the worker's main thread calls `check()` between
    signals: a loop late by `report_after_s` is logged with the task and stack it is stuck in, once per
    block, and when it beats again how long it was stuck (asyncio's slow-callback report, without debug
    mode's cost on every callback)."""

    def __init__(self, *, runtime: LoopThread, beat: Callable[[], None], every_s: float, report_after_s: float):
        self._runtime, self._beat, self._every_s, self._report_after_s = runtime, beat, every_s, report_after_s
        self._last = time.monotonic()
        self._reported = False  # this block was logged (main thread writes it; the loop only clears it)

    def start(self) -> None:
        self._runtime.call(self._tick)

    def _tick(self) -> None:  # on the loop
        now = time.monotonic()
        late = now - self._last - self._every_s
        self._last = now
        self._beat()
        if self._reported or late >= self._report_after_s:
            log.warning("event=loop.unblocked seconds=%.1f", late)
            self._reported = False
        self._runtime.loop.call_later(self._every_s, self._tick)

    def check(self) -> None:  # on the worker's main thread
        late = time.monotonic() - self._last - self._every_s
        if late >= self._report_after_s and not self._reported:
            self._reported = True
            log.warning("event=loop.blocked seconds=%.1f %s", late, self._runtime.running())


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
    no_upstream: asyncio.Event

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
        *,
        replay: list[str] | None = None,
    ):
        self._attach = attach
        self._limits = limits or TabLimits()
        self._on_lost = on_lost
        self._replay = replay or []  # frames a sibling worker read from this socket before handing it over
        self._ws = WebSocketProtocol(Side.SERVER, max_size=MAX_FRAME_BYTES)
        self._message = Reassembly()
        self._transport: asyncio.Transport | None = None
        self._handler: TabHandler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watch: Keepalive | None = None
        self._abort_timer: asyncio.TimerHandle | None = None
        self._reader: PacedReader | None = None
        self._pings = 0
        self.open = False
        # The server cut this tab off (protocol abuse, too slow, silent): it may not leave a session parked
        # for a resume, as a tab that merely lost its network may (session/core.py).
        self.refused = False

    # asyncio.Protocol ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._loop = asyncio.get_running_loop()
        self._watch = Keepalive(self, self._limits, self._loop)
        self._reader = PacedReader(self._transport, self._loop, self._process, end_of_input=self._end_of_input)
        self.open = True
        self._handler = self._attach(self)
        for text in self._replay:
            self._deliver(Opcode.TEXT, text.encode())
        self._replay = []
        self._flush()

    def data_received(self, data: bytes) -> None:
        self._watch.heard()  # type: ignore[union-attr]
        self._reader.feed(data)  # type: ignore[union-attr]

    def _process(self, data: bytes) -> None:
        self._ws.receive_data(data)
        for frame in self._ws.events_received():
            if not self.open:
                break  # closing: the rest is read only to finish the close handshake
            opcode = frame.opcode
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY or opcode is Opcode.CONT:
                try:
                    message = self._message.add(frame)
                except OverflowError:
                    self._refuse(CloseCode.MESSAGE_TOO_BIG, "message has too many fragments", "too_many_fragments")
                    return
                if message is not None:
                    self._deliver(*message)
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
        self._message = Reassembly()
        self._reader.drop()  # type: ignore[union-attr]
        self.close(code, reason)
        if self._transport is not None:
            self._transport.close()  # flushes the close frame; nothing more is read

    def eof_received(self) -> bool | None:
        if self._reader is not None and self._reader.defer_eof():
            return True  # keep the transport open until the backlog is read, in order
        self._end_of_input()
        return None

    def _end_of_input(self) -> None:
        self._ws.receive_eof()
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watch is not None:
            self._watch.stop()
        if self._abort_timer is not None:
            self._abort_timer.cancel()
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
        if transport is None or not self.open or self._reader.busy or self._ws.state is not State.OPEN:  # type: ignore[union-attr]
            return False
        sock = transport.get_extra_info("socket")
        if sock is None or not send(sock):
            return False
        self.open = False
        self._handler = None  # its session is forgotten: nothing more reaches it from here
        transport.abort()  # closes this process's descriptor only; the sibling holds its own
        return True

    @property
    def connected(self) -> bool:
        return self._transport is not None

    def new_tick(self) -> None:
        self._pings = 0  # the tab's pings are counted per tick (a flood is refused)

    def ping(self) -> None:
        if self.open:
            self._ws.send_ping(b"")
            self._flush()

    def has_session(self) -> bool:
        handler = self._handler
        return handler is None or not handler.no_upstream.is_set()

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


class Keepalive:
    """When a quiet tab is pinged, closed for holding no session, or dropped as gone (one per tab).

    Every tick: nothing heard (not even a pong) for `silence_s` means the tab vanished without a FIN; no
    upstream session for `no_session_s` means a socket held for nothing; quiet for `ping_every_s` earns a
    ping, whose pong counts as heard.
    """

    def __init__(self, tab: TabConnection, limits: TabLimits, loop: asyncio.AbstractEventLoop):
        self._tab, self._limits, self._loop = tab, limits, loop
        self._heard = loop.time()
        self._idle_since: float | None = self._heard
        self._timer: asyncio.TimerHandle | None = loop.call_later(limits.tick_s, self._tick)

    def heard(self) -> None:
        self._heard = self._loop.time()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        tab, limits, now = self._tab, self._limits, self._loop.time()
        if not tab.connected:
            return
        tab.new_tick()
        if tab.open:
            if now - self._heard >= limits.silence_s:
                # Not even a pong: the tab is gone (closed laptop, lost network, no FIN).
                log.info("event=tab.silent seconds=%.0f", now - self._heard)
                tab.refused = True  # by now a tab that only lost its network would have resumed already
                tab.abort()
                return
            if tab.has_session():
                self._idle_since = None
            elif self._idle_since is None:
                self._idle_since = now
            elif now - self._idle_since >= limits.no_session_s:
                log.info("event=tab.idle seconds=%.0f", now - self._idle_since)
                tab.close(CloseCode.GOING_AWAY, "idle: no session")
            if now - self._heard >= limits.ping_every_s:
                tab.ping()
        self._timer = self._loop.call_later(limits.tick_s, self._tick)


class PacedReader:
    """A tab's input parsed at most READ_STEP bytes per loop iteration, reading paused meanwhile: a flood
    of tiny frames (slow to parse) never holds the loop for long, and the other tabs' audio flows between."""

    def __init__(
        self,
        transport: asyncio.Transport,
        loop: asyncio.AbstractEventLoop,
        process: Callable[[bytes], None],
        *,
        end_of_input: Callable[[], None],
    ):
        self._transport, self._loop = transport, loop
        self._process, self._end_of_input = process, end_of_input
        self._backlog = bytearray()
        self._stepping = False
        self._eof = False

    @property
    def busy(self) -> bool:
        return bool(self._backlog)

    def feed(self, data: bytes) -> None:
        if not self._backlog and len(data) <= READ_STEP:
            self._process(data)
            return
        self._backlog += data
        if not self._stepping:
            self._stepping = True
            self._transport.pause_reading()
            self._loop.call_soon(self._step)

    def defer_eof(self) -> bool:
        """The peer finished sending: handled after the backlog (True), or now (False)."""
        if self._stepping:
            self._eof = True
        return self._stepping

    def drop(self) -> None:
        self._backlog = bytearray()

    def _step(self) -> None:
        if self._transport.is_closing():  # refused, or gone: nothing more is read
            self._backlog = bytearray()
            self._stepping = False
            return
        chunk = bytes(self._backlog[:READ_STEP])
        del self._backlog[:READ_STEP]
        self._process(chunk)
        if self._backlog and not self._transport.is_closing():
            self._loop.call_soon(self._step)
            return
        self._backlog = bytearray()
        self._stepping = False
        if self._eof:
            self._eof = False
            self._end_of_input()
        elif not self._transport.is_closing():
            self._transport.resume_reading()


class Reassembly:
    """A message from its frames: websockets bounds a message's bytes, this also bounds its frames (empty
    continuation frames cost memory and time too)."""

    def __init__(self) -> None:
        self._opcode: Opcode | None = None
        self._parts = bytearray()
        self._count = 0

    def add(self, frame: Any) -> tuple[Opcode, bytes] | None:
        """The whole message once its last frame is in; raises OverflowError past MAX_FRAGMENTS frames."""
        if frame.opcode is Opcode.CONT:
            if self._opcode is None:
                return None  # a continuation of nothing (the parser has already refused it)
            self._count += 1
            if self._count > MAX_FRAGMENTS:
                raise OverflowError("too many fragments")
            self._parts += frame.data
            if not frame.fin:
                return None
            whole, opcode = bytes(self._parts), self._opcode
            self._opcode, self._parts = None, bytearray()
            return opcode, whole
        if frame.fin:
            return frame.opcode, frame.data
        self._opcode, self._count, self._parts = frame.opcode, 1, bytearray(frame.data)
        return None
