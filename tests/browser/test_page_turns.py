"""What the page shows of a conversation is what happened (issue 22), in a real Chromium on the real app
and the emulator: a typed interruption keeps every message at the place it began (on the page, in
sessionStorage, after a reload and in the history the next session is told), a typed turn's latency is
measured from its send, a reply cut by a reload or a lost connection keeps its text and says it was cut,
the server's own wording (hosts, credentials) never reaches the page, and the server's newer messages
(`upstream_busy` while connecting, `reply_failed` in a session) are shown for what they are."""

from __future__ import annotations

import signal

import pytest
from benchmarks.browser import RAW_MIC
from test_page import TIMEOUT_MS, new_sessions, start, wait_state
from test_page_access import LONG
from test_page_continuity import replayed, shown

from support import apps
from support.page import Wire

pytestmark = pytest.mark.browser


def send(page, text: str) -> None:
    box = page.get_by_role("textbox", name="Type a message")
    box.fill(text)
    box.press("Enter")


def replying(page) -> None:
    """The assistant is speaking and some of its words are on the page."""
    wait_state(page, "speaking")
    page.wait_for_selector(".turn.assistant[data-final=false] p:not(:empty)", timeout=TIMEOUT_MS)


def heard_some(page, ms: int = 600) -> None:
    """The server has been told that `ms` of the reply were heard, so a cut keeps its first words (with
    nothing heard yet it is cut to nothing: tests/js/conversation.test.mjs covers that case)."""
    page.wait_for_function(
        "ms => window.voicebridge.reports.some((r) => r.played_ms >= ms)", arg=ms, timeout=TIMEOUT_MS
    )


def test_a_typed_interruption_keeps_the_order_through_a_reload(launch, app, emulator, wavs):
    page = launch(app.url + RAW_MIC, wavs["quiet"])
    start(page)
    send(page, LONG)
    replying(page)
    heard_some(page)
    send(page, "Stop, a question instead.")
    page.wait_for_selector(".turn.assistant[data-final=true]:not([data-interrupted])", timeout=TIMEOUT_MS)
    wait_state(page, "ready")
    before = shown(page)
    assert [role for role, _ in before] == ["user", "assistant", "user", "assistant"], before
    assert before[0][1] == LONG and before[2][1] == "Stop, a question instead."
    assert before[1][1], "the interrupted reply keeps the words that were heard"
    assert page.locator(".turn.assistant").first.get_attribute("data-interrupted") == "true"

    page.reload()
    assert shown(page) == before, "the reload shows the conversation in the order it happened"
    assert page.locator(".turn.assistant").first.get_attribute("data-interrupted") == "true"
    old = {s.id for s in emulator.sessions()}
    page.get_by_role("button", name="Start session").click()
    wait_state(page, "ready")
    (fresh,) = new_sessions(emulator, old)
    assert replayed(fresh) == before, "the next session is told the conversation in that order"


def test_a_typed_turn_is_timed_from_its_send(launch, app, wavs):
    # First a spoken turn, so the microphone's last voice is long before the typed message.
    page = launch(app.url + RAW_MIC, wavs["turn"])
    start(page)
    page.wait_for_function("() => window.voicebridge.turns.length === 1", timeout=TIMEOUT_MS)
    wait_state(page, "ready")
    page.wait_for_function("() => window.voicebridge.stats.samplesQueued === 0", timeout=TIMEOUT_MS)

    sent_after = page.evaluate("Date.now()")
    send(page, "Hello from the keyboard")
    page.wait_for_function("() => window.voicebridge.turns.length === 2", timeout=TIMEOUT_MS)
    seen_by = page.evaluate("Date.now()")
    turn = page.evaluate("window.voicebridge.turns.at(-1)")
    # The figure spans from the send to the first reply sample heard: where it starts lies between the
    # moments the test saw just before the send and just after the reply's turn appeared.
    assert turn.get("responseMs") is not None, turn
    since = turn.get("heardAt", 0) - turn["responseMs"]
    assert sent_after <= since <= seen_by, (turn, sent_after, seen_by)
    assert turn["typed"] is True
    assert sent_after <= turn["heardAt"] - turn["responseMs"], (turn, sent_after)
    assert page.locator("#lat-response").inner_text() == f"{round(turn['responseMs']):,} ms"  # English grouping


def test_a_reply_cut_by_a_lost_connection_or_a_reload_keeps_its_text_and_mark(launch, app, wavs):
    wire = Wire()
    page = launch(app.url + RAW_MIC, wavs["quiet"], route_ws=wire)
    start(page)
    send(page, LONG)
    replying(page)
    wire.hold()  # nothing more of the reply reaches the page: the connection is gone
    wire.servers[0].close(code=4000, reason="network blip")
    cut = page.locator(".turn.assistant").first
    page.wait_for_function(
        "() => document.querySelector('.turn.assistant')?.dataset.interrupted === 'true'", timeout=TIMEOUT_MS
    )
    assert cut.get_attribute("data-final") == "true", "no longer shown as still arriving"
    wire.drop()
    wait_state(page, "ready")

    # F5 while the next reply plays: it stays, marked as cut there.
    send(page, LONG)
    replying(page)
    text = page.locator(".turn.assistant").nth(1).locator("p").inner_text()
    assert text.strip()
    page.reload()
    assert page.locator(".turn.assistant").count() == 2, "the reply playing during the reload is still shown"
    kept = page.locator(".turn.assistant").nth(1)
    assert kept.locator("p").inner_text().startswith(text)
    assert kept.get_attribute("data-interrupted") == "true"


def test_upstream_busy_shows_the_wait_while_connecting(launch, app, wavs):
    wire = Wire()
    wire.hold()  # the server's own frames (its `ready`) wait until the test has looked
    page = launch(app.url + RAW_MIC, wavs["quiet"], route_ws=wire)
    page.get_by_role("button", name="Start session").click()
    # The page's session.start went out on the routed socket; the server's answer is held.
    page.wait_for_function("() => document.body.dataset.state === 'connecting'", timeout=TIMEOUT_MS)
    wire.wait_connected(page, TIMEOUT_MS)
    wire.to_page({"type": "warning", "code": "upstream_busy", "seconds": 12, "message": "All lines are busy."})
    page.wait_for_function(
        "() => document.getElementById('state-hint').textContent === 'Waiting for a free line — about 12 seconds'",
        timeout=TIMEOUT_MS,
    )
    assert page.evaluate("document.body.dataset.state") == "connecting"
    assert page.evaluate("document.body.dataset.waiting") == "true"
    assert page.evaluate("getComputedStyle(document.querySelector('.orb span')).animationName") == "none"
    assert page.get_by_role("alert").is_hidden()
    # A repeated `connecting` keeps the wait on screen; the next one updates it.
    wire.to_page({"type": "state", "state": "connecting"})
    wire.to_page({"type": "warning", "code": "upstream_busy", "seconds": 5, "message": "All lines are busy."})
    page.wait_for_function(
        "() => document.getElementById('state-hint').textContent.endsWith('about 5 seconds')", timeout=TIMEOUT_MS
    )

    wire.release()
    wait_state(page, "ready")
    assert page.locator("#state-hint").inner_text() == "Go ahead and speak."
    assert page.evaluate("document.body.dataset.waiting") is None

    # A warning code this page does not know: its message, politely, and the session goes on.
    wire.to_page({"type": "warning", "code": "something_new", "seconds": 1, "message": "Heads up: something new."})
    page.locator("#notice[data-code=something_new]").wait_for(timeout=TIMEOUT_MS)
    assert page.locator("#notice").inner_text() == "Heads up: something new."
    assert page.get_by_role("alert").is_hidden() and page.evaluate("document.body.dataset.state") == "ready"


def test_reply_failed_is_a_notice_and_the_session_goes_on(launch, app, wavs):
    wire = Wire()
    page = launch(app.url + RAW_MIC, wavs["quiet"], route_ws=wire)
    start(page)
    send(page, "First question")
    page.wait_for_selector(".turn.assistant[data-final=true]", timeout=TIMEOUT_MS)
    wait_state(page, "ready")

    internal = "Voice Live at vl-internal-7.cognitiveservices.azure.com refused the response (managed identity)"
    wire.to_page({"type": "error", "code": "reply_failed", "message": internal})
    wire.to_page({"type": "state", "state": "ready"})
    notice = page.locator("#notice[data-code=reply_failed]")
    notice.wait_for(timeout=TIMEOUT_MS)
    assert notice.inner_text() == "The assistant could not answer that. Say or type it again."
    assert page.get_by_role("alert").is_hidden(), "not a problem that ends the session"
    assert "vl-internal-7" not in page.locator("body").inner_text()
    assert page.evaluate("document.body.dataset.state") == "ready"

    send(page, "Second question")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.turn.assistant[data-final=true] p')]"
        ".some((p) => p.textContent === 'You wrote: Second question')",
        timeout=TIMEOUT_MS,
    )


def test_the_page_names_no_host_and_no_credential(launch, app, emulator, wavs, request):
    # Nothing listens at this endpoint: the server's error names the host it tried.
    port = apps.free_port()
    unreachable = apps.start_app(
        request, {"AZURE_VOICE_LIVE_ENDPOINT": f"http://127.0.0.1:{port}", "AZURE_VOICE_LIVE_API_KEY": "test-key"}
    )
    page = launch(unreachable.url + RAW_MIC, wavs["quiet"])
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    page.get_by_role("button", name="Start session").click()
    wait_state(page, "error")
    alert = page.get_by_role("alert")
    assert alert.get_attribute("data-code") == "upstream_unavailable"
    assert alert.inner_text().startswith("The voice service is unreachable")
    text = page.locator("body").inner_text()
    assert "127.0.0.1" not in text and str(port) not in text, text
    assert any(str(port) in line for line in console), "the server's detail is in the console log"
    assert page.get_by_role("button", name="Start session").is_enabled()

    # Rejected credentials: the page says whose problem it is, never which credential or where.
    emulator.update_config(reject_auth=True)
    try:
        page = launch(app.url + RAW_MIC, wavs["quiet"])
        page.on("console", lambda m: console.append(m.text))
        page.get_by_role("button", name="Start session").click()
        wait_state(page, "error")
    finally:
        emulator.update_config(reject_auth=False)
    alert = page.get_by_role("alert")
    assert alert.get_attribute("data-code") == "upstream_auth"
    text = page.locator("body").inner_text()
    for secret in ("127.0.0.1", str(emulator.port), "API key", "Key Vault", "managed identity"):
        assert secret not in text, (secret, text)


def test_after_ctrl_c_the_page_says_start_continues(launch, emulator, wavs, request):
    server = apps.start_app(
        request, {"AZURE_VOICE_LIVE_ENDPOINT": f"http://127.0.0.1:{emulator.port}", "AZURE_VOICE_LIVE_API_KEY": "k"}
    )
    page = launch(server.url + RAW_MIC, wavs["quiet"])
    start(page)
    send(page, "Hello before the server stops")
    page.wait_for_selector(".turn.assistant[data-final=true]", timeout=TIMEOUT_MS)
    server.signal(signal.SIGINT)  # Ctrl-C: the server closes its sessions and exits
    server.wait(timeout=15)
    page.wait_for_function("() => ['stopped', 'error'].includes(document.body.dataset.state)", timeout=TIMEOUT_MS)
    alert = page.get_by_role("alert")
    assert "Press Start session to continue the conversation." in alert.inner_text()
    assert "begin a new" not in alert.inner_text(), "Start continues the kept conversation, it does not begin anew"
    assert [role for role, _ in shown(page)] == ["user", "assistant"]
