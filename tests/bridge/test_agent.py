"""Agent mode end to end (issue 25): the real app connects with the real SDK's agent parameters to the
emulator, which plays the service's agent mode (the parameters in the handshake's query, a conversation
id of its own, instructions refused). Continuity uses the agent conversation, not the transcript replay.
"""

from __future__ import annotations

import pytest
from test_continuity import ready_tab, token_of, turn

from support.apps import start_app
from support.upstreams import emulator_env, new_upstream, record, upstream_ids


@pytest.fixture(scope="module")
def app(request, emulator):
    return start_app(request, emulator_env(
        emulator,
        VOICE_LIVE_AGENT_NAME="support-agent",
        VOICE_LIVE_AGENT_PROJECT="contoso-project",
        VOICE_LIVE_AGENT_VERSION="2",
        VOICEBRIDGE_RECONNECT_SECONDS="10",
    ))


def conversation_of(rec) -> str:
    return rec.config["agent"]["thread_id"]


def items_created(rec) -> list[dict]:
    return [ev["item"] for ev in rec.events_received if ev.get("type") == "conversation.item.create"]


def test_the_bridge_connects_to_the_agent_and_sends_no_instructions(tabs, emulator):
    known = upstream_ids(emulator)
    tab = ready_tab(tabs)
    upstream = new_upstream(emulator, known)
    assert upstream.model is None, "the agent brings its model: none is named"
    assert upstream.config["agent"]["name"] == "support-agent"
    assert upstream.config["agent"]["agent_id"] == "support-agent:2"
    (update,) = [ev for ev in upstream.events_received if ev.get("type") == "session.update"]
    assert "instructions" not in update["session"] and "tools" not in update["session"]
    turn(tab, seed=51)
    assert tab.of_type("error") == []


def test_a_lost_upstream_continues_the_same_agent_conversation_without_a_replay(tabs, emulator):
    known = upstream_ids(emulator)
    tab = ready_tab(tabs)
    first = new_upstream(emulator, known)
    turn(tab, seed=52)
    turn(tab, seed=53)
    mark = tab.mark()
    emulator.drop(first.id)
    tab.wait_state("reconnecting", start=mark)
    tab.wait_state("ready", 15, mark)
    second = new_upstream(emulator, known | {first.id})
    assert conversation_of(second) == conversation_of(first), "the reconnect must continue the agent conversation"
    assert items_created(second) == [], "the agent remembers: nothing is replayed"
    turn(tab, seed=54)


def test_a_resumed_tab_keeps_the_agent_conversation_across_a_later_reconnect(tabs, emulator):
    known = upstream_ids(emulator)
    first_tab = ready_tab(tabs)
    token = token_of(first_tab)
    first = new_upstream(emulator, known)
    turn(first_tab, seed=55)
    first_tab.close()  # the socket just ends: the session parks

    tab = tabs()
    tab.send({"type": "session.resume", "resume": token})
    tab.wait_state("ready")
    assert upstream_ids(emulator) == known | {first.id}, "a resume keeps the same upstream"
    mark = tab.mark()
    emulator.drop(first.id)
    tab.wait_state("ready", 15, mark + 1)
    second = new_upstream(emulator, known | {first.id})
    assert conversation_of(second) == conversation_of(first)
    assert items_created(second) == []
    assert record(emulator, first.id).config["agent"]["thread_id"].startswith("conv")


def test_a_new_session_starts_a_new_agent_conversation(tabs, emulator):
    known = upstream_ids(emulator)
    ready_tab(tabs)
    one = new_upstream(emulator, known)
    ready_tab(tabs)
    other = new_upstream(emulator, known | {one.id})
    assert conversation_of(one) != conversation_of(other)
