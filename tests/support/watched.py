"""A subprocess whose output is collected line by line, so a test waits on what it said without polling."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

# Ctrl+C must reach the process as it reaches a person's: a test runner started in the background of a
# non-interactive shell (`cmd &`, nohup) inherits SIGINT ignored, and so would every sample it starts.
# Reset it, then exec the real command (an exec keeps the default; a Python then installs its own handler).
_DEFAULT_SIGINT = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])"


class WatchedProcess:
    """A real process whose output is collected line by line and waited on without polling."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]):
        self.lines: list[str] = []
        self._cond = threading.Condition()
        args = [sys.executable, "-c", _DEFAULT_SIGINT, *args]
        self.proc = subprocess.Popen(args, cwd=cwd, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, encoding="utf-8", errors="replace")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self.proc.wait()
            self._cond.notify_all()

    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def said(self, text: str) -> bool:
        with self._cond:
            return any(text in line for line in self.lines)

    def wait_for_output(self, text: str, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.said(text) or self.proc.poll() is not None, timeout) and \
                self.said(text)

    def ended(self) -> bool:
        return self.proc.poll() is not None

    def interrupt(self, timeout: float = 20) -> int:
        """Ctrl+C, as a person ends an interactive sample; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.finish(timeout)

    def finish(self, timeout: float) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"the sample did not end within {timeout} s:\n{self.output()}") from None
        self._reader.join(timeout=10)
        return code


    def wait_for_line(self, predicate: Callable[[str], bool], timeout: float) -> str | None:
        with self._cond:
            found: list[str] = []

            def seen() -> bool:
                found[:] = [line for line in self.lines if predicate(line)][:1]
                return bool(found) or self.proc.poll() is not None

            self._cond.wait_for(seen, timeout)
            return found[0] if found else None


def clean_env() -> dict[str, str]:
    """Our environment without any Azure or agent settings a developer may have exported."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "AGENT_", "APPLICATIONINSIGHTS"))}
