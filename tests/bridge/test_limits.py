"""Who may talk, and how much (issue 13), over real sockets with the real SDK against the emulator.

Each limit is set small (1–2 s, one or two sessions) and every test waits for the message the limit
sends, never for time. The trust rules: a header counts only when the app is told to trust it, so a
forged one changes nothing; another peer address (127.0.0.2 — loopback answers for all of 127/8) is
another user.
"""

from __future__ import annotations

import base64
import re
import urllib.request

import pytest
from websockets.exceptions import InvalidStatus

from support.apps import ARTIFACTS, AppProcess, http_get
from support.audio import silence
from support.tab import Tab

PRINCIPAL = "X-MS-CLIENT-PRINCIPAL-ID"
NAME = "X-MS-CLIENT-PRINCIPAL-NAME"
XFF = "X-Forwarded-For"


def launch(request, emulator, label: str, **env: str) -> AppProcess:
    ARTIFACTS.mkdir(exist_ok=True)
    app = AppProcess(
        {
            "AZURE_VOICE_LIVE_ENDPOINT": f"http://127.0.0.1:{emulator.port}",
            "AZURE_VOICE_LIVE_API_KEY": "test-key",
            "VOICEBRIDGE_RESUME_SECONDS": "0",
            **env,
        },
        log_path=ARTIFACTS / f"app-limits-{label}.log",
    )
    request.addfinalizer(app.stop)
    return app


@pytest.fixture(scope="module")
def untrusting(request, emulator) -> AppProcess:
    """Default trust (none), one session per signed-in user, two per address."""
    return launch(request, emulator, "untrusting", VOICEBRIDGE_MAX_SESSIONS_PER_USER="1",
                  VOICEBRIDGE_MAX_SESSIONS_PER_ADDRESS="2")


@pytest.fixture(scope="module")
def trusting(request, emulator) -> AppProcess:
    """Behind App Service with sign-in: both kinds of header trusted; one session per user, per address."""
    return launch(request, emulator, "trusting", VOICEBRIDGE_TRUST_EASY_AUTH="true", VOICEBRIDGE_TRUST_FORWARDED="true",
                  VOICEBRIDGE_MAX_SESSIONS_PER_USER="1", VOICEBRIDGE_MAX_SESSIONS_PER_ADDRESS="1")


@pytest.fixture
def opened():
    tabs: list[Tab] = []

    def open_tab(app: AppProcess, headers: dict[str, str] | None = None, source: str | None = None) -> Tab:
        tab = Tab(app.url, headers, source)
        tabs.append(tab)
        return tab

    yield open_tab
    for tab in tabs:
        tab.close()


def started(tab: Tab) -> Tab:
    tab.start()
    tab.wait_state("ready")
    return tab


def refused(tab: Tab, emulator) -> dict:
    """session.start is refused for this user: the error, state `stopped`, and no upstream session opened."""
    before = len(emulator.sessions())
    mark = tab.mark()
    tab.start()
    error = tab.wait_for(lambda m: m["type"] == "error", start=mark)
    assert error["code"] == "too_many_sessions_for_user", tab.summary()
    tab.wait_state("stopped", start=mark)
    assert "connecting" not in tab.states()[mark:], "a refused start must not begin connecting"
    assert len(emulator.sessions()) == before, "no upstream session may be opened for a refused start"
    return error


# --- who a tab is -----------------------------------------------------------------------------------


def test_forged_identity_headers_change_nothing(untrusting, emulator, opened):
    # Four different principals and forwarded addresses, all from one peer: untrusted, the headers are
    # ignored and all four are the one address 127.0.0.1 (limit 2). Were the principal trusted, each
    # would be a user of its own (limit 1 each, all admitted); were X-Forwarded-For trusted, likewise.
    forged = [{PRINCIPAL: f"user-{n}", NAME: f"user{n}@example.com", XFF: f"203.0.113.{n}"} for n in range(4)]
    started(opened(untrusting, forged[0]))
    started(opened(untrusting, forged[1]))
    error = refused(opened(untrusting, forged[2]), emulator)
    assert "address" in error["message"]
    # The same principal twice would have met the per-user limit of 1: untrusted, it did not.
    # Another peer address is another user.
    started(opened(untrusting, forged[3], source="127.0.0.2"))


def page(app: AppProcess, headers: dict[str, str]) -> str:
    with urllib.request.urlopen(urllib.request.Request(app.url + "/", headers=headers), timeout=5) as response:
        return response.read().decode()


def test_a_forged_principal_name_is_not_shown(untrusting):
    body = page(untrusting, {PRINCIPAL: "mallory", NAME: "mallory@example.com"})
    assert "mallory" not in body and 'id="signed-in"' not in body


def test_a_session_that_ends_frees_its_place(untrusting, emulator, opened):
    first = started(opened(untrusting))
    started(opened(untrusting))
    third = opened(untrusting)
    refused(third, emulator)
    mark = first.mark()
    first.stop()
    first.wait_state("stopped", start=mark)
    started(third)


def test_a_closed_tab_frees_its_place(untrusting, emulator, opened):
    first = started(opened(untrusting))
    started(opened(untrusting))
    refused(opened(untrusting), emulator)
    known = {r.id for r in emulator.sessions() if r.open}
    first.close()
    assert emulator.wait_until(lambda: sum(1 for r in emulator.sessions() if r.id in known and not r.open) == 1)
    started(opened(untrusting))


def test_a_signed_in_user_is_counted_by_principal(trusting, emulator, opened):
    alice = {PRINCIPAL: "3f2504e0-4f89-11d3-9a0c-0305e82c3301", NAME: "alice@example.com", XFF: "198.51.100.1"}
    started(opened(trusting, alice))
    error = refused(opened(trusting, alice), emulator)
    assert "You already have 1 session open" in error["message"]
    # Bob, from the same address (one place behind a NAT): his own principal, his own limit.
    started(opened(trusting, {PRINCIPAL: "bob", XFF: "198.51.100.1"}))


def test_the_page_shows_who_is_signed_in(trusting):
    body = page(trusting, {PRINCIPAL: "alice", NAME: "alice@example.com"})
    assert re.search(r'id="signed-in"[^>]*>Signed in as <b>alice@example.com</b>', body)
    plain = http_get(trusting.url + "/", timeout=5)[1].decode()
    assert 'id="signed-in"' not in plain


def test_a_trusted_forwarded_address_is_the_key(trusting, emulator, opened):
    # No principal (sign-in off): the entry the front end appended (the last), port ignored. The test plays
    # the front end: what comes before its entry is whatever the client sent, forged to look like others.
    started(opened(trusting, {XFF: "10.0.0.4, 192.0.2.10"}))
    refused(opened(trusting, {XFF: "192.0.2.10:51234"}), emulator)
    refused(opened(trusting, {XFF: "198.51.100.77, 192.0.2.10:51235"}), emulator)
    started(opened(trusting, {XFF: "192.0.2.10, 192.0.2.11"}))


def upgrade_status(app: AppProcess, headers: dict[str, str]) -> int:
    """The status of a /ws upgrade carrying `headers` (101: accepted)."""
    try:
        Tab(app.url, headers).close()
        return 101
    except InvalidStatus as exc:
        return exc.response.status_code


def test_a_forged_forwarded_scheme_does_not_make_another_origin_ours(untrusting, trusting):
    # The page here is http://127.0.0.1:port. A page at https://127.0.0.1:port is another origin; only a
    # trusted front end (App Service terminating TLS) may say the browser's scheme was https.
    for app in (untrusting, trusting):
        host = f"127.0.0.1:{app.port}"
        assert upgrade_status(app, {"Origin": f"http://{host}"}) == 101
        assert upgrade_status(app, {"Origin": f"https://{host}"}) == 403
    forged = {"Origin": f"https://127.0.0.1:{untrusting.port}", "X-Forwarded-Proto": "https"}
    assert upgrade_status(untrusting, forged) == 403
    behind_tls = {"Origin": f"https://127.0.0.1:{trusting.port}", "X-Forwarded-Proto": "https"}
    assert upgrade_status(trusting, behind_tls) == 101


# --- time, idle, audio rate -----------------------------------------------------------------------------


def ended_by(tab: Tab, code: str, emulator, before: set[str]) -> None:
    """The limit's error, then state `stopped` (not `error`), and every upstream this tab opened closed."""
    error = tab.wait_for(lambda m: m["type"] == "error", timeout=15)
    assert error["code"] == code, tab.summary()
    tab.wait_state("stopped")
    assert "error" not in tab.states(), "a limit stops the session; it is not a failure"
    assert emulator.wait_until(lambda: not any(r.open for r in emulator.sessions() if r.id not in before), timeout=10)


def test_the_session_time_limit_warns_then_ends_the_session(request, emulator):
    app = launch(request, emulator, "time", VOICEBRIDGE_MAX_SESSION_SECONDS="1", VOICEBRIDGE_IDLE_SECONDS="0")
    tab = Tab(app.url)
    request.addfinalizer(tab.close)
    before = {r.id for r in emulator.sessions()}
    tab.start()
    # A limit under a minute is announced at once, with what is left of it.
    warning = tab.wait_for(lambda m: m["type"] == "warning")
    assert warning["code"] == "session_time_limit" and warning["seconds"] == 1 and warning["message"]
    ended_by(tab, "session_time_limit", emulator, before)
    # The tab may start again: the limit is per session.
    mark = tab.mark()
    tab.start()
    tab.wait_state("ready", start=mark)


def test_an_idle_session_ends(request, emulator):
    app = launch(request, emulator, "idle", VOICEBRIDGE_IDLE_SECONDS="1")
    tab = Tab(app.url)
    request.addfinalizer(tab.close)
    before = {r.id for r in emulator.sessions()}
    tab.start()
    ended_by(tab, "idle_timeout", emulator, before)


def test_audio_beyond_real_time_is_not_forwarded_and_the_session_goes_on(request, emulator):
    app = launch(request, emulator, "rate", VOICEBRIDGE_MAX_AUDIO_RATE="1.5")
    tab = Tab(app.url)
    request.addfinalizer(tab.close)
    known = {r.id for r in emulator.sessions()}
    started(tab)
    (upstream,) = [r for r in emulator.sessions() if r.id not in known]
    # 20 s of (silent) audio in 1 s messages, as fast as the socket takes them; far beyond 2 s + 1.5 s/s for
    # anything but a 12-second send.
    second = base64.b64encode(silence(1000)).decode()
    for _ in range(20):
        tab.send({"type": "audio", "data": second})
    tab.send({"type": "nonsense"})  # answered in order: every audio message before it has been handled
    tab.wait_for(lambda m: m.get("code") == "unknown_type")
    codes = [m["code"] for m in tab.of_type("error")]
    assert codes.count("audio_rate") == 1, codes
    # More of it is not reported again; the session goes on and still answers.
    for _ in range(5):
        tab.send({"type": "audio", "data": second})
    mark = tab.mark()
    tab.send({"type": "text", "text": "still there?"})
    tab.wait_for(lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"], 15, mark)
    assert [m["code"] for m in tab.of_type("error")].count("audio_rate") == 1
    assert "stopped" not in tab.states()
    received = next(r for r in emulator.sessions() if r.id == upstream.id).audio_received
    assert len(received) < 20 * len(silence(1000)), "audio beyond the rate must not reach Voice Live"


def test_audio_at_real_time_is_never_cut(request, emulator):
    # The allowance: a burst of 2 s (a microphone's backlog after a stall) goes through whole.
    app = launch(request, emulator, "rate-ok", VOICEBRIDGE_MAX_AUDIO_RATE="1.5")
    tab = Tab(app.url)
    request.addfinalizer(tab.close)
    started(tab)
    tab.send({"type": "audio", "data": base64.b64encode(silence(1900)).decode()})
    tab.send({"type": "nonsense"})
    tab.wait_for(lambda m: m.get("code") == "unknown_type")
    assert "audio_rate" not in [m["code"] for m in tab.of_type("error")]


# --- a parked session and its user ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def resumable(request, emulator) -> AppProcess:
    """Signed in, resume on, one session per user."""
    return launch(request, emulator, "resume", VOICEBRIDGE_TRUST_EASY_AUTH="true", VOICEBRIDGE_RESUME_SECONDS="30",
                  VOICEBRIDGE_MAX_SESSIONS_PER_USER="1")


def test_a_parked_session_counts_for_its_user_and_resumes_for_that_user_only(resumable, emulator, opened):
    ann, eve = {PRINCIPAL: "ann"}, {PRINCIPAL: "eve"}
    first = started(opened(resumable, ann))
    token = first.wait_for(lambda m: m["type"] == "session")["resume"]
    first.ws.close()  # the socket drops without session.stop: the session is parked, its upstream open
    # Parked, it still holds a paid upstream: Ann's next start is refused...
    refused(opened(resumable, ann), emulator)
    # ...another user cannot take it over with the token, and trying leaves the token valid...
    thief = opened(resumable, eve)
    thief.send({"type": "session.resume", "resume": token})
    assert thief.wait_for(lambda m: m["type"] == "error")["code"] == "resume_expired"
    # ...and Ann resumes it (no new upstream, so no admission), from anywhere.
    back = opened(resumable, ann, source="127.0.0.3")
    before = len(emulator.sessions())
    back.send({"type": "session.resume", "resume": token})
    back.wait_state("ready")
    assert len(emulator.sessions()) == before
