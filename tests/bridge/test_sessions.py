"""The bridge end to end: real app process, real SDK, real emulator, real sockets (issue 2 §4)."""

from __future__ import annotations

import base64

import pytest

from support.apps import http_get
from support.audio import silence, speech

TURN_STATES = ["listening", "processing", "speaking", "ready"]


def ready_tab(tabs):
    tab = tabs()
    tab.start()
    tab.wait_state("ready")
    return tab


def one_turn(tab, seed: int = 1, ms: int = 700):
    said = speech(ms, seed=seed)
    tab.speak(silence(200) + said + silence(900))
    return said


def test_turn_passes_through_the_states_in_order(tabs):
    tab = ready_tab(tabs)
    mark = tab.mark()
    one_turn(tab)
    tab.wait_state("ready", timeout=15, start=mark + 1)
    after = [m["state"] for m in tab.messages[mark:] if m["type"] == "state"]
    assert after == TURN_STATES
    assert tab.states()[:2] == ["connecting", "ready"]


def test_assistant_audio_is_relayed_byte_exact_and_in_order(tabs, emulator):
    tab = ready_tab(tabs)
    said = one_turn(tab, seed=7)
    mark_done = tab.wait_for(lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"], 15)
    item_id = mark_done["item_id"]
    heard = tab.audio(item_id)
    # The emulator echoes the utterance, so what reached the tab must be one unbroken run of what was
    # said: a lost, duplicated or reordered 100 ms delta of non-repeating noise breaks that.
    assert len(heard) >= len(said) // 2
    sent = emulator.sessions()[-1].audio_received
    assert heard in sent
    response = [r for s in emulator.sessions() for r in s.responses if r["item_id"] == item_id][0]
    assert response["audio_bytes_sent"] == len(heard)


def test_both_transcripts_reach_the_tab(tabs):
    tab = ready_tab(tabs)
    one_turn(tab)
    user = tab.wait_for(lambda m: m["type"] == "transcript" and m["role"] == "user" and m["final"], 15)
    final = tab.wait_for(lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"], 15)
    partials = [m["text"] for m in tab.of_type("transcript") if m["role"] == "assistant" and not m["final"]]
    assert user["text"]
    assert partials and "".join(partials) == final["text"]


def test_two_tabs_are_isolated(tabs, emulator):
    first, second = ready_tab(tabs), ready_tab(tabs)
    said_first = speech(600, seed=11)
    said_second = speech(900, seed=12)
    sent_first = silence(100) + said_first + silence(900)
    sent_second = silence(100) + said_second + silence(900)
    first.speak(sent_first)
    second.speak(sent_second)
    done = {}
    for name, tab in (("first", first), ("second", second)):
        done[name] = tab.wait_for(lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"], 15)
    heard_first = first.audio()
    heard_second = second.audio()
    assert heard_first and heard_second
    assert heard_first in sent_first and heard_first not in sent_second
    assert heard_second in sent_second and heard_second not in sent_first
    assert {m["item_id"] for m in first.of_type("audio")}.isdisjoint({m["item_id"] for m in second.of_type("audio")})


def barge_in(tab, report_ms: int | None):
    """Start a reply, let ~300 ms of it arrive, then talk over it."""
    one_turn(tab, seed=21, ms=1500)
    tab.wait_state("speaking", timeout=15)
    first = tab.wait_for(lambda m: m["type"] == "audio")
    item_id = first["item_id"]
    tab.wait_for(lambda m: m["type"] == "audio" and len(tab.audio(item_id)) >= 300 * 48, 10)
    if report_ms is not None:
        tab.report(item_id, report_ms // 2)  # a periodic report before the interruption
    mark = tab.mark()
    tab.speak(speech(600, seed=22))
    clear = tab.wait_for(lambda m: m["type"] == "audio.clear", 5, start=mark)
    clear_at = tab.messages.index(clear)
    if report_ms is not None:
        tab.report(item_id, report_ms)  # what the tab played when it flushed
    return item_id, clear_at


def test_barge_in_clears_drops_and_truncates_at_what_was_played(tabs, emulator):
    tab = ready_tab(tabs)
    item_id, clear_at = barge_in(tab, report_ms=250)
    tab.wait_state("listening", start=clear_at)
    assert emulator.wait_until(lambda: any(t["item_id"] == item_id for s in emulator.sessions() for t in s.truncations))
    truncation = [t for s in emulator.sessions() for t in s.truncations if t["item_id"] == item_id][0]
    assert truncation["audio_end_ms"] == 250
    later = [m for m in tab.messages[clear_at:] if m["type"] == "audio" and m["item_id"] == item_id]
    assert later == [], "audio of the interrupted reply reached the tab after audio.clear"
    # The benign 'no active response' error the service returns for the cancel must stay internal.
    tab.speak(silence(900))
    tab.wait_state("speaking", timeout=15, start=clear_at)
    assert tab.of_type("error") == []


def test_truncation_uses_the_flush_report_not_an_older_one_still_in_flight(tabs, emulator):
    """A periodic report the tab sent before it saw audio.clear can reach the bridge after the clear; the
    truncation must use the report marked `cleared` (what was played at the flush)."""
    tab = ready_tab(tabs)
    item_id, _ = barge_in(tab, report_ms=None)
    tab.report(item_id, 100)  # sent before the tab saw the clear
    # Frames are handled in order: the answer to this one shows the stale report has been handled.
    mark = tab.mark()
    tab.send({"type": "no.such.message"})
    tab.wait_for(lambda m: m["type"] == "error" and m["code"] == "unknown_type", start=mark)
    tab.send({"type": "playback", "item_id": item_id, "played_ms": 250, "cleared": True})
    assert emulator.wait_until(lambda: any(t["item_id"] == item_id for s in emulator.sessions() for t in s.truncations))
    truncation = [t for s in emulator.sessions() for t in s.truncations if t["item_id"] == item_id][0]
    assert truncation["audio_end_ms"] == 250


def test_barge_in_without_a_report_estimates_from_the_clock_within_what_was_sent(tabs, emulator):
    tab = ready_tab(tabs)
    item_id, clear_at = barge_in(tab, report_ms=None)
    assert emulator.wait_until(lambda: any(t["item_id"] == item_id for s in emulator.sessions() for t in s.truncations))
    truncation = [t for s in emulator.sessions() for t in s.truncations if t["item_id"] == item_id][0]
    sent_ms = len(tab.audio(item_id)) // 48
    assert 0 < truncation["audio_end_ms"] <= sent_ms


def test_upstream_error_reaches_the_tab_readably_and_the_session_continues(tabs, emulator):
    tab = ready_tab(tabs)
    session_id = [s.id for s in emulator.sessions() if s.open][-1]
    emulator.inject_error(code="server_error", message="The model had a hiccup.", session_id=session_id)
    error = tab.wait_for(lambda m: m["type"] == "error")
    assert error["code"] == "upstream_error"
    assert "The model had a hiccup." in error["message"]
    mark = tab.mark()
    one_turn(tab)
    tab.wait_state("speaking", timeout=15, start=mark)


def test_rejected_credentials_give_a_credentials_error_not_a_hang(tabs, emulator):
    emulator.update_config(required_key="another-key")
    try:
        tab = tabs()
        tab.start()
        error = tab.wait_for(lambda m: m["type"] == "error", timeout=10)
        tab.wait_state("error")
    finally:
        emulator.update_config(required_key=None)
    assert error["code"] == "upstream_auth"
    assert "credentials" in error["message"]
    assert "ready" not in tab.states()


def upstream_of(emulator, start):
    """Start a tab's session and return the id of the emulator session it opened."""
    known = {record.id for record in emulator.sessions()}
    start()
    found = []
    assert emulator.wait_until(lambda: found.extend(r.id for r in emulator.sessions() if r.open and r.id not in known) or found)
    return found[0]


def is_open(emulator, session_id):
    return any(record.open for record in emulator.sessions() if record.id == session_id)


def test_stop_releases_the_upstream_session_and_start_works_again(tabs, emulator):
    tab = tabs()
    first = upstream_of(emulator, tab.start)
    tab.wait_state("ready")
    tab.stop()
    tab.wait_state("stopped")
    assert emulator.wait_until(lambda: not is_open(emulator, first), timeout=2.0)
    mark = tab.mark()
    second = upstream_of(emulator, tab.start)
    tab.wait_state("ready", start=mark)
    assert second != first


def test_lost_upstream_reconnects_with_the_same_configuration(tabs, emulator):
    tab = ready_tab(tabs)
    session = [s for s in emulator.sessions() if s.open][-1]
    mark = tab.mark()
    emulator.drop(session.id)
    tab.wait_state("reconnecting", start=mark)
    tab.wait_state("ready", timeout=15, start=mark)
    replacement = [s for s in emulator.sessions() if s.open][-1]
    assert replacement.id != session.id
    assert replacement.config["turn_detection"] == session.config["turn_detection"]
    assert replacement.config["voice"] == session.config["voice"]
    mark = tab.mark()
    one_turn(tab)
    tab.wait_state("speaking", timeout=15, start=mark)


def test_malformed_frames_get_errors_and_never_disturb_a_neighbour(tabs, app):
    neighbour = ready_tab(tabs)
    rogue = tabs()
    rogue.send("this is not json")
    rogue.send({"type": "teleport"})
    rogue.send({"type": "audio", "data": "!!not base64!!"})
    rogue.send({"type": "audio", "data": base64.b64encode(b"\x01").decode()})
    rogue.send({"type": "playback", "item_id": "x", "played_ms": -5})
    rogue.send([1, 2, 3])
    rogue.ws.send(b"\x00\x01binary")
    rogue.send({"type": "audio", "data": base64.b64encode(bytes(960)).decode()})
    codes = [m["code"] for m in rogue.wait_count("error", 8)]
    assert codes == [
        "bad_json", "unknown_type", "bad_audio", "bad_audio", "bad_message", "bad_message", "bad_message", "not_started",
    ]
    rogue.send("x" * (1024 * 1024 + 10))
    assert rogue.wait_closed() == 1009
    mark = neighbour.mark()
    one_turn(neighbour)
    neighbour.wait_state("speaking", timeout=15, start=mark)
    assert neighbour.of_type("error") == []
    assert http_get(app.url + "/healthz")[0] == 200


def test_health_and_info_do_not_touch_voice_live(app, emulator):
    before = len(emulator.sessions())
    status, body = http_get(app.url + "/healthz")
    assert status == 200 and b'"ok"' in body
    status, body = http_get(app.url + "/api/info")
    assert status == 200 and b'"emulator":false' in body.replace(b" ", b"")
    assert len(emulator.sessions()) == before


def test_the_audio_socket_does_not_negotiate_compression(app):
    from websockets.sync.client import connect

    with connect(app.url.replace("http", "ws", 1) + "/ws", compression="deflate") as ws:
        assert "Sec-WebSocket-Extensions" not in ws.response.headers


def test_a_page_from_another_origin_cannot_open_the_socket(app):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    url = app.url.replace("http", "ws", 1) + "/ws"
    with pytest.raises(InvalidStatus) as refused:
        connect(url, origin="https://evil.example", open_timeout=5)
    assert refused.value.response.status_code == 403
    with connect(url, origin=app.url, open_timeout=5) as ws:  # the page's own origin
        ws.send('{"type":"nope"}')
        assert "unknown_type" in ws.recv(timeout=5)
