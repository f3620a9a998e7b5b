"""The service's quota (issue 23), end to end: the real app (gunicorn, every worker) and the real SDK against
emulators that enforce a Voice Live resource's quota — HTTP 429 with Retry-After beyond its connections
per window, failed replies beyond its tokens. The quota's minute is scaled down to seconds
(VOICEBRIDGE_UPSTREAM_QUOTA_WINDOW_SECONDS and EmulatorConfig.quota_window_s); the ratios are the real ones.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.apps import Deployments, start_app
from support.sdk_client import client, run
from support.tab import Tab
from support.upstreams import running
from voicebridge.emulator import Emulator, EmulatorConfig

WINDOW_S = 3.0  # the quota's "minute"


def _emulator(**quota) -> Iterator[Emulator]:
    with running(EmulatorConfig(pace=0.0, **quota)) as emu:
        yield emu


@pytest.fixture
def quota_emulator() -> Iterator[Emulator]:
    """One resource: 3 new connections per window."""
    yield from _emulator(connects_per_window=3, quota_window_s=WINDOW_S)


def _env(*emulators: Emulator, connects: int, **extra: str) -> dict[str, str]:
    return {
        "AZURE_VOICE_LIVE_ENDPOINT": ",".join(f"http://127.0.0.1:{e.port}" for e in emulators),
        "AZURE_VOICE_LIVE_API_KEY": "test-key",
        "VOICEBRIDGE_UPSTREAM_CONNECTS_PER_MINUTE": str(connects),
        "VOICEBRIDGE_UPSTREAM_QUOTA_WINDOW_SECONDS": str(WINDOW_S),
        "VOICEBRIDGE_MAX_SESSIONS_PER_ADDRESS": "0",
        **extra,
    }


def _errors(tabs: list[Tab]) -> list[dict]:
    return [m for tab in tabs for m in tab.of_type("error")]


def _busy(tab: Tab) -> list[dict]:
    return [m for m in tab.of_type("warning") if m.get("code") == "upstream_busy"]


def _started(request, url: str, count: int) -> list[Tab]:
    """`count` tabs pressing Start at once (closed when the test ends)."""
    tabs = [Tab(url) for _ in range(count)]
    for tab in tabs:
        request.addfinalizer(tab.close)
        tab.start()
    return tabs


def _all_ready(tabs: list[Tab], timeout: float) -> None:
    for tab in tabs:
        tab.wait_state("ready", timeout=timeout)


def test_a_burst_beyond_the_quota_waits_its_turn_and_every_tab_gets_ready(request, quota_emulator):
    """Seven tabs start at once on a resource that takes three per window: the pacer lets three through
    per window (all workers together), tells the others how long they wait, and nobody gets an error."""
    app = start_app(request, _env(quota_emulator, connects=3))
    tabs = _started(request, app.url, 7)
    _all_ready(tabs, timeout=5 * WINDOW_S + 10)
    assert _errors(tabs) == []
    waited = [tab for tab in tabs if _busy(tab)]
    assert len(waited) >= 4, [tab.summary() for tab in tabs]
    for tab in waited:
        warning = _busy(tab)[0]
        assert warning["seconds"] >= 1 and warning["message"]
        # Waiting is connecting, not an error state: the warning comes before ready, with connecting.
        assert tab.states()[: tab.states().index("ready")] == ["connecting"]
    assert quota_emulator.quota.refused <= 1  # at most one 429: the pacer kept inside the quota


def test_a_foreign_429_waits_its_retry_after_and_is_retried(request, quota_emulator):
    """The pacer does not know of the quota (someone else uses the resource too): the service's 429s
    are waited out (Retry-After) and retried; the tabs see upstream_busy, never upstream_unavailable."""
    app = start_app(request, _env(quota_emulator, connects=0))
    tabs = _started(request, app.url, 5)
    _all_ready(tabs, timeout=4 * WINDOW_S + 10)
    assert _errors(tabs) == []
    assert quota_emulator.quota.refused >= 1
    assert any(_busy(tab) for tab in tabs), [tab.summary() for tab in tabs]


def test_a_deploy_with_more_tabs_than_a_windows_quota_brings_every_tab_back(request, quota_emulator):
    """SIGTERM with six live tabs on a resource that takes three per window: the drain tells the tabs
    over how long to spread their reconnects, and even tabs that all come back at once (a page that
    ignores the hint) all get ready on the new process, their conversations replayed, without an error."""
    deployments = Deployments(request, quota_emulator, "capacity-deploy")
    deployments.env.update(_env(quota_emulator, connects=3))
    deployments.current.stop()
    deployments.current = deployments._start(deployments.current.port)
    first = _started(request, deployments.current.url, 6)
    _all_ready(first, timeout=4 * WINDOW_S + 10)

    deployments.drain()
    hints = [tab.wait_for(lambda m: m.get("state") == "reconnecting", timeout=10) for tab in first]
    assert [tab.wait_closed() for tab in first] == [1012] * 6
    # Six tabs at three per window: spread over at least two windows.
    assert max(h.get("reconnect_within_s", 0) for h in hints) >= 2 * WINDOW_S
    app = deployments.replace()
    history = [{"role": "user", "text": "hello"}, {"role": "assistant", "text": "hi there"}]
    back = [Tab(app.url) for _ in range(6)]
    for tab in back:
        tab.send({"type": "session.start", "history": history})
    _all_ready(back, timeout=5 * WINDOW_S + 10)
    assert _errors(first) == [] and _errors(back) == []
    # The new process cannot know what its predecessor opened in the last window: each of its workers
    # may meet one 429 before the board tells them all to wait.
    assert quota_emulator.quota.refused <= 2


@pytest.fixture
def refusing_emulator() -> Iterator[Emulator]:
    """A resource whose quota someone else has spent for a long while: every handshake is 429."""
    yield from _emulator(connects_per_window=1, quota_window_s=600.0)


def test_two_endpoints_one_refusing_every_tab_lands_on_the_other(request, refusing_emulator, quota_emulator):
    async def foreign_use() -> None:  # someone else's connection spends the refusing resource's quota
        async with client(refusing_emulator):
            pass

    run(foreign_use())
    app = start_app(request, _env(refusing_emulator, quota_emulator, connects=30))
    tabs = _started(request, app.url, 4)
    _all_ready(tabs, timeout=20)
    assert _errors(tabs) == []
    # Skipped for its Retry-After after the first refusal (per worker at most: two workers may both try it).
    assert refusing_emulator.quota.refused <= 2
    assert sum(1 for s in quota_emulator.sessions() if s.open) == 4


def test_the_session_token_limit_ends_the_session_after_a_warning(request, quota_emulator):
    # With these instructions the emulator bills about 25, 40, 55 tokens for the first three replies (each
    # re-reads the conversation): the second reply leaves less than the next one costs, so the warning comes
    # then (before 80 % is used), and the third ends the session.
    env = _env(quota_emulator, connects=0, VOICEBRIDGE_MAX_SESSION_TOKENS="100", VOICE_LIVE_INSTRUCTIONS="Answer briefly.")
    app = start_app(request, env)
    tab = Tab(app.url)
    tab.start()
    tab.wait_state("ready")
    limit_reached = lambda m: m.get("type") == "error" and m.get("code") == "session_token_limit"  # noqa: E731
    for _turn in range(5):
        mark = tab.mark()
        tab.send({"type": "text", "text": "hello there"})
        reply = tab.wait_for(lambda m: limit_reached(m) or (m.get("role") == "assistant" and m.get("final")), start=mark)
        if limit_reached(reply) or any(limit_reached(m) for m in tab.messages):
            break
        tab.wait_state("ready", start=mark)
    tab.wait_for(limit_reached)
    warnings = [m for m in tab.of_type("warning") if m["code"] == "session_token_limit"]
    assert len(warnings) == 1 and warnings[0]["seconds"] >= 0
    tab.wait_state("stopped")
    assert quota_emulator.wait_until(lambda: not any(s.open for s in quota_emulator.sessions()))


@pytest.fixture
def one_per_window() -> Iterator[Emulator]:
    yield from _emulator(connects_per_window=1, quota_window_s=WINDOW_S)


def test_a_continuing_conversation_goes_before_a_new_start_that_waits_longer(request, one_per_window):
    """One connection per window: a new start waits behind the one connected, then a tab continuing its
    conversation (a start with its history, as after a deploy) arrives and still goes first — whichever
    worker holds each of them."""
    app = start_app(request, _env(one_per_window, connects=1))
    first = Tab(app.url)
    first.start()
    first.wait_state("ready")
    newcomer, continuing = Tab(app.url), Tab(app.url)
    newcomer.start()
    newcomer.wait_for(lambda m: m.get("code") == "upstream_busy")
    continuing.send({"type": "session.start", "history": [{"role": "user", "text": "where were we?"}]})
    continuing.wait_state("ready", timeout=2 * WINDOW_S + 10)
    assert "ready" not in newcomer.states()
    newcomer.wait_state("ready", timeout=2 * WINDOW_S + 10)
    assert _errors([first, newcomer, continuing]) == []
