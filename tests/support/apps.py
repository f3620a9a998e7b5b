"""Run the real app (`python -m voicebridge serve`, gunicorn inside) as a subprocess on a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class AppProcess:
    def __init__(self, env: dict[str, str] | None = None, log_path: Path | None = None, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "VOICE_LIVE_", "VOICEBRIDGE_"))}
        base.pop("PORT", None)
        # Tests stream speech faster than real time (the emulator's VAD runs in audio time), which the
        # audio-rate limit would cut: off unless a test sets it (tests/bridge/test_limits.py does).
        # Likewise the service's connection quota (pacer.py): a module's tests open more than 30 sessions a
        # minute; tests/bridge/test_capacity.py sets a quota of its own.
        self.env = {**base, "VOICEBRIDGE_LOG_LEVEL": "INFO", "VOICEBRIDGE_MAX_AUDIO_RATE": "0",
                    "VOICEBRIDGE_UPSTREAM_CONNECTS_PER_MINUTE": "0", **(env or {})}
        self.log_path = log_path
        self._log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "voicebridge", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_healthy()

    def _wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the app exited with {self.proc.returncode} before it was healthy")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
            except OSError:
                # Not listening yet: wait on the process itself, which also notices an early exit.
                try:
                    self.proc.wait(timeout=0.1)
                except subprocess.TimeoutExpired:
                    pass
                continue
            if http_get(self.url + "/healthz")[0] == 200:
                return
        raise RuntimeError("the app did not become healthy")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not subprocess.DEVNULL:
            self._log.close()


ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def start_app(request, env: dict[str, str]) -> AppProcess:
    """Start the app for a test (stopped at its end), logging to test-artifacts/app-<test>.log."""
    ARTIFACTS.mkdir(exist_ok=True)
    name = request.node.name.replace("/", "_").replace("[", "_").replace("]", "")
    app = AppProcess(env, log_path=ARTIFACTS / f"app-{name}.log")
    request.addfinalizer(app.stop)
    return app


class Deployments:
    """An app on the test's emulator that can be deployed again at the same address, as App Service does
    on a restart or swap: SIGTERM (the tabs get close 1012), then a new process on the same port."""

    def __init__(self, request, emulator, name: str):
        ARTIFACTS.mkdir(exist_ok=True)
        self._request, self._name, self._count = request, name, 1
        self.env = {
            "AZURE_VOICE_LIVE_ENDPOINT": f"http://127.0.0.1:{emulator.port}",
            "AZURE_VOICE_LIVE_API_KEY": "test-key",
            "VOICEBRIDGE_DRAIN_SECONDS": "2",
        }
        self.current = self._start(None)

    def _start(self, port: int | None) -> AppProcess:
        app = AppProcess(self.env, log_path=ARTIFACTS / f"app-{self._name}-{self._count}.log", port=port)
        self._request.addfinalizer(app.stop)
        return app

    def drain(self) -> None:
        self.current.signal(signal.SIGTERM)

    def replace(self) -> AppProcess:
        """Once the drained process has exited (0), the next one at the same address."""
        assert self.current.wait(timeout=20) == 0
        self._count += 1
        self.current = self._start(self.current.port)
        return self.current
