"""Issue 26 in the emulator, driven by the real SDK: what other Voice Live clients (the SDK's samples among
them) rely on — text-only sessions, MCP servers in the session, when a queued call is spent, agent mode,
and the operator's log."""

from __future__ import annotations

import contextlib
import logging

import pytest
from azure.ai.voicelive.aio import ConnectionError as VoiceLiveConnectionError
from azure.ai.voicelive.aio import connect
from azure.ai.voicelive.models import InputTextContentPart, MCPServer, UserMessageItem
from azure.core.credentials import AzureKeyCredential

from support.sdk_client import KEY, Client, client, run, silence, speech, url

CLOCK = {"type": "function", "name": "get_current_time", "description": "Tell the time.",
         "parameters": {"type": "object", "properties": {}}}


async def typed_turn(c: Client, text: str):
    await c.conn.conversation.item.create(item=UserMessageItem(content=[InputTextContentPart(text=text)]))
    await c.wait_for("conversation.item.created")
    mark = len(c.events)
    await c.conn.response.create()
    await c.wait_for("response.done", start=mark)
    return c.events[mark:]


def test_a_text_only_session_gets_text_deltas_and_no_audio(emulator):
    async def scenario():
        async with client(emulator, modalities=["text"]) as c:
            return await typed_turn(c, "Hello there")

    reply = run(scenario())
    types = [e.type for e in reply if e.type != "response.text.delta"]
    assert types == ["response.created", "response.output_item.added", "conversation.item.created",
                     "response.content_part.added", "response.text.done", "response.content_part.done",
                     "response.output_item.done", "response.done"]
    deltas = [e.delta for e in reply if e.type == "response.text.delta"]
    done = next(e for e in reply if e.type == "response.text.done")
    assert len(deltas) > 1 and "".join(deltas) == done.text == "You wrote: Hello there"
    item = reply[-1].response.output[0]
    assert (item.role, item.content[0].type, item.content[0].text) == ("assistant", "text", done.text)
    assert emulator.sessions()[0].responses[0]["audio_bytes_sent"] == 0


def test_mcp_servers_are_accepted_as_the_sdk_models_them_and_reported(emulator):
    servers = [
        MCPServer(server_label="deepwiki", server_url="https://mcp.deepwiki.com/mcp",
                  allowed_tools=["ask_question"], require_approval="never", headers={"X-Team": "voice"}),
        MCPServer(server_label="docs", server_url="https://learn.microsoft.com/api/mcp",
                  require_approval={"never": ["search"]}),
    ]

    async def scenario():
        async with client(emulator, tools=[CLOCK, *servers]) as c:
            return (await c.wait_for("session.updated")).session

    reported = run(scenario())
    assert [t["type"] for t in reported.tools] == ["function", "mcp", "mcp"]
    assert reported.tools[1]["headers"] == {"X-Team": "voice"}
    assert reported.tools[2]["require_approval"] == {"never": ["search"]}


@pytest.mark.parametrize("server, param", [
    ({"type": "mcp", "server_label": "a"}, "session.tools[0].server_url"),
    ({"type": "mcp", "server_label": "", "server_url": "https://x.example"}, "session.tools[0].server_label"),
    ({"type": "mcp", "server_label": "a", "server_url": "https://x.example", "require_approval": "sometimes"},
     "session.tools[0].require_approval"),
    ({"type": "mcp", "server_label": "a", "server_url": "https://x.example", "allowed_tools": "ask"},
     "session.tools[0].allowed_tools"),
    ({"type": "mcp", "server_label": "a", "server_url": "https://x.example", "headers": {"n": 1}},
     "session.tools[0].headers"),
])
def test_a_malformed_mcp_server_is_refused_naming_the_field(emulator, server, param):
    async def scenario():
        async with client(emulator) as c:
            mark = len(c.events)
            await c.conn.send({"type": "session.update", "session": {"tools": [server]}})
            return await c.wait_for("error", start=mark)

    assert run(scenario()).error.param == param


def test_two_mcp_servers_with_one_label_are_refused(emulator):
    server = {"type": "mcp", "server_label": "a", "server_url": "https://x.example"}

    async def scenario():
        async with client(emulator) as c:
            mark = len(c.events)
            await c.conn.send({"type": "session.update", "session": {"tools": [server, server]}})
            return await c.wait_for("error", start=mark)

    assert run(scenario()).error.param == "session.tools[1].server_label"


def test_a_queued_call_waits_for_a_user_turn_in_a_session_that_declared_the_tool(emulator):
    emulator.calls.queue([{"name": "get_current_time", "arguments": {}}])

    async def calls_in(events) -> list[str]:
        return [e.name for e in events if e.type == "response.function_call_arguments.done"]

    async def scenario():
        async with client(emulator) as undeclared:  # no tools: a model could not call it
            without_tools = await calls_in(await typed_turn(undeclared, "Hello"))
        async with client(emulator, tools=[CLOCK]) as c:
            mark = len(c.events)
            await c.conn.response.create()  # a greeting: no user turn to answer with a call
            await c.wait_for("response.done", start=mark)
            greeting = await calls_in(c.events[mark:])
            mark = len(c.events)
            await c.conn.input_audio_buffer.append(audio=silence(300) + speech(800) + silence(700))
            await c.wait_for("response.done", start=mark)
            spoken = await calls_in(c.events[mark:])
            mark = len(c.events)
            await c.conn.response.create()  # answers nothing new: spoken, not the call again
            await c.wait_for("response.done", start=mark)
            again = await calls_in(c.events[mark:])
        return without_tools, greeting, spoken, again

    assert run(scenario()) == ([], [], ["get_current_time"], [])


@contextlib.asynccontextmanager
async def agent_connection(emu, **agent):
    params = {"agent_name": "concierge", "project_name": "voice-demo", **agent}
    async with connect(endpoint=url(emu), credential=AzureKeyCredential(KEY), **params) as conn:
        c = Client(conn)
        await c.wait_for("session.created")
        try:
            yield c
        finally:
            c._reader.cancel()


def test_agent_mode_reports_the_agent_keeps_a_given_conversation_and_refuses_instructions(emulator):
    async def scenario():
        async with agent_connection(emulator, agent_version="2") as c:
            started = c.events[0].session
            mark = len(c.events)
            await c.conn.session.update(session={"instructions": "Be a pirate."})
            refused = (await c.wait_for("error", start=mark)).error
            mark = len(c.events)
            await c.conn.session.update(session={"voice": {"type": "azure-standard", "name": "en-US-AvaNeural"}})
            accepted = (await c.wait_for("session.updated", start=mark)).session
        async with agent_connection(emulator, conversation_id=started.agent.thread_id) as again:
            continued = again.events[0].session
        return started, refused, accepted, continued

    started, refused, accepted, continued = run(scenario())
    assert (started.agent.type, started.agent.name, started.agent.agent_id) == ("agent", "concierge", "concierge:2")
    assert started.agent.thread_id.startswith("conv_")
    assert (refused.type, refused.code, refused.param) == ("invalid_request_error", "invalid_value",
                                                           "session.instructions")
    assert accepted.agent.name == "concierge" and accepted.instructions == ""
    assert continued.agent.thread_id == started.agent.thread_id
    assert emulator.sessions()[0].config["instructions"] == ""


def test_an_agent_without_its_project_is_refused_at_the_handshake_and_logged(emulator, caplog):
    async def scenario():
        async with connect(endpoint=url(emulator), credential=AzureKeyCredential(KEY),
                           query={"agent-name": "concierge"}):
            pass

    with caplog.at_level(logging.INFO, logger="voicebridge.emulator"), pytest.raises(VoiceLiveConnectionError):
        run(scenario())
    assert emulator.sessions() == []
    (line,) = [r.getMessage() for r in caplog.records if r.name == "voicebridge.emulator"]
    assert line.startswith("event=emulator.handshake_refused status=400 message=\"Agent mode needs both")


def test_the_log_has_a_line_per_connection_and_per_refused_update_and_none_per_chunk(emulator, caplog):
    emulator.calls.queue([{"name": "get_current_time", "arguments": {}}])

    async def scenario():
        async with client(emulator, tools=[CLOCK]) as c:
            await c.conn.send({"type": "session.update", "session": {"temperature": 5}})
            await c.wait_for("error")
            mark = len(c.events)
            for _ in range(40):  # 20 ms chunks, as a browser sends them
                await c.conn.input_audio_buffer.append(audio=speech(20))
            await c.conn.input_audio_buffer.append(audio=silence(700))
            await c.wait_for("response.done", start=mark)
            await c.conn.send({"type": "conversation.item.create", "item": {
                "type": "function_call_output", "call_id": next(
                    e.call_id for e in c.events if e.type == "response.function_call_arguments.done"),
                "output": "{}"}})
            mark = len(c.events)
            await c.conn.response.create()
            await c.wait_for("response.done", start=mark)
            session_id = c.events[0].session.id
        assert emulator.wait_until(lambda: not emulator.sessions()[0].open, 10)
        return session_id

    with caplog.at_level(logging.INFO, logger="voicebridge.emulator"):
        session_id = run(scenario())
    lines = [r.getMessage() for r in caplog.records if r.name == "voicebridge.emulator"]
    assert len(lines) == 2, lines
    refused, ended = lines
    assert refused.startswith(f"event=emulator.session_update_refused session={session_id} code=invalid_value "
                              "param=session.temperature message=")
    assert "Invalid 'session.temperature'" in refused
    assert ended == (f"event=emulator.session_ended session={session_id} model=gpt-realtime user_turns=1 "
                     "responses=2 completed=2 function_calls=1 close_code=1000")
