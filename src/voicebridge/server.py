"""The production server, the same in `make run` and in the container: gunicorn as the process
manager, one voicebridge worker (worker.py) per core.

Each worker holds its own event loop, bridge, upstream sessions and (in emulator mode) its own built-in
emulator on a free port; the kernel hands each new connection to whichever worker accepts it first, so
sessions spread across the cores. No thread waits on a client: every socket lives on the worker's loop
(front.py), Flask runs on a few pool threads per worker. See docs/decisions/0009-serving-on-the-event-loop.md.

Shutdown:
- SIGTERM (App Service swap, restart, scale-in) drains every worker: /healthz turns 503 while the worker
  still accepts, every tab is told to reconnect (state reconnecting, close 1012), every upstream session
  is closed, then the workers exit and gunicorn exits 0 — within VOICEBRIDGE_DRAIN_SECONDS.
- SIGINT (Ctrl-C) closes the upstream sessions and stops at once.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from typing import Any

from gunicorn.app.base import BaseApplication

from .app import capacity_board, create_app
from .balance import LoadBoard, UserBoard, free_slot
from .settings import Settings

log = logging.getLogger("voicebridge.server")


class VoicebridgeServer(BaseApplication):
    def __init__(self, settings: Settings):
        self.settings = settings
        self.board = LoadBoard(settings.worker_count)  # before the fork: every worker shares it
        self.users = UserBoard(settings.worker_count) if settings.worker_count > 1 else None
        # The instance's connections and tokens per Voice Live endpoint, paced for all workers (pacer.py).
        self.capacity = capacity_board(settings, settings.worker_count)
        self._slot = 0  # the slot of the worker this process is, once forked (post_fork)
        # Where the workers' handoff sockets live (handoff.py): made here, so every worker knows it.
        self.handoff_dir = tempfile.mkdtemp(prefix="voicebridge-handoff-")
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        options = {
            "bind": f"{s.host}:{s.port}",
            "workers": s.worker_count,
            "worker_class": "voicebridge.worker.LoopWorker",
            # The worker's main thread only beats; a loop that hangs this long is restarted.
            "timeout": 30,
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
            "post_fork": lambda arbiter, worker: setattr(self, "_slot", max(0, worker.slot)),
            "on_exit": lambda arbiter: shutil.rmtree(self.handoff_dir, ignore_errors=True),
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def _assign_slot(self, arbiter: Any, worker: Any) -> None:
        taken = {getattr(w, "slot", -1) for w in arbiter.WORKERS.values()}
        worker.slot = free_slot(taken, self.board.slots)
        self.board.publish(worker.slot, 0)

    def load(self) -> Any:
        # Called in each worker after the fork: every worker has its own loop, bridge and emulator.
        return create_app(self.settings, board=self.capacity, slot=self._slot)


def serve(settings: Settings) -> None:
    VoicebridgeServer(settings).run()
