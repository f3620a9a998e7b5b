"""MCP servers and approval in the page, end to end (issue 25): the real app, the real SDK, the emulator,
and a real MCP server (the `mcp` SDK over streamable HTTP on 127.0.0.1) that records every call it gets.

The emulator is told which MCP call its next response makes (emulator.calls.mcp.queue), as a test would
script the model; listing the tools, asking for approval and calling the server are the emulator's real
MCP play, and everything between the tab and Voice Live is the real bridge.
"""

from __future__ import annotations

import json

import pytest

from support import mcpserver
from support.apps import start_app
from support.audio import silence, speech
from support.upstreams import emulator_env, record
from support.upstreams import ready as ready_tab

APPROVAL = {"always": ["delete_order"], "never": ["lookup_order"]}


@pytest.fixture(scope="module")
def mcp():
    server = mcpserver.start()
    yield server
    server.stop()


def app_env(emulator, mcp, **extra) -> dict[str, str]:
    servers = [{"label": "orders", "url": mcp.url, "allowed_tools": ["lookup_order", "delete_order"],
                "require_approval": APPROVAL}]
    return emulator_env(emulator, VOICEBRIDGE_MCP_SERVERS=json.dumps(servers), **extra)


@pytest.fixture(scope="module")
def app(request, emulator, mcp):
    return start_app(request, app_env(emulator, mcp, VOICEBRIDGE_APPROVAL_SECONDS="120"))


def ready(tabs, emulator):
    """A ready tab whose upstream has listed the MCP server's tools, and that upstream's record."""
    tab, upstream_id = ready_tab(tabs, emulator)
    assert emulator.wait_until(lambda: "tools" in str(record(emulator, upstream_id).mcp.get("orders")), timeout=15)
    return tab, upstream_id


def approvals_sent(emulator, session_id) -> list[dict]:
    return [i for i in record(emulator, session_id).items_received if i["type"] == "mcp_approval_response"]


def client_events(emulator, session_id, kind):
    return [e for e in record(emulator, session_id).events_received if e.get("type") == kind]


def ask(tab, emulator, session_id, tool, order):
    """Script the model's next response as a call of `tool`, and ask by typing."""
    emulator.calls.mcp.queue("orders", tool, {"order_id": order}, session_id)
    mark = tab.mark()
    tab.send({"type": "text", "text": "Please see to my order."})
    return mark


def approval_request(tab, start):
    return tab.wait_for(lambda m: m["type"] == "approval", 15, start)


def settled(tab, approval_id, start=0):
    return tab.wait_for(lambda m: m["type"] == "approval.done" and m["id"] == approval_id, 15, start)


def test_the_session_declares_the_mcp_server_and_its_tools_are_listed(tabs, emulator, mcp):
    tab, session_id = ready(tabs, emulator)
    (update,) = client_events(emulator, session_id, "session.update")
    (entry,) = [t for t in update["session"]["tools"] if t["type"] == "mcp"]
    assert entry == {"type": "mcp", "server_label": "orders", "server_url": mcp.url,
                     "allowed_tools": ["lookup_order", "delete_order"], "require_approval": APPROVAL}
    assert record(emulator, session_id).mcp["orders"][0] == {"tools": ["lookup_order", "delete_order"]}


def test_a_call_without_approval_is_shown_like_a_tool_call_and_its_result_spoken(tabs, emulator, mcp):
    tab, session_id = ready(tabs, emulator)
    mark = ask(tab, emulator, session_id, "lookup_order", "A-1")
    answer = tab.wait_reply(mark)
    assert "Order A-1 has shipped." in answer["text"]
    assert ("lookup_order", {"order_id": "A-1"}) in mcp.called()
    tools = [m for m in tab.messages[mark:] if m["type"] == "tool"]
    assert [(m["name"], m["server"], m["status"]) for m in tools] == [
        ("lookup_order", "orders", "running"), ("lookup_order", "orders", "done")]
    assert all(set(m) == {"type", "call_id", "name", "status", "server"} for m in tools), "never the arguments"
    assert tab.of_type("approval") == []


def test_a_call_after_allow_reaches_the_server_and_is_answered(tabs, emulator, mcp):
    tab, session_id = ready(tabs, emulator)
    mark = ask(tab, emulator, session_id, "delete_order", "B-2")
    request = approval_request(tab, mark)
    assert (request["server"], request["tool"]) == ("orders", "delete_order")
    assert request["summary"] == "The assistant wants to use delete_order on orders"
    assert 100 < request["seconds"] <= 120 and "arguments" not in request
    assert ("delete_order", {"order_id": "B-2"}) not in mcp.called(), "nothing runs before the answer"
    tab.send({"type": "approval", "id": request["id"], "approve": True})
    done = settled(tab, request["id"], mark)
    assert (done["approved"], done["reason"]) == (True, "answered")
    answer = tab.wait_reply(tab.messages.index(done))
    assert "Order B-2 is deleted." in answer["text"]
    assert ("delete_order", {"order_id": "B-2"}) in mcp.called()
    assert approvals_sent(emulator, session_id)[-1]["approve"] is True


def test_a_call_after_deny_never_reaches_the_server_and_the_assistant_answers(tabs, emulator, mcp):
    tab, session_id = ready(tabs, emulator)
    mark = ask(tab, emulator, session_id, "delete_order", "C-3")
    request = approval_request(tab, mark)
    tab.send({"type": "approval", "id": request["id"], "approve": False})
    done = settled(tab, request["id"], mark)
    assert (done["approved"], done["reason"]) == (False, "answered")
    tab.wait_reply(tab.messages.index(done))  # the assistant speaks after the denial
    assert [a["approve"] for a in approvals_sent(emulator, session_id)] == [False]
    assert ("delete_order", {"order_id": "C-3"}) not in mcp.called()
    assert any(e["event_id"].startswith("vb-approval-reply") for e in client_events(emulator, session_id, "response.create"))


def test_a_pending_approval_is_denied_by_a_barge_in(tabs, emulator, mcp):
    tab, session_id = ready(tabs, emulator)
    mark = ask(tab, emulator, session_id, "delete_order", "D-4")
    request = approval_request(tab, mark)
    tab.speak(silence(200) + speech(700, seed=61) + silence(900))
    done = settled(tab, request["id"], mark)
    assert (done["approved"], done["reason"]) == (False, "interrupted")
    assert emulator.wait_until(lambda: approvals_sent(emulator, session_id) != [], timeout=10)
    assert [a["approve"] for a in approvals_sent(emulator, session_id)] == [False]
    assert ("delete_order", {"order_id": "D-4"}) not in mcp.called()
    late = tab.mark()
    tab.send({"type": "approval", "id": request["id"], "approve": True})  # too late: it is settled
    error = tab.wait_for(lambda m: m["type"] == "error", 10, late)
    assert error["code"] == "bad_message" and "is waiting" in error["message"]
    assert ("delete_order", {"order_id": "D-4"}) not in mcp.called()


def test_stop_settles_a_pending_approval(tabs, emulator, mcp):
    tab, session_id = ready(tabs, emulator)
    mark = ask(tab, emulator, session_id, "delete_order", "E-5")
    request = approval_request(tab, mark)
    tab.stop()
    done = settled(tab, request["id"], mark)
    assert (done["approved"], done["reason"]) == (False, "ended")
    tab.wait_state("stopped", 10, mark)
    assert ("delete_order", {"order_id": "E-5"}) not in mcp.called()


def test_no_answer_in_time_is_a_denial_the_assistant_is_told_about(request, emulator, mcp):
    from support.tab import Tab

    quick = start_app(request, app_env(emulator, mcp, VOICEBRIDGE_APPROVAL_SECONDS="1"))
    known = {r.id for r in emulator.sessions()}
    tab = Tab(quick.url)
    try:
        tab.start()
        tab.wait_state("ready")
        (rec,) = [r for r in emulator.sessions() if r.id not in known]
        assert emulator.wait_until(lambda: "tools" in str(record(emulator, rec.id).mcp.get("orders")), timeout=15)
        mark = ask(tab, emulator, rec.id, "delete_order", "F-6")
        pending = approval_request(tab, mark)
        assert pending["seconds"] == 1
        done = settled(tab, pending["id"], mark)
        assert (done["approved"], done["reason"]) == (False, "timeout")
        tab.wait_reply(tab.messages.index(done))
        items = record(emulator, rec.id).items_received
        assert [i["approve"] for i in items if i["type"] == "mcp_approval_response"] == [False]
        notes = [i for i in items if i["type"] == "message" and i["role"] == "system"]
        assert notes and "did not answer it within 1 seconds" in notes[-1]["content"][0]["text"]
        assert ("delete_order", {"order_id": "F-6"}) not in mcp.called()
    finally:
        tab.close()


def test_a_failing_call_is_shown_failed_and_the_assistant_still_answers(tabs, emulator, mcp):
    tab, session_id = ready(tabs, emulator)
    emulator.calls.mcp.queue("orders", "lookup_order", {}, session_id)  # order_id missing: the tool errs
    mark = tab.mark()
    tab.send({"type": "text", "text": "Where is it?"})
    answer = tab.wait_reply(mark)
    assert "the tool failed" in answer["text"]
    tools = [(m["name"], m["server"], m["status"]) for m in tab.messages[mark:] if m["type"] == "tool"]
    assert tools == [("lookup_order", "orders", "running"), ("lookup_order", "orders", "failed")]
