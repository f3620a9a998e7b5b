"""The emulator's side of a test: the app's settings that point at it, and the upstream sessions it
recorded (SessionRecord), found by what a tab did."""

from __future__ import annotations

from voicebridge.emulator import Emulator


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
