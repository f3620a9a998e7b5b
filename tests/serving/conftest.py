"""The hostile-client suite (issue 10): the real app as a subprocess, attacked over raw sockets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from support.apps import ARTIFACTS, AppProcess, start_app
from support.hostile import error_lines


@dataclass
class Served:
    app: AppProcess
    log: Path

    @property
    def port(self) -> int:
        return self.app.port

    def mark(self) -> int:
        return self.log.stat().st_size

    def errors(self, since: int = 0) -> list[str]:
        return error_lines(self.log, since)


def serve(request: pytest.FixtureRequest, env: dict[str, str]) -> Served:
    app = start_app(request, env)
    name = request.node.name.replace("/", "_").replace("[", "_").replace("]", "")
    return Served(app, ARTIFACTS / f"app-{name}.log")


def upstream_env(emulator) -> dict[str, str]:
    return {
        "AZURE_VOICE_LIVE_ENDPOINT": f"http://127.0.0.1:{emulator.port}",
        "AZURE_VOICE_LIVE_API_KEY": "test-key",
    }


@pytest.fixture(scope="module")
def small(request: pytest.FixtureRequest, emulator) -> Served:
    """One worker, a 1 s request deadline. VOICEBRIDGE_THREADS=4 means nothing to this server (no thread
    serves a client); it makes the former threaded server, which parked a thread per tab and per
    unfinished request, show what a few hostile sockets did to it at once instead of after 256."""
    return serve(
        request,
        {**upstream_env(emulator), "VOICEBRIDGE_WORKERS": "1", "VOICEBRIDGE_THREADS": "4", "VOICEBRIDGE_REQUEST_SECONDS": "1"},
    )


@pytest.fixture
def no_errors(small: Served):
    """Whatever the client did, the server logged no ERROR line and no traceback."""
    mark = small.mark()
    yield
    assert small.errors(mark) == []
