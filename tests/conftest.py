"""Shared fixtures: the real emulator in-process, the real app as a subprocess, tabs over real sockets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.apps import AppProcess, start_app
from support.tab import Tab
from support.upstreams import emulator_env, running
from voicebridge.emulator import Emulator, EmulatorConfig


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with running(EmulatorConfig(pace=1.0)) as emu:
        yield emu


@pytest.fixture(scope="module")
def app(request: pytest.FixtureRequest, emulator: Emulator) -> AppProcess:
    return start_app(request, emulator_env(emulator, VOICEBRIDGE_RECONNECT_SECONDS="10"))


@pytest.fixture
def tabs(app: AppProcess) -> Iterator:
    opened: list[Tab] = []

    def open_tab(url: str | None = None) -> Tab:
        tab = Tab(url or app.url)
        opened.append(tab)
        return tab

    yield open_tab
    for tab in opened:
        tab.close()
