"""A tab's session lifecycle over real sockets: start and stop in any order end where the last one says."""

from __future__ import annotations


def open_upstreams(emulator, known: set[str]) -> list[str]:
    return [r.id for r in emulator.sessions() if r.open and r.id not in known]


def ready_tab(tabs, emulator):
    """A tab whose session is ready; returns it, the upstream ids before it, and its own upstream's id."""
    known = {r.id for r in emulator.sessions()}
    tab = tabs()
    tab.start()
    tab.wait_state("ready")
    (upstream,) = open_upstreams(emulator, known)
    return tab, known, upstream


def test_stop_start_stop_back_to_back_leaves_no_upstream_open(tabs, emulator):
    """Issue 10 (7): the last word is stop, so no upstream session may be open (or reopen) afterwards."""
    tab, known, first = ready_tab(tabs, emulator)
    mark = tab.mark()
    for kind in ("session.stop", "session.start", "session.stop"):
        tab.send({"type": kind})
    stopped = tab.messages.index(tab.wait_state("stopped", start=mark))
    # Anything the session does by itself after "stopped" reaches the tab before the answer to this.
    tab.send({"type": "nope"})
    tab.wait_for(lambda m: m.get("code") == "unknown_type", start=stopped)
    assert [m for m in tab.messages[stopped + 1 :] if m["type"] == "state"] == []
    assert emulator.wait_until(lambda: open_upstreams(emulator, known) == [], timeout=5)
    assert first not in open_upstreams(emulator, known)


def test_start_while_stopping_starts_a_fresh_session_once_the_old_one_closed(tabs, emulator):
    tab, known, first = ready_tab(tabs, emulator)
    mark = tab.mark()
    tab.stop()
    tab.start()
    tab.wait_state("ready", start=mark)
    assert tab.states()[-3:] == ["stopped", "connecting", "ready"]
    assert emulator.wait_until(lambda: len(open_upstreams(emulator, known)) == 1 and first not in open_upstreams(emulator, known))
