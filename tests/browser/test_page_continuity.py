"""The page keeps the conversation through a dropped socket, a server restart and a reload (issue 12).

Real Chromium, real page, real app, real emulator. What the new upstream session was told is read from
the emulator's record of the client events it received.
"""

from __future__ import annotations

import pytest
from benchmarks.browser import RAW_MIC
from playwright.sync_api import WebSocketRoute
from test_page import TIMEOUT_MS, new_sessions, start, wait_state

from support import apps

pytestmark = pytest.mark.browser
REMEMBERED = "Reconnected — the assistant remembers the conversation"


def replayed(record) -> list[tuple[str, str]]:
    return [
        (ev["item"]["role"], ev["item"]["content"][0]["text"])
        for ev in record.events_received
        if ev.get("type") == "conversation.item.create"
    ]


def shown(page) -> list[tuple[str, str]]:
    """The conversation as the page shows it: (role, text) of each final turn."""
    return [
        (turn.get_attribute("data-role"), turn.locator("p").inner_text())
        for turn in page.locator(".turn[data-final=true]").all()
    ]


def one_turn(page) -> None:
    page.wait_for_selector(".turn.user[data-final=true]", timeout=TIMEOUT_MS)
    page.wait_for_selector(".turn.assistant[data-final=true]", timeout=TIMEOUT_MS)
    wait_state(page, "ready")


def test_a_dropped_socket_is_resumed_on_the_same_upstream(launch, app, emulator, wavs):
    before = {s.id for s in emulator.sessions()}
    servers = []

    def through(route: WebSocketRoute) -> None:
        servers.append(route.connect_to_server())  # everything passes both ways untouched

    page = launch(app.url + RAW_MIC, wavs["turn"], route_ws=through)
    start(page)
    one_turn(page)
    (upstream,) = new_sessions(emulator, before)
    page.wait_for_function("() => window.voicebridge.state === 'ready'")

    # The network drops the socket (no session.stop): closing the server side is forwarded to the page.
    servers[0].close(code=4000, reason="network blip")
    page.wait_for_function("n => window.__states.slice(n).includes('reconnecting')", arg=0, timeout=TIMEOUT_MS)
    page.wait_for_function(
        "() => window.__states.at(-1) === 'ready' && window.__states.includes('reconnecting')", timeout=TIMEOUT_MS
    )
    assert len(servers) == 2, "the page opened one new socket"
    assert page.locator("#notice").inner_text() == REMEMBERED
    # The same upstream session goes on: no new Voice Live handshake, nothing replayed into it.
    assert [s.id for s in new_sessions(emulator, before)] == [upstream.id]
    assert next(s for s in emulator.sessions() if s.id == upstream.id).open
    assert replayed(next(s for s in emulator.sessions() if s.id == upstream.id)) == []
    assert page.get_by_role("alert").is_hidden()


def test_after_a_server_restart_the_next_session_carries_the_transcript(launch, emulator, wavs, request):
    deployments = apps.Deployments(request, emulator, "continuity")
    page = launch(deployments.current.url + RAW_MIC, wavs["turn"])
    start(page)
    one_turn(page)
    conversation = shown(page)
    assert [role for role, _ in conversation] == ["user", "assistant"]

    # A deploy: the instance drains (close 1012) and a new one comes up at the same address.
    deployments.drain()
    wait_state(page, "reconnecting")
    before = {s.id for s in emulator.sessions()}
    deployments.replace()

    wait_state(page, "ready")
    (fresh,) = new_sessions(emulator, before)
    assert replayed(fresh) == conversation
    assert page.locator("#notice").inner_text() == REMEMBERED
    assert shown(page) == conversation, "the page keeps showing the conversation"


# Every WebSocket the page opens is counted the moment it is made (the page makes one in a timer's callback).
COUNT_SOCKETS = """{
  window.__sockets = 0;
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      window.__sockets += 1;
    }
  };
}"""


def test_after_a_drain_the_page_waits_its_share_of_the_quota_time(launch, app, wavs):
    # A drain tells each tab how long the instance's tabs need to fit the voice service's connection
    # quota (issue 23); each waits a uniform random share of it. Math.random is 0.5 here, and the page's
    # clock is Playwright's, so "half of 600 s" is checked without waiting for it.
    tabs: list[WebSocketRoute] = []

    def through(route: WebSocketRoute) -> None:
        route.connect_to_server()
        tabs.append(route)

    def prepare(page) -> None:
        page.add_init_script(COUNT_SOCKETS)
        page.add_init_script("Math.random = () => 0.5;")
        page.clock.install()

    page = launch(app.url + RAW_MIC, wavs["turn"], route_ws=through, before_goto=prepare)
    start(page)
    wait_state(page, "ready")
    assert page.evaluate("window.__sockets") == 1
    page.clock.pause_at(page.evaluate("Date.now()") + 1000)

    tabs[0].send('{"type":"state","state":"reconnecting","reconnect_within_s":600}')
    tabs[0].close(code=1012, reason="service restart; reconnect within 600 s")
    wait_state(page, "reconnecting")
    page.clock.run_for(299_000)
    assert page.evaluate("window.__sockets") == 1, "the page waits its share, not the 0.5 s backoff"
    page.clock.run_for(2_000)
    assert page.evaluate("window.__sockets") == 2
    page.clock.resume()
    wait_state(page, "ready")


def test_after_a_reload_start_continues_the_conversation(launch, app, emulator, wavs):
    page = launch(app.url + RAW_MIC, wavs["turn"])
    start(page)
    one_turn(page)
    conversation = shown(page)

    page.reload()
    assert shown(page) == conversation, "the transcript survives the reload"
    before = {s.id for s in emulator.sessions()}
    page.get_by_role("button", name="Start session").click()
    wait_state(page, "ready")
    (fresh,) = new_sessions(emulator, before)
    assert replayed(fresh) == conversation
    assert page.locator("#notice").inner_text() == REMEMBERED

    # Stop is the one thing that forgets: the next Start begins a new conversation.
    page.get_by_role("button", name="Stop session").click()
    wait_state(page, "stopped")
    before = {s.id for s in emulator.sessions()}
    page.get_by_role("button", name="Start session").click()
    wait_state(page, "ready")
    (fresh,) = new_sessions(emulator, before)
    assert replayed(fresh) == []
    assert shown(page) == []
