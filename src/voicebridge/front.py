"""The front door: HTTP/1.1 on the event loop, so that no client can hold a thread.

Each worker process accepts on gunicorn's listeners from its event loop. A connection costs a few
kilobytes until its request is complete: the request head is parsed by h11 with a size limit and the
whole request must arrive within a deadline (a slowloris client is dropped at it, having cost nothing
else). A complete request then runs Flask on the loop itself, one request per loop iteration (pages,
API and health checks ahead of WebSocket handshakes), so the tabs' audio is relayed between any two of
them; every route is short and never waits (docs/decisions/0009-serving-on-the-event-loop.md says why not a
thread pool). A `/ws` upgrade runs Flask too — routing, the Origin/Host rules, flask-sock and
simple-websocket's handshake — and the route returns at once (runtime.adopt): the loop writes the 101
simple-websocket produced and keeps the socket as a TabConnection.
"""

from __future__ import annotations

import asyncio
import io
import logging
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

import h11

from .balance import LoadBoard
from .identity import UserKey
from .runtime import ADOPT_KEY, TabConnection, TabHandler, TabLimits
from .tasks import TaskOwner

log = logging.getLogger("voicebridge.front")

SERVER_SOFTWARE = "voicebridge"
ACCEPT_BATCH = 64
DEFER_S = 0.005  # how long a busier worker leaves a new connection to its less busy siblings
_HOP_BY_HOP = frozenset((b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"content-length"))


@dataclass(frozen=True, slots=True)
class FrontLimits:
    request_s: float = 10.0  # the whole request (head and body) must arrive within this
    keepalive_s: float = 5.0  # an idle keep-alive connection is closed after this
    max_head_bytes: int = 16 * 1024
    max_body_bytes: int = 64 * 1024  # the app takes no uploads
    max_connections: int = 10_000  # per worker: sockets beyond it are closed at once
    max_pending: int = 4096  # requests waiting for their turn beyond which the answer is 503


class _HandshakeSocket:
    """What simple-websocket sees as the client socket: it captures the 101 instead of writing it, so
    that the loop, which owns the real socket, writes it."""

    def __init__(self) -> None:
        self.sent = bytearray()

    def send(self, data: bytes) -> int:
        self.sent += data
        return len(data)

    def sendall(self, data: bytes) -> None:
        self.sent += data


class Front:
    """The worker's connections: built on the worker's main thread before the loop serves it, then used on
    the loop only (the worker hands it `serve` and `drain` through runtime.LoopThread.call)."""

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        loop: asyncio.AbstractEventLoop,
        *,
        limits: FrontLimits | None = None,
        tab_limits: TabLimits | None = None,
        multiprocess: bool = False,
        board: LoadBoard | None = None,
        slot: int = -1,
        attach: Callable[[TabConnection, UserKey], TabHandler] | None = None,
    ):
        self.app = app
        self.loop = loop
        self.limits = limits or FrontLimits()
        self.tab_limits = tab_limits or TabLimits()
        self.multiprocess = multiprocess
        # Requests waiting for their turn on the loop: pages, API and health checks first, then
        # WebSocket handshakes, one per loop iteration so that the tabs' audio flows in between.
        self._requests: deque[Callable[[], None]] = deque()
        self._upgrades: deque[Callable[[], None]] = deque()
        self._scheduled = False
        self.http: set[HttpConnection] = set()
        self.tabs: set[TabConnection] = set()
        self.draining = False
        self._listeners: list[socket.socket] = []
        self._refused_at = 0.0
        self._starting = TaskOwner("front")  # connections being set up (accepted, or handed over by a sibling)
        self.ended = 0  # connections ended so far (the worker's memory housekeeping watches it)
        self._board = board
        self._slot = slot
        self._deferred = False
        self._attach = attach  # a tab a sibling hands over, to its session here (bridge.Bridge.attach)

    def connections(self) -> int:
        return len(self.http) + len(self.tabs)

    def tab_lost(self, tab: TabConnection) -> None:
        self.tabs.discard(tab)
        self.ended += 1
        self.publish_load()

    def publish_load(self) -> None:
        if self._board is not None:
            self._board.publish(self._slot, len(self.http) + len(self.tabs))

    # accepting (loop thread) -------------------------------------------------------------------------

    def drain(self) -> None:
        """Draining (SIGTERM): no keep-alive from now on, no tab taken from a sibling, idle connections closed."""
        self.draining = True
        self.close_idle()

    def listen(self, listeners: Iterable[socket.socket]) -> None:
        for sock in listeners:
            sock.setblocking(False)
            self._listeners.append(sock)
            self.loop.add_reader(sock.fileno(), self._accept, sock)

    def stop_accepting(self) -> None:
        for sock in self._listeners:
            self.loop.remove_reader(sock.fileno())
        self._listeners.clear()

    def close_idle(self) -> None:
        """Close HTTP connections that wait for a request (draining): a busy one closes after its response."""
        for conn in list(self.http):
            conn.close_when_idle()

    def _accept(self, listener: socket.socket) -> None:
        board = self._board
        if board is not None and not self._deferred and board.busier_than_a_sibling(self._slot):
            # Let a less busy sibling take it; if none has within DEFER_S, take it after all.
            self._deferred = True
            self.loop.remove_reader(listener.fileno())
            self.loop.call_later(DEFER_S, self._resume_accepting, listener)
            return
        self._deferred = False
        # A batch per wake-up, not the whole backlog: a burst of attackers cannot keep the loop in here,
        # and the other workers, woken too, take their share.
        for _ in range(ACCEPT_BATCH):
            try:
                sock, _addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors or memory: refuse for now, never crash the loop
                self._refuse(f"accept failed: {exc.strerror}")
                return
            if len(self.http) + len(self.tabs) >= self.limits.max_connections:
                sock.close()
                self._refuse("max_connections")
                continue
            sock.setblocking(False)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            self._starting.spawn(self._serve(sock), "accept")

    def take_handed(self, sock: socket.socket, message: dict) -> None:
        """A sibling worker handed over an open tab (handoff.py) with frames it had read from it."""
        if self._attach is None or self.draining:
            sock.close()  # the tab sees its connection end and starts afresh with its history
            return
        self._starting.spawn(self._take(sock, message["frames"], UserKey(*message["user"])), "handed")

    async def _take(self, sock: socket.socket, frames: list[str], user: UserKey) -> None:
        attach = self._attach
        assert attach is not None
        try:
            _, tab = await self.loop.connect_accepted_socket(
                lambda: TabConnection(lambda ch: attach(ch, user), self.tab_limits, on_lost=self.tab_lost, replay=frames),
                sock=sock,
            )
        except OSError:
            sock.close()
            return
        self.tabs.add(tab)
        self.publish_load()

    def _resume_accepting(self, listener: socket.socket) -> None:
        if listener in self._listeners:
            self.loop.add_reader(listener.fileno(), self._accept, listener)

    def _refuse(self, reason: str) -> None:
        now = time.monotonic()
        if now - self._refused_at > 10.0:  # one line per ten seconds, however many are refused
            self._refused_at = now
            log.warning("event=http.refused reason=%s connections=%d", reason, len(self.http) + len(self.tabs))

    async def _serve(self, sock: socket.socket) -> None:
        try:
            await self.loop.connect_accepted_socket(lambda: HttpConnection(self), sock=sock)
        except OSError:
            sock.close()

    # running the app: one request per loop iteration ---------------------------------------------------

    def submit(self, job: Callable[[], None], upgrade: bool) -> bool:
        if len(self._requests) + len(self._upgrades) >= self.limits.max_pending:
            return False
        (self._upgrades if upgrade else self._requests).append(job)
        if not self._scheduled:
            self._scheduled = True
            self.loop.call_soon(self._run_one)
        return True

    def _run_one(self) -> None:
        queue = self._requests or self._upgrades
        if queue:
            queue.popleft()()
        if self._requests or self._upgrades:
            self.loop.call_soon(self._run_one)  # next iteration: the sockets that are ready go first
        else:
            self._scheduled = False

    def call_app(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        started: list[Any] = []
        written: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None):
            started[:] = [status, headers]
            return written.append

        try:
            result = self.app(environ, start_response)
            try:
                body = b"".join([*written, *result])
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except Exception:
            log.exception("event=http.app_failed path=%s", environ.get("PATH_INFO", "")[:200])
            return "500 Internal Server Error", [("Content-Type", "text/plain")], b"internal error\n"
        if not started:
            return "500 Internal Server Error", [("Content-Type", "text/plain")], b"no response\n"
        return started[0], started[1], body


class HttpConnection(asyncio.Protocol):
    """One client connection until it becomes a tab (or closes). Loop thread only."""

    def __init__(self, front: Front):
        self.front = front
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=front.limits.max_head_bytes)
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] = ("", 0)
        self.request: h11.Request | None = None
        self.body = bytearray()
        self.busy = False
        self._deadline: asyncio.TimerHandle | None = None
        self._close_when_idle = False

    # asyncio.Protocol ----------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.peer = (str(peer[0]), int(peer[1]))
        self.front.http.add(self)
        self.front.publish_load()
        self._arm(self.front.limits.request_s)

    def data_received(self, data: bytes) -> None:
        self.h11.receive_data(data)
        self._advance()

    def eof_received(self) -> bool | None:
        self.h11.receive_data(b"")
        self._advance()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.transport is not None:  # (not when it became a tab)
            self.front.ended += 1
        self.front.http.discard(self)
        self.front.publish_load()
        self.transport = None

    def close_when_idle(self) -> None:
        self._close_when_idle = True
        if not self.busy and self.transport is not None and self.request is None:
            self.transport.close()

    # reading -------------------------------------------------------------------------------------------

    def _advance(self) -> None:
        while not self.busy and self.transport is not None:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                self._reject(exc.error_status_hint or 400, "bad request")
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self.request, self.body = event, bytearray()
                # h11 bounds a head that arrives in pieces; this bounds one that arrived whole.
                size = len(event.target) + sum(len(name) + len(value) + 4 for name, value in event.headers)
                if size > self.front.limits.max_head_bytes:
                    self._reject(431, "request head too large")
                    return
                if self._content_length(event) > self.front.limits.max_body_bytes:
                    self._reject(413, "request body too large")
                    return
            elif isinstance(event, h11.Data):
                self.body += event.data
                if len(self.body) > self.front.limits.max_body_bytes:
                    self._reject(413, "request body too large")
                    return
            elif isinstance(event, h11.EndOfMessage):
                self._dispatch()
            elif isinstance(event, h11.ConnectionClosed):
                self.transport.close()
                return

    @staticmethod
    def _content_length(request: h11.Request) -> int:
        for name, value in request.headers:
            if name == b"content-length":
                return int(value)
        return 0

    def _dispatch(self) -> None:
        assert self.request is not None and self.transport is not None
        self._disarm()
        self.busy = True
        self.transport.pause_reading()  # one request at a time: a pipelining client waits, buffering nothing
        front = self.front
        server = self.transport.get_extra_info("sockname")
        environ, capture, adopted = wsgi_environ(self.request, bytes(self.body), self.peer, server, front.multiprocess)

        def run() -> None:
            if self.transport is None:
                return  # the client left while it waited
            status, headers, body = front.call_app(environ)
            if adopted and status.startswith("200") and capture.sent.startswith(b"HTTP/1.1 101"):
                self._upgrade(bytes(capture.sent), adopted[0])
            else:
                self._respond(status, headers, body)

        if not front.submit(run, upgrade=ADOPT_KEY in environ):
            self._respond("503 Service Unavailable", [("Content-Type", "text/plain"), ("Retry-After", "1")],
                          b"busy\n", keep_alive=False)

    # writing -------------------------------------------------------------------------------------------

    def _respond(self, status: str, headers: list[tuple[str, str]], body: bytes, keep_alive: bool = True) -> None:
        transport = self.transport
        if transport is None:
            return
        request = self.request
        code_text, _, reason = status.partition(" ")
        code = int(code_text)
        out = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers
               if name.lower().encode("latin-1") not in _HOP_BY_HOP]
        head_only = request is not None and request.method == b"HEAD"
        no_body = head_only or code in (204, 304) or 100 <= code < 200
        if not no_body or head_only:
            out.append((b"content-length", str(len(body)).encode()))
        keep_alive = keep_alive and not self._close_when_idle and not self.front.draining
        if not keep_alive:
            out.append((b"connection", b"close"))
        try:
            data = self.h11.send(h11.Response(status_code=code, headers=out, reason=reason.encode("latin-1")))
            if body and not no_body:
                data += self.h11.send(h11.Data(data=body))
            data += self.h11.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            log.info("event=http.bad_response status=%s", status)
            transport.abort()
            return
        transport.write(data)
        self.request, self.body = None, bytearray()
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE and keep_alive:
            self.h11.start_next_cycle()
            self.busy = False
            self._arm(self.front.limits.keepalive_s)
            transport.resume_reading()
            self._advance()
        else:
            transport.close()

    def _reject(self, code: int, text: str) -> None:
        """A request the app never sees (malformed, too large): answer it plainly and close."""
        transport = self.transport
        if transport is None:
            return
        self._disarm()
        reason = {400: b"Bad Request", 408: b"Request Timeout", 413: b"Payload Too Large",
                  431: b"Request Header Fields Too Large"}.get(code, b"Error")
        body = text.encode() + b"\n"
        transport.write(b"HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s"
                        % (code, reason, len(body), body))
        transport.close()

    def _upgrade(self, handshake: bytes, attach: Callable[[TabConnection], TabHandler]) -> None:
        transport = self.transport
        assert transport is not None
        early, closed = self.h11.trailing_data  # frames the client sent right behind its request
        self.front.http.discard(self)
        self.transport = None
        transport.write(handshake)
        tab = TabConnection(attach, self.front.tab_limits, on_lost=self.front.tab_lost)
        self.front.tabs.add(tab)
        transport.set_protocol(tab)
        tab.connection_made(transport)
        if early:
            tab.data_received(bytes(early))
        if closed:
            tab.eof_received()
        transport.resume_reading()

    # deadlines -----------------------------------------------------------------------------------------

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.front.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        transport = self.transport
        if transport is None or self.busy:
            return
        # Idle keep-alive, or a request still incomplete at its deadline (slowloris): drop it, no reply
        # (the client may not be reading either).
        log.debug("event=http.timeout peer=%s", self.peer[0])
        transport.abort()


def wsgi_environ(
    request: h11.Request, body: bytes, peer: tuple[str, int], server: Any, multiprocess: bool
) -> tuple[dict[str, Any], _HandshakeSocket, list]:
    """The WSGI environ of a complete request; for a WebSocket upgrade also the capture simple-websocket
    writes its 101 to, and the list the /ws route puts its `attach` in (runtime.adopt)."""
    target = request.target
    path, _, query = target.partition(b"?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method.decode("latin-1"),
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": query.decode("latin-1"),
        "RAW_URI": target.decode("latin-1"),
        "SERVER_NAME": str(server[0]) if isinstance(server, tuple) else "localhost",
        "SERVER_PORT": str(server[1]) if isinstance(server, tuple) else "80",
        "SERVER_PROTOCOL": "HTTP/" + request.http_version.decode("latin-1"),
        "SERVER_SOFTWARE": SERVER_SOFTWARE,
        "REMOTE_ADDR": peer[0],
        "REMOTE_PORT": str(peer[1]),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
    }
    for name, value in request.headers:
        key = name.decode("latin-1").upper().replace("-", "_")
        text = value.decode("latin-1")
        if key == "CONTENT_TYPE" or key == "CONTENT_LENGTH":
            environ[key] = text
            continue
        key = "HTTP_" + key
        environ[key] = f"{environ[key]},{text}" if key in environ else text
    capture = _HandshakeSocket()
    adopted: list[Callable[[TabConnection], TabHandler]] = []
    if environ.get("HTTP_UPGRADE", "").lower() == "websocket":
        # simple-websocket takes "werkzeug.socket" as the client socket: it gets the capture.
        environ["werkzeug.socket"] = capture
        environ[ADOPT_KEY] = adopted.append
    return environ, capture, adopted
