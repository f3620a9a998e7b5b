"""One run's upstream: connect, configure, replay the conversation, relay, and restore a lost connection.

The supervisor (supervisor.py) owns the lifecycle and decides whether the run is still wanted; this
module only keeps one run connected for as long as it is.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

from azure.ai.voicelive.aio import ConnectionClosed, VoiceLiveConnection
from azure.ai.voicelive.aio import ConnectionError as VoiceLiveConnectionError

from ..logs import event
from ..protocol import ErrorCode, State
from ..tasks import TaskOwner
from ..upstream import UpstreamError
from .connection import quiet_close
from .host import SessionHost
from .run import Run

# How long a cancelled uplink sender may take to end before the connection closes under it anyway.
SENDER_STOP_S = 1.0


class RunLoop:
    def __init__(
        self,
        session_id: str,
        tasks: TaskOwner,
        host: SessionHost,
        wanted: Callable[[], bool],
        stop: Callable[[str], None],
    ):
        self._id = session_id
        self._tasks = tasks
        self._host = host
        self._wanted = wanted  # the run is still wanted (running, or parked waiting for its tab)
        self._stop = stop

    async def connect_loop(self, run: Run) -> str:
        """Connect, relay, and restore a lost upstream within the reconnect window; returns why the run ended."""
        window = self._host.options.reconnect_window_s
        deadline: float | None = None  # set while recovering a lost upstream
        attempt = 0
        while True:
            reconnect = deadline is not None
            run.status.show(run.status.machine.connecting(reconnect))
            run.upstream.connecting(reconnect)
            # A continuing conversation (a lost upstream, or a start carrying its history after a deploy)
            # goes before new starts when the quota makes connections wait (pacer.py).
            continuing = reconnect or bool(run.transcripts.replayable())
            try:
                opened = await self._host.open_upstream(continuing, run.status.waiting)
            except UpstreamError as exc:
                run.telemetry.failure(exc.code)
                if deadline is None or exc.code == ErrorCode.UPSTREAM_AUTH:
                    run.status.fail(exc.code, exc.message)
                    return exc.code
                event("upstream.retry_failed", self._id, code=exc.code, attempt=attempt)
            else:
                run.limits.activity()  # a wait for the quota is nobody's silence: the idle clock starts now
                run.upstream.endpoint = opened.endpoint
                was_ready = await self._relay(run, opened.conn)
                if not self._wanted():
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
            # Sent in the same breath as the configuration, so the service applies both before any audio.
            if replayed := await run.replay(conn):
                event("upstream.replayed", self._id, items=replayed)  # a count only: transcripts stay out of logs
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
        if run.upstream.conn is not conn or run.status.state not in (State.CONNECTING, State.RECONNECTING):
            return
        if run.upstream.configured:
            # Configured, but the replayed items were never all acknowledged: talk on rather than fail.
            event("replay.unacknowledged", self._id, pending=run.upstream.replay.pending)
            run.events.become_ready()
            return
        run.telemetry.failure(ErrorCode.UPSTREAM_TIMEOUT)
        run.status.fail(ErrorCode.UPSTREAM_TIMEOUT, "Voice Live accepted the connection but never confirmed the session.")
        self._stop("ready_timeout")
