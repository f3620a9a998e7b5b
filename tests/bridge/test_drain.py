"""SIGTERM drain with the real server process (gunicorn), as App Service sends it on swap/restart/scale-in."""

from __future__ import annotations

import signal

from support.apps import http_get, start_app
from support.tab import Tab


def test_sigterm_tells_every_tab_closes_every_upstream_and_exits_zero(request, emulator):
    app = start_app(
        request,
        {
            "AZURE_VOICE_LIVE_ENDPOINT": f"http://127.0.0.1:{emulator.port}",
            "AZURE_VOICE_LIVE_API_KEY": "test-key",
            "VOICEBRIDGE_DRAIN_SECONDS": "5",
        },
    )
    before = sum(1 for s in emulator.sessions() if s.open)
    tabs = [Tab(app.url), Tab(app.url)]
    for tab in tabs:
        tab.start()
        tab.wait_state("ready")
    assert emulator.wait_until(lambda: sum(1 for s in emulator.sessions() if s.open) == before + 2)

    app.signal(signal.SIGTERM)
    for tab in tabs:
        tab.wait_state("reconnecting")
    # The drain has begun (the tabs were told), so the platform must no longer see a healthy instance.
    try:
        status = http_get(app.url + "/healthz")[0]
    except OSError:
        status = None  # already stopped listening: not healthy either
    assert status != 200
    assert [tab.wait_closed() for tab in tabs] == [1012, 1012]
    assert emulator.wait_until(lambda: sum(1 for s in emulator.sessions() if s.open) == before)
    assert app.wait(timeout=20) == 0


def test_drain_is_clean_even_though_every_tab_was_closed_before_its_session_ended(request, emulator):
    """Issue 10 (8): each session's cleanup runs after its tab got the close frame; nothing it tries to
    tell that tab may keep the session from counting as closed, or the drain from reporting clean."""
    app = start_app(
        request,
        {
            "AZURE_VOICE_LIVE_ENDPOINT": f"http://127.0.0.1:{emulator.port}",
            "AZURE_VOICE_LIVE_API_KEY": "test-key",
            "VOICEBRIDGE_DRAIN_SECONDS": "3",
        },
    )
    tabs = [Tab(app.url), Tab(app.url)]
    for tab in tabs:
        tab.start()
        tab.wait_state("ready")
    app.signal(signal.SIGTERM)
    assert [tab.wait_closed() for tab in tabs] == [1012, 1012]
    assert app.wait(timeout=20) == 0
    lines = app.log_path.read_text().splitlines()
    # One line per worker process that held a tab (one per core): each drain must have been clean.
    done = [line.rsplit("event=", 1)[-1] for line in lines if "event=drain.done" in line]
    assert done and set(done) == {"drain.done clean=True"}, done
    assert [line for line in lines if " ERROR " in line or "never retrieved" in line] == []
