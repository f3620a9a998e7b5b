"""voicebridge's gunicorn worker: every socket and every request on the worker's event loop (front.py),
gunicorn as the process manager (one worker per core, heartbeats, restarts, signals).

The event loop beats gunicorn's heartbeat itself (runtime.LoopWatch), so a loop that something blocks
(a tool's time.sleep) stops beating, is logged with what it is stuck in, and the worker is replaced after
gunicorn's timeout; its tabs resume on a sibling. The worker's main thread watches that heartbeat,
gives memory back, and reacts to signals:
- SIGTERM (App Service swap, restart, scale-in; gunicorn forwards the master's): drain. /healthz turns
  503 at once while the worker still accepts, every tab is told `reconnecting` and closed with 1012,
  every upstream session is closed; the worker exits as soon as that is done (within the drain limit).
- SIGINT / SIGQUIT (Ctrl-C, gunicorn's quick stop): close the upstream sessions (at most ~1 s) and exit.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import resource
import select
import signal
import sys
import threading
import time
from typing import Any

from gunicorn.workers.base import Worker

from .front import Front, FrontLimits
from .runtime import LoopThread, LoopWatch, TabLimits

log = logging.getLogger("voicebridge.server")


def _raise_fd_limit() -> None:
    # Every idle or hostile socket costs a descriptor: allow as many as the system lets us.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))
        except (ValueError, OSError):
            pass


def _libc() -> Any:
    # CDLL(None) is the process itself, glibc's symbols included (no ctypes.util.find_library: it
    # runs ldconfig in a child process).
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def _limit_malloc_arenas() -> None:
    """glibc gives every thread that allocates its own heap (the resolver's and exporters' threads), each
    keeping freed memory: two shared arenas keep the worker's RSS close to what it really uses."""
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is not None:
        mallopt(M_ARENA_MAX, 2)


def _malloc_trim() -> Any:
    """glibc keeps freed heap pages mapped; after a flood of connections ends, returning them keeps
    the worker's RSS near its baseline. None where there is no glibc (musl, macOS)."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim.argtypes = [ctypes.c_size_t]
    return trim


BEAT_S = 1.0  # the loop beats this often (gunicorn's timeout is VOICEBRIDGE_WORKER_TIMEOUT_SECONDS)
BLOCKED_REPORT_S = 3.0  # a loop late by this much is logged with what it is stuck in
TRIM_EVERY_S = 5.0
M_ARENA_MAX = -8  # glibc's mallopt parameter number
FULL_COLLECT_EVERY_S = 60.0
ENDED_BEFORE_COLLECT = 256
CHURN_COLLECT_EVERY_S = 30.0
QUIET_CONNECTIONS = 256
SWITCH_INTERVAL_S = 0.0005
GC_THRESHOLDS = (2_000, 1, 1_000)


class _Housekeeping:
    """Give memory back once connections end: the young generation is collected rarely (GC_THRESHOLDS),
    so closed connections' reference cycles wait for a full collection. One runs on the loop when the
    open connections have at least halved since their peak or many have closed since the last one (a
    flood ended), and at the latest every FULL_COLLECT_EVERY_S (a pause of tens of milliseconds that
    rarely, far below any p99); then glibc's free pages go back to the system."""

    def __init__(self, front: Front, runtime: LoopThread):
        self.front, self.runtime = front, runtime
        self.trim = _malloc_trim()
        self.peak = 0
        self.ended = 0  # front.ended at the last full collection
        self.last = time.monotonic()
        self.last_full = float("-inf")

    def tick(self) -> None:
        # (Reads two counters the loop writes: a value a moment old only moves a collection by a second.)
        now = self.front.connections()
        self.peak = max(self.peak, now)
        clock = time.monotonic()
        if clock - self.last < TRIM_EVERY_S:
            return
        self.last = clock
        ended = self.front.ended - self.ended
        # A flood ended (most connections gone); not merely a wave of attackers dropped at a deadline.
        halved = self.peak > now and now <= min(self.peak // 2, QUIET_CONNECTIONS)
        since = clock - self.last_full
        if halved or (ended >= ENDED_BEFORE_COLLECT and since >= CHURN_COLLECT_EVERY_S) or since >= FULL_COLLECT_EVERY_S:
            self.peak, self.last_full, self.ended = now, clock, self.front.ended
            self.runtime.call(self._collect)
        elif self.trim is not None:
            self.trim(0)  # ctypes releases the GIL: the loop keeps serving meanwhile

    def _collect(self) -> None:
        gc.collect()
        if self.trim is not None:
            self.trim(0)


class LoopWorker(Worker):
    def init_signals(self) -> None:
        super().init_signals()  # (SIGABRT, gunicorn's "your heartbeat stopped", stays gunicorn's: exit 1)
        self._quit = False
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_quit)
        signal.signal(signal.SIGQUIT, self._on_quit)

    def _on_term(self, signum: int, frame: Any) -> None:
        self.alive = False

    def _on_quit(self, signum: int, frame: Any) -> None:
        self.alive = False
        self._quit = True

    def run(self) -> None:
        _raise_fd_limit()
        _limit_malloc_arenas()
        # Another thread holding the GIL (the built-in emulator's, a telemetry exporter's) keeps the
        # loop waiting up to one switch interval (5 ms by default), which would be the tabs' p99.
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        # Thousands of long-lived connection objects make every full collection a pause of tens of
        # milliseconds for every tab: freeze what startup made, keep young collections small (a few
        # milliseconds: gen0 every 2,000 new objects, its survivors checked once more in gen1, then
        # left alone), and leave full collections to the housekeeping below.
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        bridge = self.wsgi.extensions["voicebridge"]
        settings, runtime, siblings = bridge.settings, bridge.runtime, bridge.siblings
        slot = siblings.slot if siblings is not None else -1
        # Built here, used only on the loop from the moment it is handed over below.
        front = Front(
            self.wsgi,
            runtime.loop,
            limits=FrontLimits(
                max_connections=settings.max_connections,
                request_s=settings.request_timeout_s,
                keepalive_s=min(5.0, settings.request_timeout_s),
            ),
            tab_limits=TabLimits(no_session_s=settings.tab_no_session_s, silence_s=settings.tab_silence_s),
            multiprocess=self.cfg.workers > 1,
            board=getattr(self.app, "board", None),
            slot=slot,
            attach=bridge.attach,
        )
        watch = LoopWatch(
            runtime=runtime, beat=self.notify, every_s=BEAT_S, report_after_s=min(BLOCKED_REPORT_S, settings.worker_timeout_s / 3)
        )
        # The one crossing: from here on the loop serves; this thread watches the heartbeat and signals.
        runtime.call(self._serve_on_loop, front, watch, [s.sock for s in self.sockets], siblings)
        log.info("event=worker.ready pid=%s slot=%s", self.pid, slot)
        housekeeping = _Housekeeping(front, runtime)
        while self.alive:
            if self.ppid != os.getppid():
                log.info("event=worker.orphaned pid=%s", self.pid)
                break
            self._sleep(BEAT_S)
            watch.check()
            housekeeping.tick()
        self._stop(front, bridge, drain_s=0.0 if self._quit else settings.drain_timeout_s)
        if siblings is not None:
            siblings.handoff.close()

    @staticmethod
    def _serve_on_loop(front: Front, watch: LoopWatch, listeners: list[Any], siblings: Any) -> None:
        watch.start()
        front.listen(listeners)
        if siblings is not None:  # a resume that reaches the wrong sibling is handed to the right one
            siblings.handoff.listen(front.loop, front.take_handed)

    def _sleep(self, seconds: float) -> None:
        # gunicorn's signal wake-up fd (PIPE) ends the wait as soon as a signal arrives.
        try:
            ready, _, _ = select.select([self.PIPE[0]], [], [], seconds)
            if ready:
                while os.read(self.PIPE[0], 1024):
                    pass
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            time.sleep(seconds)

    def _stop(self, front: Front, bridge: Any, drain_s: float) -> None:
        runtime = bridge.runtime
        if drain_s > 0:
            runtime.call(front.drain)
            deadline = time.monotonic() + drain_s
            # bridge.drain turns /healthz 503 first thing on the loop, then waits for every session.
            drain = threading.Thread(target=self._drain, args=(bridge, drain_s), name="voicebridge-drain", daemon=True)
            drain.start()
            # The loop keeps beating while it drains; a Ctrl-C during the drain still means "now".
            while drain.is_alive() and not self._quit and time.monotonic() < deadline + 1:
                drain.join(0.2)
        runtime.call(front.stop_accepting)
        bridge.shutdown(timeout=1.0)

    def _drain(self, bridge: Any, drain_s: float) -> None:
        try:
            bridge.drain(drain_s)
        except Exception as exc:  # the worker exits either way; say why it was not clean
            log.warning("event=drain.incomplete detail=%r", exc)
