"""Approvals (session/approvals.py) with a recording tab and a recording upstream connection: what the
end-to-end tests cannot reach cheaply (the arguments opt-in, a resumed tab, a flood of requests)."""

from __future__ import annotations

import asyncio
import json

from voicebridge.session.approvals import MAX_PENDING, Approvals
from voicebridge.session.connection import UpstreamLink
from voicebridge.tasks import TaskOwner


class RecordingTab:
    def __init__(self):
        self.sent: list[dict] = []

    def send(self, text: str) -> None:
        self.sent.append(json.loads(text))


class RecordingConnection:
    def __init__(self):
        self.events: list[dict] = []

    async def send(self, event: dict) -> None:
        self.events.append(event)


def request(approval_id: str, arguments: str = '{"order_id": "A-1"}') -> dict:
    return {"type": "mcp_approval_request", "id": approval_id, "server_label": "orders", "name": "delete_order",
            "arguments": arguments}


async def settle(tasks: TaskOwner) -> None:
    assert await tasks.join(5.0)


def build(show_arguments: bool = False, timeout_s: float = 60.0):
    tasks = TaskOwner("test")
    upstream = UpstreamLink(tasks)
    conn = RecordingConnection()
    upstream.use(conn)  # type: ignore[arg-type]
    tab = RecordingTab()
    return Approvals("s1", upstream, tab, timeout_s=timeout_s, show_arguments=show_arguments), tab, conn, tasks  # type: ignore[arg-type]


def test_arguments_reach_the_page_only_when_the_operator_allows_it():
    async def scenario():
        hidden, tab, _, _ = build(show_arguments=False)
        hidden.requested(request("r1"))
        shown, tab2, _, _ = build(show_arguments=True)
        shown.requested(request("r2", "x" * 5000))
        return tab.sent, tab2.sent

    hidden, shown = asyncio.run(scenario())
    assert "arguments" not in hidden[0]
    assert shown[0]["arguments"] == "x" * 1000


def test_a_request_seen_twice_is_asked_once_and_a_resumed_tab_is_asked_again():
    async def scenario():
        approvals, tab, _, _ = build()
        approvals.requested(request("r1"))
        approvals.requested(request("r1"))  # the same item as a conversation item
        asked = len(tab.sent)
        approvals.show_again()
        return asked, tab.sent

    asked, sent = asyncio.run(scenario())
    assert asked == 1
    assert [m["type"] for m in sent] == ["approval", "approval"] and sent[1]["id"] == "r1"


def test_an_answer_goes_upstream_once_and_a_denial_asks_for_the_reply():
    async def scenario():
        approvals, tab, conn, tasks = build()
        approvals.requested(request("r1"))
        assert approvals.answer("r1", False)
        assert not approvals.answer("r1", True), "settled: a second answer changes nothing"
        await settle(tasks)
        return tab.sent, conn.events

    sent, events = asyncio.run(scenario())
    assert sent[-1] == {"type": "approval.done", "id": "r1", "approved": False, "reason": "answered"}
    assert [e["type"] for e in events] == ["conversation.item.create", "response.create"]
    assert events[0]["item"] == {"type": "mcp_approval_response", "approval_request_id": "r1", "approve": False}


def test_a_flood_of_requests_is_denied_beyond_the_bound():
    async def scenario():
        approvals, tab, conn, tasks = build()
        for n in range(MAX_PENDING + 2):
            approvals.requested(request(f"r{n}"))
        await settle(tasks)
        return approvals.pending, tab.sent, conn.events

    pending, sent, events = asyncio.run(scenario())
    assert len(pending) == MAX_PENDING and len(sent) == MAX_PENDING
    assert [e["item"]["approve"] for e in events] == [False, False]


def test_a_lost_connection_ends_what_waits_and_nothing_goes_to_the_new_one():
    async def scenario():
        approvals, tab, conn, tasks = build()
        approvals.requested(request("r1"))
        approvals._upstream.release()
        approvals.ended()
        await settle(tasks)
        return tab.sent, conn.events, approvals.pending

    sent, events, pending = asyncio.run(scenario())
    assert sent[-1]["reason"] == "ended" and events == [] and pending == []
