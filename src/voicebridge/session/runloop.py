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
from ..upstream import UpstreamError, with_tools
from .connection import quiet_close
from .host import Opened, SessionHost
from .rollover import Rollover
from .run import Run

# How long a cancelled uplink sender may take to end before the connection closes under it anyway.
SENDER_STOP_S = 1.0


class RunLoop:
    def __init__(
        self,
        session_id: str,
        tasks: TaskOwner,
        host: SessionHost,
        *,
        wanted: Callable[[], bool],
        stop: Callable[[str], None],
    ):
        self._id = session_id
        self._tasks = tasks
        self._host = host
        self._wanted = wanted  # the run is still wanted (running, or parked waiting for its tab)
        self._stop = stop
        self._session: object = host.options.session_config  # the session.update of the current connection

    async def connect_loop(self, run: Run) -> str:
        """Connect, relay, and restore a lost upstream within the reconnect window; returns why the run ended."""
        window = self._host.options.reconnect_window_s
        deadline: float | None = None  # set while recovering a lost upstream
        attempt = 0
        handed: Opened | None = None  # a rollover's next connection, already open
        while True:
            reconnect = deadline is not None
            if handed is not None:
                opened, handed = handed, None  # a rollover opened it, continuing the agent conversation if any
                continued = run.conversation_id is not None
                run.upstream.connecting(reconnect=True)
            else:
                run.status.show(run.status.machine.connecting(reconnect))
                run.upstream.connecting(reconnect)
                continues = run.conversation_id
                # A continuing conversation (a lost upstream, or a start carrying its history after a deploy)
                # goes before new starts when the quota makes connections wait (pacer.py).
                continuing = reconnect or continues is not None or bool(run.transcripts.replayable())
                try:
                    self._session = await self._session_config()  # before a paid connection opens
                    opened = await self._host.open_upstream(continuing, run.status.waiting, continues)
                except UpstreamError as exc:
                    opened = None
                    run.telemetry.failure(exc.code)
                    if deadline is None or exc.code == ErrorCode.UPSTREAM_AUTH:
                        run.status.fail(exc.code, exc.message)
                        return exc.code
                    event("upstream.retry_failed", self._id, code=exc.code, attempt=attempt)
                else:
                    run.limits.activity()  # a wait for the quota is nobody's silence: the idle clock starts now
                continued = continues is not None
            if opened is not None:
                run.upstream.endpoint = opened.endpoint
                was_ready, handed = await self._relay(run, opened.conn, continued)
                if run.rejected:
                    return ErrorCode.UPSTREAM_REJECTED  # the same configuration would be refused again
                if not self._wanted():
                    if handed is not None:
                        await quiet_close(handed.conn)
                    return "stopped"
                if handed is not None:
                    deadline, attempt = None, 0
                    continue
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

    async def _session_config(self) -> object:
        """This connection's session.update: the process's, with the MCP servers' entries (resolved now:
        their header values are Key Vault secrets)."""
        options = self._host.options
        if options.mcp_entries is None:
            return options.session_config
        return with_tools(options.session_config, await options.mcp_entries())  # type: ignore[arg-type]

    async def _relay(self, run: Run, conn: VoiceLiveConnection,
                     continued: bool = False) -> tuple[bool, Opened | None]:
        """Relay until the upstream ends. Returns whether the session got ready on this connection, and the
        connection a rollover moved to (None: the connection was lost or the run ended)."""
        rolled = run.upstream.conn is None and run.rolling
        run.connected(conn, rolled, continued)
        sender = None
        watchdog = asyncio.get_running_loop().call_later(
            self._host.options.connect_timeout_s, self._ready_timeout, run, conn
        )
        options = self._host.options
        # The next connection continues the agent conversation (agent mode); its configuration is this one's.
        # It waits its turn in the pacer as a continuing conversation, unseen by the tab (the old one serves on).
        rollover = Rollover(self._id, self._tasks,
                            lambda: self._host.open_upstream(True, lambda seconds: None, run.conversation_id),
                            quiet=run.quiet, margin_s=options.rollover_margin_s)
        try:
            # Named, so that the service's refusal of it (message, param) fails the start at once.
            update_id = run.upstream.gate.sent({}, "session_update")["event_id"]
            await conn.session.update(session=self._session, event_id=update_id)  # type: ignore[arg-type]
            # Sent in the same breath as the configuration, so the service applies both before any audio.
            if replayed := await run.replay(conn):
                event("upstream.replayed", self._id, items=replayed)  # a count only: transcripts stay out of logs
            sender = self._tasks.spawn(run.uplink.pump(conn), "uplink")
            while True:
                raw = await conn.recv_bytes()
                if raw:
                    run.events.dispatch(raw)
                    if run.rejected:
                        break
                    if run.upstream.expires_at is not None:
                        rollover.watch(conn, run.upstream.expires_at)
                    rollover.check()
        except (ConnectionClosed, VoiceLiveConnectionError, OSError) as exc:
            if not rollover.swapped:
                event("upstream.closed", self._id, detail=str(exc)[:120])
        finally:
            watchdog.cancel()
            if rollover.swapped:
                run.rolling = True  # audio from now on waits for the next connection
            run.upstream.release()
            run.approvals.ended()  # nobody can answer this connection's requests any more
            try:
                if sender is not None:
                    await self._tasks.cancel(sender, SENDER_STOP_S)
            finally:
                await quiet_close(conn)
                following = rollover.take()
                await rollover.close()
        return run.upstream.ready, following

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
