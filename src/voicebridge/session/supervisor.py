"""Connect, reconnect and stop: the lifecycle of one tab's upstream session.

`start`, `stop` and the tab closing may arrive in any order and any number; the lifecycle enum says
what each means now, and the last word wins (stop, start, stop ends stopped). Each run is one owned
task; its cleanup always ends by setting `closed`, whatever the steps before it met.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from azure.ai.voicelive.aio import ConnectionClosed, VoiceLiveConnection
from azure.ai.voicelive.aio import ConnectionError as VoiceLiveConnectionError

from ..logs import event
from ..protocol import CloseCode, ErrorCode, State
from ..tasks import TaskOwner
from ..tools import Toolbox
from ..upstream import UpstreamError
from .connection import quiet_close
from .run import Run
from .tab import TabLink

log = logging.getLogger("voicebridge.session")

# How long a cancelled uplink sender may take to end before the connection closes under it anyway.
SENDER_STOP_S = 1.0


class Lifecycle(Enum):
    IDLE = "idle"  # no run: start() begins one
    RUNNING = "running"  # a run is connecting, relaying or reconnecting
    STOPPING = "stopping"  # stop() cancelled the run; its cleanup is under way
    RESTARTING = "restarting"  # stopping, and a start() came meanwhile: a fresh run follows the cleanup
    CLOSED = "closed"  # the tab is gone: a run still cleaning up ends, nothing starts again


@dataclass(frozen=True, slots=True)
class SessionOptions:
    session_config: object  # the RequestSession sent with session.update on every connection
    connect_timeout_s: float
    reconnect_window_s: float
    record_transcripts: bool = False
    toolbox: Toolbox | None = None  # the agent's function tools (VOICEBRIDGE_TOOLS)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the process takes no new session now; sent to the tab, which is then closed if `close` says so."""

    code: ErrorCode
    message: str
    close: CloseCode | None = None
    close_reason: str = ""


@dataclass(frozen=True, slots=True)
class SessionHost:
    """All a session knows of the process that runs it (Bridge builds one and hands it to every session)."""

    open_upstream: Callable[[], Awaitable[VoiceLiveConnection]]
    admit: Callable[[], Refusal | None]  # None: one more upstream session is welcome now
    forget: Callable[[Any], None]  # the session's tab is gone
    options: SessionOptions


class Supervisor:
    def __init__(
        self,
        session_id: str,
        tab: TabLink,
        tasks: TaskOwner,
        host: SessionHost,
        new_run: Callable[[], Run],
        stats: dict[str, int],
    ):
        self._id = session_id
        self._tab = tab
        self._tasks = tasks
        self._host = host
        self.lifecycle = Lifecycle.IDLE
        self._new_run = new_run
        self._stats = stats
        self.run = new_run()  # the current run, or the last one (finished); never None
        self._task: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()
        self.closed.set()  # nothing upstream yet

    def start(self) -> None:
        if self.lifecycle is Lifecycle.STOPPING:
            self.lifecycle = Lifecycle.RESTARTING  # start again once the old upstream is closed
        if self.lifecycle is not Lifecycle.IDLE:
            return
        refusal = self._host.admit()
        if refusal is not None:
            self.run.status.error(refusal.code, refusal.message)
            if refusal.close is not None:
                self._tab.close(refusal.close, refusal.close_reason)
            return
        run = self.run = self._new_run()
        run.telemetry.started()
        self.closed.clear()
        self.lifecycle = Lifecycle.RUNNING
        self._task = self._tasks.spawn(self._supervise(run), "run")
        event("session.start", self._id)

    def stop(self, reason: str) -> None:
        if self.lifecycle is Lifecycle.RESTARTING:
            self.lifecycle = Lifecycle.STOPPING  # the last word is stop: no fresh run after the cleanup
        if self.lifecycle is not Lifecycle.RUNNING:
            return
        self.lifecycle = Lifecycle.STOPPING
        self._cancel(reason)

    def tab_closed(self) -> None:
        was = self.lifecycle
        self.lifecycle = Lifecycle.CLOSED
        self._tab.gone()
        if was is Lifecycle.RUNNING:
            self._cancel("tab_closed")

    def _cancel(self, reason: str) -> None:
        assert self._task is not None
        self._task.cancel()
        event("session.stop", self._id, reason=reason)

    # --- one run ---------------------------------------------------------------------------------

    async def _supervise(self, run: Run) -> None:
        end_reason = "stopped"
        try:
            end_reason = await self._connect_loop(run)
        except asyncio.CancelledError:
            end_reason = "stopped"
        except Exception:  # a surprise must end this session only, never the process or a neighbour
            log.exception("event=session.crashed session=%s", self._id)
            end_reason = "internal"
            run.status.fail(ErrorCode.INTERNAL, "Something went wrong in the bridge; please start the session again.")
        finally:
            try:
                conn = run.upstream.detach()
                if conn is not None:
                    await quiet_close(conn)
            finally:
                self._finish(run, end_reason)

    def _finish(self, run: Run, reason: str) -> None:
        """The run is over. Every step is attempted; `closed` is set whatever the others met."""
        if run.status.state is not State.ERROR:
            self._attempt(run.status.show, run.status.machine.stopped())
        self._attempt(run.telemetry.ended, reason)
        self._task = None
        self.closed.set()
        event("session.closed", self._id, reason=reason, **self._stats)
        if self.lifecycle is Lifecycle.RESTARTING:
            self.lifecycle = Lifecycle.IDLE
            self.start()
        elif self.lifecycle is not Lifecycle.CLOSED:
            self.lifecycle = Lifecycle.IDLE

    def _attempt(self, step: Callable[..., None], *args: object) -> None:
        try:
            step(*args)
        except Exception:
            log.exception("event=session.cleanup_failed session=%s step=%s", self._id, getattr(step, "__name__", step))

    async def _connect_loop(self, run: Run) -> str:
        """Connect, relay, and restore a lost upstream within the reconnect window; returns why the run ended."""
        window = self._host.options.reconnect_window_s
        deadline: float | None = None  # set while recovering a lost upstream
        attempt = 0
        while True:
            reconnect = deadline is not None
            run.status.show(run.status.machine.connecting(reconnect))
            run.upstream.connecting(reconnect)
            try:
                conn = await self._host.open_upstream()
            except UpstreamError as exc:
                run.telemetry.failure(exc.code)
                if deadline is None or exc.code == ErrorCode.UPSTREAM_AUTH:
                    run.status.fail(exc.code, exc.message)
                    return exc.code
                event("upstream.retry_failed", self._id, code=exc.code, attempt=attempt)
            else:
                was_ready = await self._relay(run, conn)
                if self.lifecycle is not Lifecycle.RUNNING:
                    return "stopped"
                if was_ready or deadline is None:
                    deadline = time.monotonic() + window
                    attempt = 0
                run.telemetry.reconnecting("upstream_closed")
                event("upstream.lost", self._id)
                run.status.show(run.status.machine.connecting(reconnect=True))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                run.status.fail(
                    ErrorCode.UPSTREAM_LOST,
                    f"Lost the connection to Voice Live and could not restore it within {window:g} s. "
                    "Start a new session to try again.",
                )
                return ErrorCode.UPSTREAM_LOST
            delay = min(0.25 * 2**attempt, 4.0) * random.uniform(0.75, 1.25)
            attempt += 1
            await asyncio.sleep(min(delay, remaining))

    async def _relay(self, run: Run, conn: VoiceLiveConnection) -> bool:
        """Relay until the upstream ends. Returns whether the session got ready on this connection."""
        run.connected(conn)
        sender = self._tasks.spawn(run.uplink.pump(conn), "uplink")
        watchdog = asyncio.get_running_loop().call_later(
            self._host.options.connect_timeout_s, self._ready_timeout, run, conn
        )
        try:
            await conn.session.update(session=self._host.options.session_config)
            while True:
                raw = await conn.recv_bytes()
                if raw:
                    run.events.dispatch(raw)
        except (ConnectionClosed, VoiceLiveConnectionError, OSError) as exc:
            event("upstream.closed", self._id, detail=str(exc)[:120])
        finally:
            watchdog.cancel()
            run.upstream.detach()
            try:
                await self._tasks.cancel(sender, SENDER_STOP_S)
            finally:
                await quiet_close(conn)
        return run.upstream.ready

    def _ready_timeout(self, run: Run, conn: VoiceLiveConnection) -> None:
        if run.upstream.conn is conn and run.status.state in (State.CONNECTING, State.RECONNECTING):
            run.telemetry.failure(ErrorCode.UPSTREAM_TIMEOUT)
            run.status.fail(ErrorCode.UPSTREAM_TIMEOUT, "Voice Live accepted the connection but never confirmed the session.")
            self.stop("ready_timeout")
