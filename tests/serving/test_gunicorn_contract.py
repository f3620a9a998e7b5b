"""What worker.py and server.py rely on inside gunicorn, documented or not (issue 21). gunicorn shipped
several majors in a year: each test fails when a release changes one of these, before a deploy finds out.

The internals: `Worker.PIPE` (the signal wake-up pipe the main thread waits on), `Worker.notify` and
`tmp.last_update` against the arbiter's `timeout` (the heartbeat, SIGABRT then SIGKILL), the base class's
SIGABRT handler (a timed-out worker exits 1), `Arbiter.WORKERS` (pid -> worker, read by the pre_fork
hook to pick a slot), `sockets[].sock` (the listening socket the loop accepts on), and the server hooks
and settings server.py sets.
"""

from __future__ import annotations

import inspect
import logging
import os
import shutil
import signal
import socket
import time
from types import SimpleNamespace

import pytest
from gunicorn import sock as gsock
from gunicorn.arbiter import Arbiter
from gunicorn.config import Config
from gunicorn.workers.workertmp import WorkerTmp

from voicebridge.server import VoicebridgeServer
from voicebridge.settings import Settings
from voicebridge.worker import LoopWorker


@pytest.fixture
def server():
    made = VoicebridgeServer(Settings(workers=2, worker_timeout_s=7))
    yield made
    shutil.rmtree(made.handoff_dir, ignore_errors=True)


def worker(cfg: Config) -> LoopWorker:
    return LoopWorker(age=1, ppid=os.getpid(), sockets=[], app=None, timeout=cfg.timeout / 2, cfg=cfg,
                      log=logging.getLogger("test"))


def test_every_setting_and_hook_the_server_sets_exists_with_its_meaning(server):
    cfg = server.cfg
    assert cfg.timeout == 7 and cfg.workers == 2
    assert cfg.worker_class_str == "voicebridge.worker.LoopWorker"
    assert cfg.forwarded_allow_ips == [] and cfg.control_socket_disable is True
    # The hooks are called by name with (arbiter, worker); the set value is what gets called.
    for hook in ("pre_fork", "post_fork", "child_exit"):
        assert inspect.signature(getattr(cfg, hook)).parameters.keys() == {"arbiter", "worker"}, hook


def test_the_arbiter_keeps_its_workers_by_pid_and_calls_pre_fork_before_forking():
    assert isinstance(Arbiter.WORKERS, dict)
    source = inspect.getsource(Arbiter.spawn_worker)
    assert source.index("self.cfg.pre_fork(self, worker)") < source.index("os.fork()") < source.index(
        "self.WORKERS[pid] = worker"
    )
    # A reaped worker's hook: child_exit(arbiter, worker), with the worker object pre_fork saw.
    reap = inspect.getsource(Arbiter.reap_workers)
    assert "worker = self.WORKERS.pop(wpid, None)" in reap and "self.cfg.child_exit(self, worker)" in reap
    assert "self.cfg.post_fork(self, worker)" in source


def test_a_stale_heartbeat_gets_sigabrt_then_sigkill_and_a_fresh_one_nothing():
    cfg = Config()
    tmp = WorkerTmp(cfg)
    try:
        beating = SimpleNamespace(tmp=tmp, aborted=False)
        stale = SimpleNamespace(tmp=SimpleNamespace(last_update=lambda: time.monotonic() - 31), aborted=False)
        killed = []
        arbiter = SimpleNamespace(timeout=30, WORKERS={1: beating, 2: stale}, log=logging.getLogger("test"),
                                  kill_worker=lambda pid, sig: killed.append((pid, sig)))
        tmp.notify()  # what LoopWorker's loop calls through runtime.LoopWatch
        Arbiter.murder_workers(arbiter)
        Arbiter.murder_workers(arbiter)
        assert killed == [(2, signal.SIGABRT), (2, signal.SIGKILL)]
        assert time.monotonic() - tmp.last_update() < 5
    finally:
        tmp.close()


def test_the_worker_keeps_gunicorns_abort_handler_and_wake_up_pipe(server):
    w = worker(server.cfg)
    saved = {s: signal.getsignal(s) for s in (*w.SIGNALS, signal.SIGABRT)}
    w.PIPE = os.pipe()  # what Worker.init_process makes before init_signals
    for fd in w.PIPE:
        os.set_blocking(fd, False)
    try:
        w.init_signals()
        previous = signal.set_wakeup_fd(-1)
        assert previous == w.PIPE[1], "signals wake the main thread through PIPE"
        assert signal.getsignal(signal.SIGTERM) == w._on_term and signal.getsignal(signal.SIGINT) == w._on_quit
        handler = signal.getsignal(signal.SIGABRT)
        assert handler == w.handle_abort
        with pytest.raises(SystemExit) as exit_:
            handler(signal.SIGABRT, None)  # the arbiter's "heartbeat stopped": the worker exits 1
        assert exit_.value.code == 1 and w.alive is False
        for attribute in ("ppid", "sockets", "app", "cfg", "tmp", "notify", "pid"):
            assert hasattr(w, attribute), attribute
    finally:
        signal.set_wakeup_fd(-1)
        for s, h in saved.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        for fd in w.PIPE:
            os.close(fd)
        w.tmp.close()


def test_gunicorn_listeners_expose_the_socket_the_loop_accepts_on():
    cfg = Config()
    cfg.set("bind", "127.0.0.1:0")
    listeners = gsock.create_sockets(cfg, logging.getLogger("test"))
    try:
        (listener,) = listeners
        assert isinstance(listener.sock, socket.socket) and listener.sock.type == socket.SOCK_STREAM
        assert listener.sock.getsockname()[0] == "127.0.0.1"
    finally:
        gsock.close_sockets(listeners)


def test_a_reaped_worker_voids_its_per_user_counts_and_its_load_at_once(server):
    """child_exit runs in the master when it reaps a worker (exit, SIGKILL, replaced after a hang): the
    sessions it counted are gone, so its row must no longer hold a user back on its siblings."""
    bucket = server.users.bucket("address\0192.0.2.1")
    server.users.publish(1, bucket, 1)
    server.board.publish(1, 50)
    assert server.users.elsewhere(0, bucket) == 1 and server.board.busier_than_a_sibling(1)
    server.cfg.child_exit(None, SimpleNamespace(slot=1, pid=4242))
    assert server.users.elsewhere(0, bucket) == 0
    assert not server.board.busier_than_a_sibling(1)
