"""The emulator's side of a test: the app's settings that point at it, and the upstream sessions it
recorded (SessionRecord), found by what a tab did."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from voicebridge.emulator import Emulator, EmulatorConfig


def emulator_env(emulator: Emulator, **extra: str) -> dict[str, str]:
    """The app pointed at the in-test emulator exactly as it would point at Azure (endpoint + key)."""
    return {
        "AZURE_VOICE_LIVE_ENDPOINT": f"http://127.0.0.1:{emulator.port}",
        "AZURE_VOICE_LIVE_API_KEY": "test-key",
        **extra,
    }


def upstream_ids(emulator: Emulator) -> set[str]:
    return {r.id for r in emulator.sessions()}


def record(emulator: Emulator, session_id: str):
    return next(r for r in emulator.sessions() if r.id == session_id)


def new_upstream(emulator: Emulator, known: set[str]):
    """The one upstream session opened since `known` was taken."""
    found = [r for r in emulator.sessions() if r.id not in known]
    assert len(found) == 1, f"expected one new upstream session, got {len(found)}"
    return found[0]


def ready(tabs, emulator: Emulator):
    """A new tab, started and ready, and the id of the upstream session it opened."""
    known = upstream_ids(emulator)
    tab = tabs()
    tab.start()
    tab.wait_state("ready")
    return tab, new_upstream(emulator, known).id


@contextmanager
def running(config: EmulatorConfig) -> Iterator[Emulator]:
    """The real emulator serving on a free port of 127.0.0.1 while the block runs."""
    emu = Emulator(config)
    emu.start(host="127.0.0.1", port=0)
    try:
        yield emu
    finally:
        emu.stop()
