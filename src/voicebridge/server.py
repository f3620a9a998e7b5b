"""The production server: gunicorn's threaded worker, the same in `make run` and in the container.

One worker process holds every session (they live on its event loop); each open tab parks one of its
threads until the tab ends, so `threads` bounds the concurrent tabs per instance and App Service scales
out beyond that.

Shutdown:
- SIGTERM (App Service swap, restart, scale-in) drains: /healthz turns 503 while the worker still
  accepts, every tab is told to reconnect (state reconnecting, close 1012), every upstream session is
  closed, then the worker exits and gunicorn exits 0 — all within VOICEBRIDGE_DRAIN_SECONDS.
- SIGINT (Ctrl-C) closes the upstream sessions and stops at once.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from gunicorn.app.base import BaseApplication

from .app import create_app
from .bridge import Bridge
from .settings import Settings

log = logging.getLogger("voicebridge.server")


def _bridge(worker: Any) -> Bridge:
    return worker.wsgi.extensions["voicebridge"]


def _post_worker_init(worker: Any) -> None:
    bridge = _bridge(worker)
    timeout = bridge.settings.drain_timeout_s

    def drain_then_exit() -> None:
        try:
            bridge.drain(timeout)
        except Exception:
            log.exception("event=drain.failed")
        finally:
            bridge.shutdown(timeout=1.0)
            worker.alive = False  # gunicorn now waits for the (already closed) tab handlers and exits

    def on_term(signum: int, frame: Any) -> None:
        if not bridge.draining:
            bridge.draining = True  # /healthz answers 503 from this instant
            threading.Thread(target=drain_then_exit, name="voicebridge-drain", daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)


def _worker_int(worker: Any) -> None:
    _bridge(worker).shutdown(timeout=2.0)


def _worker_exit(server: Any, worker: Any) -> None:
    wsgi = getattr(worker, "wsgi", None)
    if wsgi is not None:
        _bridge(worker).shutdown(timeout=2.0)


class VoicebridgeServer(BaseApplication):
    def __init__(self, settings: Settings):
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        options = {
            "bind": f"{s.host}:{s.port}",
            "workers": 1,
            "worker_class": "gthread",
            "threads": s.threads,
            "worker_connections": s.threads * 2,
            "timeout": 30,
            "graceful_timeout": int(s.drain_timeout_s) + 5,
            "keepalive": 5,
            # Whether X-Forwarded-* headers count is the app's decision (VOICEBRIDGE_TRUST_FORWARDED,
            # identity.py), not gunicorn's: by default it believes X-Forwarded-Proto from 127.0.0.1.
            "forwarded_allow_ips": "",
            "accesslog": None,
            "errorlog": "-",
            "loglevel": s.log_level.lower(),
            "post_worker_init": _post_worker_init,
            "worker_int": _worker_int,
            "worker_exit": _worker_exit,
            "proc_name": "voicebridge",
            # The runtime control socket would need a writable $HOME; nothing here uses it.
            "control_socket_disable": True,
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return create_app(self.settings)


def serve(settings: Settings) -> None:
    VoicebridgeServer(settings).run()
