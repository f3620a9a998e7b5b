"""The production server, the same in `make run` and in the container: gunicorn as the process
manager, one voicebridge worker (worker.py) per core.

Each worker holds its own event loop, bridge, upstream sessions and (in emulator mode) its own built-in
emulator on a free port; the kernel hands each new connection to whichever worker accepts it first, so
sessions spread across the cores. No thread waits on a client: every socket lives on the worker's loop
(front.py), and Flask runs on that loop too, one request per loop iteration. See
docs/decisions/0009-serving-on-the-event-loop.md.

A worker proves it serves by a heartbeat its event loop itself beats (runtime.LoopWatch): one whose loop
is blocked for VOICEBRIDGE_WORKER_TIMEOUT_SECONDS is replaced, and a worker that dies (replaced, killed,
crashed) loses only its own tabs, which resume on a sibling with their history; its per-user counts are
void the moment the master reaps it (`_worker_gone`). See docs/decisions/0016-loop-heartbeat-and-accepting.md.

Shutdown:
- SIGTERM (App Service swap, restart, scale-in) drains every worker: /healthz turns 503 while the worker
  still accepts, every tab is told to reconnect (state reconnecting, close 1012), every upstream session
  is closed, then the workers exit and gunicorn exits 0 — within VOICEBRIDGE_DRAIN_SECONDS.
- SIGINT (Ctrl-C) closes the upstream sessions and stops at once.
"""

from __future__ import annotations

import errno
import logging
import shutil
import socket
import tempfile
from typing import Any

from gunicorn.app.base import BaseApplication

from .app import capacity_board, create_app
from .balance import LoadBoard, UserBoard, free_slot
from .bridge import Siblings
from .handoff import Handoff
from .pacer import Pacer
from .settings import Settings

log = logging.getLogger("voicebridge.server")


class VoicebridgeServer(BaseApplication):
    def __init__(self, settings: Settings):
        self.settings = settings
        self.board = LoadBoard(settings.worker_count)  # before the fork: every worker shares it
        self.users = UserBoard(settings.worker_count) if settings.worker_count > 1 else None
        # The instance's connections and tokens per Voice Live endpoint, paced for all workers (pacer.py).
        self.capacity = capacity_board(settings, settings.worker_count)
        # Where the workers' handoff sockets live (handoff.py): made here, so every worker knows it.
        self.handoff_dir = tempfile.mkdtemp(prefix="voicebridge-handoff-")
        self.slot = -1  # in a worker process (after the fork): its slot, which `load` builds it for
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        options = {
            "bind": f"{s.host}:{s.port}",
            "workers": s.worker_count,
            "worker_class": "voicebridge.worker.LoopWorker",
            # The worker's event loop beats (runtime.LoopWatch): a loop blocked this long is replaced.
            "timeout": s.worker_timeout_s,
            "graceful_timeout": int(s.drain_timeout_s) + 5,
            "backlog": 2048,
            # Whether X-Forwarded-* headers count is the app's decision (VOICEBRIDGE_TRUST_FORWARDED,
            # identity.py), not gunicorn's: by default it believes X-Forwarded-Proto from 127.0.0.1.
            "forwarded_allow_ips": "",
            "accesslog": None,
            "errorlog": "-",
            "loglevel": s.log_level.lower(),
            "proc_name": "voicebridge",
            # The runtime control socket would need a writable $HOME; nothing here uses it.
            "control_socket_disable": True,
            "pre_fork": self._assign_slot,
            "post_fork": self._in_worker,
            "child_exit": self._worker_gone,
            "on_exit": lambda arbiter: shutil.rmtree(self.handoff_dir, ignore_errors=True),
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def _assign_slot(self, arbiter: Any, worker: Any) -> None:
        taken = {getattr(w, "slot", -1) for w in arbiter.WORKERS.values()}
        worker.slot = free_slot(taken, self.board.slots)
        self.board.publish(worker.slot, 0)

    def _in_worker(self, arbiter: Any, worker: Any) -> None:
        self.slot = worker.slot  # this process is the worker now: `load` builds its bridge for this slot

    def _worker_gone(self, arbiter: Any, worker: Any) -> None:
        """In the master, as soon as a worker is reaped (exited, replaced after a hang, killed): its sessions
        went with it, so its per-user counts and its load no longer hold anyone back."""
        slot = getattr(worker, "slot", -1)
        if self.users is not None:
            self.users.clear(slot)
        self.capacity.clear(slot)  # nobody waits there now; the connections it opened still count
        self.board.publish(slot, 0)
        log.info("event=worker.gone pid=%s slot=%s", worker.pid, slot)

    def load(self) -> Any:
        # Called in each worker after the fork: every worker has its own loop, bridge and emulator.
        siblings = None
        if self.settings.worker_count > 1 and self.slot >= 0:
            if self.users is not None:
                self.users.clear(self.slot)  # a (re)started worker holds no session yet
            siblings = Siblings(slot=self.slot, users=self.users, handoff=Handoff(self.handoff_dir, self.slot))
        # The pacer's row is this worker's slot (0 when it is the only one).
        pacer = Pacer(self.capacity, max(0, self.slot))
        return create_app(self.settings, siblings=siblings, pacer=pacer)


def port_in_use(host: str, port: int) -> bool:
    """Whether another process already listens on host:port (gunicorn would retry for seconds, then fail)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds: TIME_WAIT is no conflict
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def serve(settings: Settings) -> None:
    VoicebridgeServer(settings).run()
