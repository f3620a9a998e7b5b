"""Tabs the server closes by itself, and how the process ends: SIGTERM drains, Ctrl-C stops (issue 10)."""

from __future__ import annotations

import signal
import socket

from serving.conftest import serve, upstream_env
from support.hostile import Reader, text, upgraded
from support.tab import Tab


def open_sessions(emulator) -> set[str]:
    return {s.id for s in emulator.sessions() if s.open}


def test_a_tab_that_never_starts_a_session_is_closed(request, emulator):
    served = serve(request, {**upstream_env(emulator), "VOICEBRIDGE_TAB_IDLE_SECONDS": "0.5"})
    tab = Tab(served.app.url)
    assert tab.wait_closed() == 1001
    assert served.errors() == []


def test_a_silent_tab_is_closed_and_so_is_its_upstream(request, emulator):
    """A socket that vanished without a FIN (closed laptop, lost network): nothing arrives, not even a
    pong to the keepalive pings. The raw socket below never answers them."""
    served = serve(request, {**upstream_env(emulator), "VOICEBRIDGE_TAB_SILENCE_SECONDS": "1"})
    before = open_sessions(emulator)
    sock = upgraded(served.port)
    try:
        sock.sendall(text({"type": "session.start"}))
        Reader(sock).until_message(lambda m: m.get("state") == "ready")
        assert emulator.wait_until(lambda: open_sessions(emulator) - before)
        mine = open_sessions(emulator) - before
        assert emulator.wait_until(lambda: not (open_sessions(emulator) & mine), timeout=15)
    finally:
        sock.close()
    assert served.errors() == []


def test_a_tab_that_answers_keepalive_pings_is_not_silent(request, emulator):
    """The same silence limit, but a real client (it answers pings) that sends nothing for a while
    keeps its session: the limit is about vanished peers, not quiet ones."""
    served = serve(request, {**upstream_env(emulator), "VOICEBRIDGE_TAB_SILENCE_SECONDS": "0.6"})
    tab = Tab(served.app.url)
    try:
        tab.start()
        tab.wait_state("ready")
        # Three silence limits pass in which the tab sends nothing but its answers to the pings.
        assert not tab.closed.wait(1.8)
        tab.send({"type": "session.stop"})
        tab.wait_state("stopped")
    finally:
        tab.close()
    assert served.errors() == []


def test_sigterm_with_live_tabs_drains_cleanly(request, emulator):
    served = serve(request, {**upstream_env(emulator), "VOICEBRIDGE_DRAIN_SECONDS": "5", "VOICEBRIDGE_WORKERS": "2"})
    before = open_sessions(emulator)
    tabs = [Tab(served.app.url) for _ in range(4)]
    for tab in tabs:
        tab.start()
        tab.wait_state("ready")
    assert emulator.wait_until(lambda: len(open_sessions(emulator) - before) == 4)
    served.app.signal(signal.SIGTERM)
    for tab in tabs:
        tab.wait_state("reconnecting")
    assert [tab.wait_closed() for tab in tabs] == [1012] * 4
    assert served.app.wait(timeout=20) == 0
    assert not (open_sessions(emulator) - before)
    log = served.log.read_text()
    assert "event=drain.done clean=True" in log and "clean=False" not in log
    assert served.errors() == []


def test_ctrl_c_with_an_open_tab_stops_without_a_kill(request, emulator):
    served = serve(request, {**upstream_env(emulator), "VOICEBRIDGE_WORKERS": "2"})
    before = open_sessions(emulator)
    tab = Tab(served.app.url)
    tab.start()
    tab.wait_state("ready")
    served.app.signal(signal.SIGINT)
    # Today's graceful timeout is 15 s, after which gunicorn kills the worker: this waits less.
    assert served.app.wait(timeout=10) == 0
    tab.wait_closed(timeout=5)  # the socket ends with the process (no drain: Ctrl-C means now)
    assert tab.states()[-1] == "stopped", "the tab is told its session ended before the socket goes"
    assert emulator.wait_until(lambda: not (open_sessions(emulator) - before))
    assert "SIGKILL" not in served.log.read_text()
    assert served.errors() == []


def test_a_cancelled_upstream_connect_leaves_no_unclosed_session(request):
    """The tab leaves while Voice Live has not answered the handshake yet: the SDK's aiohttp session
    must still be closed (it logged "Unclosed client session" at ERROR)."""
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)  # accepts TCP (the kernel does) and never answers the upgrade
    try:
        served = serve(request, {
            "AZURE_VOICE_LIVE_ENDPOINT": f"http://127.0.0.1:{hung.getsockname()[1]}",
            "AZURE_VOICE_LIVE_API_KEY": "test-key",
            "VOICEBRIDGE_WORKERS": "1",
        })
        tab = Tab(served.app.url)
        tab.start()
        tab.wait_state("connecting")
        tab.close()
        # A second one is still connecting when the server stops.
        other = Tab(served.app.url)
        other.start()
        other.wait_state("connecting")
        served.app.signal(signal.SIGINT)
        assert served.app.wait(timeout=10) == 0
        log = served.log.read_text()
        assert "Unclosed client session" not in log and "Unclosed connector" not in log
        assert served.errors() == []
    finally:
        hung.close()
