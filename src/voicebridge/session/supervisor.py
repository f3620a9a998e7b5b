"""Start, stop, park and resume: the lifecycle of one tab's upstream session.

`start`, `stop` and the tab closing may arrive in any order and any number; the lifecycle enum says
what each means now, and the last word wins (stop, start, stop ends stopped). Each run is one owned
task (runloop.py keeps it connected); its cleanup always ends by setting `closed`, whatever the steps
before it met. A tab that vanishes without session.stop may leave its run parked: still connected
upstream, waiting for the same conversation to resume on a new socket (issue 12).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from enum import Enum

from .. import protocol
from ..logs import event
from ..protocol import ErrorCode, State, Turn
from ..tasks import TaskOwner
from .connection import quiet_close
from .host import SessionHost
from .run import Run
from .runloop import RunLoop
from .stats import SessionStats
from .tab import TabLink

log = logging.getLogger("voicebridge.session")


class Lifecycle(Enum):
    IDLE = "idle"  # no run: start() begins one
    RUNNING = "running"  # a run is connecting, relaying or reconnecting
    PARKED = "parked"  # running without a tab: the socket dropped, a resume may reattach one
    STOPPING = "stopping"  # stop() cancelled the run; its cleanup is under way
    RESTARTING = "restarting"  # stopping, and a start() came meanwhile: a fresh run follows the cleanup
    CLOSED = "closed"  # the tab is gone: a run still cleaning up ends, nothing starts again


class Supervisor:
    def __init__(
        self,
        session_id: str,
        tab: TabLink,
        tasks: TaskOwner,
        *,
        host: SessionHost,
        new_run: Callable[[], Run],
        stats: SessionStats,
        run_ended: Callable[[], None] = lambda: None,
        owner: object = None,
    ):
        self._id = session_id
        self._tab = tab
        self._tasks = tasks
        self._host = host
        self.lifecycle = Lifecycle.IDLE
        self._new_run = new_run
        self._stats = stats
        self._run_ended = run_ended
        self._owner = owner  # the session Bridge.admit counts (by its user)
        self.run = new_run()  # the current run, or the last one (finished); never None
        self._task: asyncio.Task[None] | None = None
        self._history: tuple[Turn, ...] = ()  # what the next run starts from (session.start's history)
        self._loop = RunLoop(session_id, tasks, host, wanted=self._wanted, stop=self.stop)
        self.no_upstream = asyncio.Event()  # set while no upstream session is open
        self.no_upstream.set()  # nothing upstream yet

    def _wanted(self) -> bool:
        return self.lifecycle in (Lifecycle.RUNNING, Lifecycle.PARKED)

    def start(self, history: tuple[Turn, ...] = ()) -> None:
        if self.lifecycle is Lifecycle.STOPPING:
            self.lifecycle = Lifecycle.RESTARTING  # start again once the old upstream is closed
            self._history = history
        if self.lifecycle is not Lifecycle.IDLE:
            return
        refusal = self._host.admit(self._owner)
        if refusal is not None:
            self.run.status.error(refusal.code, refusal.message)
            if refusal.stopped:  # a limit, not a passing condition
                self.run.telemetry.limit(refusal.code)
                self._tab.send(protocol.state(State.STOPPED))
            if refusal.close is not None:
                self._tab.close(refusal.close, refusal.close_reason)
            return
        run = self.run = self._new_run()
        run.seed(history or self._history)
        self._history = ()
        run.telemetry.started()
        self.no_upstream.clear()
        self.lifecycle = Lifecycle.RUNNING
        self._task = self._tasks.spawn(self._supervise(run), "run")
        run.limits.start(self.stop)
        event("session.start", self._id)

    def stop(self, reason: str) -> None:
        if self.lifecycle is Lifecycle.RESTARTING:
            self.lifecycle = Lifecycle.STOPPING  # the last word is stop: no fresh run after the cleanup
        if self.lifecycle is Lifecycle.PARKED:
            self.lifecycle = Lifecycle.CLOSED  # nobody is left to start again
            self._cancel(reason)
        if self.lifecycle is not Lifecycle.RUNNING:
            return
        self.lifecycle = Lifecycle.STOPPING
        self._cancel(reason)

    def tab_closed(self) -> None:
        was = self.lifecycle
        self.lifecycle = Lifecycle.CLOSED
        self._tab.gone()
        if was in (Lifecycle.RUNNING, Lifecycle.PARKED):
            self._cancel("tab_closed")

    def park(self) -> None:
        """The tab vanished mid-run: keep the upstream, drop what it says until a tab is back."""
        if self.lifecycle is Lifecycle.RUNNING:
            self.lifecycle = Lifecycle.PARKED
            self.run.park()
            event("session.parked", self._id)

    def resumed(self) -> None:
        """A new socket took this session over (parked, or still running on a socket that went quiet)."""
        if self.lifecycle is Lifecycle.PARKED:
            self.lifecycle = Lifecycle.RUNNING
        self.run.resume()
        event("session.resumed", self._id)

    def _cancel(self, reason: str) -> None:
        assert self._task is not None
        self.run.limits.cancel()  # a limit falling due during the cleanup must not stop a restart
        self.run.initiative.cancel()
        self._task.cancel()
        event("session.stop", self._id, reason=reason)

    # --- one run ---------------------------------------------------------------------------------

    async def _supervise(self, run: Run) -> None:
        end_reason = "stopped"
        try:
            end_reason = await self._loop.connect_loop(run)
        except asyncio.CancelledError:
            end_reason = "stopped"
        except Exception:  # a surprise must end this session only, never the process or a neighbour
            log.exception("event=session.crashed session=%s", self._id)
            end_reason = "internal"
            run.status.fail(ErrorCode.INTERNAL, "Something went wrong in the bridge; please start the session again.")
        finally:
            try:
                conn = run.upstream.release()
                if conn is not None:
                    await quiet_close(conn)
            finally:
                self._finish(run, end_reason)

    def _finish(self, run: Run, reason: str) -> None:
        """The run is over. Every step is attempted; `closed` is set whatever the others met."""
        run.limits.cancel()
        run.initiative.cancel()
        self._task = None
        self.no_upstream.set()
        if self.lifecycle is Lifecycle.PARKED:
            self.lifecycle = Lifecycle.CLOSED  # ended by itself while its tab was away: nobody to tell
        # The session's place is free (here and in the siblings' per-user counts) before the tab hears
        # `stopped`: a start made the moment the person sees it, from any tab on any worker, is admitted.
        self._attempt(self._run_ended)
        if run.status.state is not State.ERROR:
            self._attempt(run.status.show, run.status.machine.stopped())
        self._attempt(run.telemetry.ended, reason)
        event("session.closed", self._id, reason=reason, **self._stats.fields())
        if self.lifecycle is Lifecycle.RESTARTING:
            self.lifecycle = Lifecycle.IDLE
            self.start(self._history)
        elif self.lifecycle is not Lifecycle.CLOSED:
            self.lifecycle = Lifecycle.IDLE

    def _attempt(self, step: Callable[..., None], *args: object) -> None:
        try:
            step(*args)
        except Exception:
            log.exception("event=session.cleanup_failed session=%s step=%s", self._id, getattr(step, "__name__", step))
