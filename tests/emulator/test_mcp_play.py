"""The emulator plays MCP for real: a real MCP server (the `mcp` SDK over streamable HTTP on 127.0.0.1),
the real Voice Live SDK as the client. Tools are listed from the server, calls that need approval wait
for an mcp_approval_response, and an approved (or approval-free) call reaches the server."""

from __future__ import annotations

import pytest
from azure.ai.voicelive.models import MCPApprovalResponseRequestItem, MCPServer

from support import mcpserver
from support.sdk_client import client, run


@pytest.fixture(scope="module")
def mcp():
    server = mcpserver.start()
    yield server
    server.stop()


async def say(c, text: str) -> None:
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    await c.conn.send({"type": "conversation.item.create", "item": item})


def servers(mcp, **options) -> list:
    return [MCPServer(server_label="orders", server_url=mcp.url, **options)]


def test_a_declared_server_is_listed_from_the_real_server_keeping_only_allowed_tools(emulator, mcp):
    async def scenario():
        async with client(emulator, tools=servers(mcp, allowed_tools=["lookup_order", "delete_order"])) as c:
            progress = await c.wait_for("mcp_list_tools.in_progress")
            await c.wait_for("mcp_list_tools.completed")
            listing = next(e.item for e in c.events if getattr(e, "type", "") == "conversation.item.created"
                           and e.item.type == "mcp_list_tools")
            assert listing.id == progress.item_id and listing.server_label == "orders"
            assert [t.name for t in listing.tools] == ["lookup_order", "delete_order"]
            assert listing.tools[0].input_schema["required"] == ["order_id"]

    run(scenario())


def test_an_unreachable_server_fails_its_listing(emulator):
    async def scenario():
        dead = [MCPServer(server_label="gone", server_url="http://127.0.0.1:9/mcp")]
        async with client(emulator, tools=dead) as c:
            failed = await c.wait_for("mcp_list_tools.failed", timeout=15)
            assert failed.item_id
            assert "cannot reach" in emulator.sessions()[-1].mcp["gone"][0]["error"]

    run(scenario())


def test_a_call_without_approval_reaches_the_server_and_its_output_is_spoken_next(emulator, mcp):
    async def scenario():
        async with client(emulator, tools=servers(mcp, require_approval="never")) as c:
            await c.wait_for("mcp_list_tools.completed")
            emulator.calls.mcp.queue("orders", "lookup_order", {"order_id": "A-1"})
            mark = len(c.events)
            await say(c, "where is it?")
            await c.conn.response.create()
            done = await c.wait_for("response.mcp_call.completed", start=mark)
            item = (await c.wait_for("response.output_item.done", start=mark)).item
            assert item.type == "mcp_call" and item.id == done.item_id and item.output == "Order A-1 has shipped."
            await c.wait_for("response.done", start=mark)
            assert ("lookup_order", {"order_id": "A-1"}) in mcp.called()
            mark = len(c.events)
            await c.conn.response.create()
            said = await c.wait_for("response.audio_transcript.done", start=mark)
            assert "Order A-1 has shipped." in said.transcript

    run(scenario())


def test_a_call_that_needs_approval_waits_and_runs_only_when_approved(emulator, mcp):
    async def scenario():
        async with client(emulator, tools=servers(mcp, require_approval={"always": ["delete_order"]})) as c:
            await c.wait_for("mcp_list_tools.completed")
            before = len(mcp.called())
            emulator.calls.mcp.queue("orders", "delete_order", {"order_id": "B-2"})
            mark = len(c.events)
            await say(c, "delete it")
            await c.conn.response.create()
            created = await c.wait_for("conversation.item.created", start=mark,
                                       where=lambda e: e.item.type == "mcp_approval_request")
            request = created.item
            assert (request.server_label, request.name) == ("orders", "delete_order")
            await c.wait_for("response.done", start=mark)
            assert len(mcp.called()) == before  # nothing called before the answer
            mark = len(c.events)
            await c.conn.conversation.item.create(
                item=MCPApprovalResponseRequestItem(approval_request_id=request.id, approve=True))
            call = await c.wait_for("response.output_item.done", start=mark, where=lambda e: e.item.type == "mcp_call")
            assert call.item.approval_request_id == request.id and call.item.output == "Order B-2 is deleted."
            assert ("delete_order", {"order_id": "B-2"}) in mcp.called()

    run(scenario())


def test_a_denied_call_never_reaches_the_server_and_an_answer_is_accepted_once(emulator, mcp):
    async def scenario():
        async with client(emulator, tools=servers(mcp)) as c:  # require_approval absent: always
            await c.wait_for("mcp_list_tools.completed")
            before = len(mcp.called())
            emulator.calls.mcp.queue("orders", "delete_order", {"order_id": "C-3"})
            mark = len(c.events)
            await say(c, "delete it")
            await c.conn.response.create()
            request = (await c.wait_for("conversation.item.created", start=mark,
                                        where=lambda e: e.item.type == "mcp_approval_request")).item
            await c.wait_for("response.done", start=mark)
            deny = MCPApprovalResponseRequestItem(approval_request_id=request.id, approve=False)
            await c.conn.conversation.item.create(item=deny)
            await c.conn.conversation.item.create(item=MCPApprovalResponseRequestItem(
                approval_request_id=request.id, approve=True))
            error = await c.wait_for("error", start=mark)
            assert "already answered" in error.error.message
            await c.roundtrip()
            assert len(mcp.called()) == before
            assert not any(getattr(e, "type", "") == "response.mcp_call.in_progress" for e in c.events[mark:])

    run(scenario())
