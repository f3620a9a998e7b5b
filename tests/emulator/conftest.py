"""Emulator tests: the real emulator on a real port, driven by the real Voice Live SDK."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from support.sdk_client import KEY, url  # noqa: F401  (re-exported for fixtures)
from voicebridge.emulator import Emulator, EmulatorConfig


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., Emulator]]:
    started: list[Emulator] = []

    def make(**config) -> Emulator:
        emu = Emulator(EmulatorConfig(**{"pace": 0, **config}))
        emu.start(host="127.0.0.1", port=0)
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()


@pytest.fixture
def emulator(make_emulator) -> Emulator:
    return make_emulator()


