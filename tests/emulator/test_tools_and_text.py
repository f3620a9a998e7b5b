"""Issue 11 in the emulator, driven by the real SDK: the audio front-end settings, typed turns and
function calls in the service's event order."""

from __future__ import annotations

import json
import urllib.request

import pytest
from azure.ai.voicelive.models import FunctionCallOutputItem, InputTextContentPart, UserMessageItem

from support.sdk_client import client, run, url

CLOCK = {"type": "function", "name": "get_current_time", "description": "Tell the time.",
         "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}}}
ORDERS = {"type": "function", "name": "lookup_order", "description": "Find an order.",
          "parameters": {"type": "object", "properties": {"id": {"type": "integer"}}}}


def test_front_end_settings_are_accepted_and_reported(emulator):
    settings = {
        "turn_detection": {"type": "azure_semantic_vad", "threshold": 0.4},
        "input_audio_noise_reduction": {"type": "azure_deep_noise_suppression"},
        "input_audio_echo_cancellation": {"type": "server_echo_cancellation"},
        "temperature": 0.7,
        "tools": [CLOCK],
        "tool_choice": "auto",
    }

    async def scenario():
        async with client(emulator, **settings) as c:
            updated = await c.wait_for("session.updated")
            return updated.session

    reported = run(scenario())
    expected = {**settings, "turn_detection": {"prefix_padding_ms": 300, "silence_duration_ms": 500,
                                               "create_response": True, "interrupt_response": True,
                                               **settings["turn_detection"]}}
    for key, value in expected.items():
        assert reported[key] == value, key
    with urllib.request.urlopen(url(emulator) + "/emulator/sessions") as response:
        (shown,) = json.load(response)
    assert all(shown["config"][key] == value for key, value in expected.items())


@pytest.mark.parametrize(
    "update, param",
    [
        ({"turn_detection": {"type": "server_vad", "end_of_utterance_detection": {"model": "semantic_detection_v1"}}},
         "session.turn_detection.end_of_utterance_detection"),
        ({"turn_detection": {"type": "azure_semantic_vad", "end_of_utterance_detection": {"model": "v9"}}},
         "session.turn_detection.end_of_utterance_detection.model"),
        ({"input_audio_noise_reduction": {"type": "studio"}}, "session.input_audio_noise_reduction.type"),
        ({"input_audio_echo_cancellation": {"type": "magic"}}, "session.input_audio_echo_cancellation.type"),
        ({"temperature": 2.0}, "session.temperature"),
        ({"tools": [{"type": "code_interpreter"}]}, "session.tools[0].type"),
        ({"tools": [CLOCK, CLOCK]}, "session.tools[1].name"),
        ({"tools": [CLOCK], "tool_choice": {"type": "function", "name": "other"}}, "session.tool_choice"),
    ],
)
def test_bad_settings_get_the_services_error_shape(emulator, update, param):
    async def scenario():
        async with client(emulator) as c:
            mark = len(c.events)
            # Raw, as another client would send it: the SDK's models would coerce some of these values.
            await c.conn.send({"type": "session.update", "session": update})
            return await c.wait_for("error", start=mark)

    error = run(scenario()).error
    assert (error.type, error.code, error.param) == ("invalid_request_error", "invalid_value", param)


def test_a_typed_turn_gets_a_reply_about_the_text(emulator):
    async def scenario():
        async with client(emulator) as c:
            await c.conn.conversation.item.create(item=UserMessageItem(content=[InputTextContentPart(text="Hi there")]))
            await c.wait_for("conversation.item.created")
            mark = len(c.events)
            await c.conn.response.create()
            await c.wait_for("response.done", start=mark)
            return c, mark

    c, mark = run(scenario())
    done = next(e for e in c.events[mark:] if e.type == "response.audio_transcript.done")
    assert done.transcript == "You wrote: Hi there"
    assert any(e.type == "response.audio.delta" for e in c.events[mark:])
    (item,) = emulator.sessions()[0].items_received
    assert item["role"] == "user" and item["content"][0]["text"] == "Hi there"


def test_queued_function_calls_follow_the_services_sequence_and_their_outputs_get_a_reply(emulator):
    emulator.calls.queue([
        {"name": "get_current_time", "arguments": {"timezone": "Asia/Tokyo"}},
        {"name": "get_current_time", "arguments": "{}"},
    ])

    async def scenario():
        async with client(emulator, tools=[CLOCK]) as c:
            await c.conn.conversation.item.create(item=UserMessageItem(content=[InputTextContentPart(text="Time?")]))
            await c.wait_for("conversation.item.created")
            mark = len(c.events)
            await c.conn.response.create()
            await c.wait_for("response.done", start=mark)
            call_events = c.events[mark:]
            dones = [e for e in call_events if e.type == "response.function_call_arguments.done"]
            for done in dones:
                await c.conn.conversation.item.create(
                    item=FunctionCallOutputItem(call_id=done.call_id, output='{"time": "10:00"}'))
            second = len(c.events)
            await c.conn.response.create()
            await c.wait_for("response.done", start=second)
            return call_events, dones, c.events[second:]

    call_events, dones, reply = run(scenario())
    types = [e.type for e in call_events if e.type != "response.function_call_arguments.delta"]
    # conversation.item.created before the argument deltas, as the SDK's live tests against the service expect.
    assert [e.type for e in call_events][:4] == [
        "response.created", "response.output_item.added", "conversation.item.created",
        "response.function_call_arguments.delta"]
    assert types == [
        "response.created",
        "response.output_item.added", "conversation.item.created", "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added", "conversation.item.created", "response.function_call_arguments.done",
        "response.output_item.done",
        "response.done",
    ]
    created = [e.item for e in call_events if e.type == "conversation.item.created"]
    assert [(i.type, i.call_id) for i in created] == [("function_call", d.call_id) for d in dones]
    assert [(d.name, json.loads(d.arguments)) for d in dones] == [
        ("get_current_time", {"timezone": "Asia/Tokyo"}), ("get_current_time", {})]
    deltas = "".join(e.delta for e in call_events if e.type == "response.function_call_arguments.delta"
                     and e.call_id == dones[0].call_id)
    assert deltas == dones[0].arguments
    assert call_events[-1].response.status == "completed"
    assert [o.type for o in call_events[-1].response.output] == ["function_call", "function_call"]
    transcript = next(e for e in reply if e.type == "response.audio_transcript.done").transcript
    assert transcript.startswith("The tool answered:") and transcript.count("10:00") == 2


def test_an_output_for_an_unknown_call_is_refused(emulator):
    async def scenario():
        async with client(emulator) as c:
            mark = len(c.events)
            await c.conn.conversation.item.create(item=FunctionCallOutputItem(call_id="call_nope", output="{}"))
            return await c.wait_for("error", start=mark)

    assert run(scenario()).error.param == "item.call_id"


def test_typed_text_naming_a_declared_tool_calls_it_and_the_control_endpoint_queues_calls(emulator):
    async def ask(c, text):
        await c.conn.conversation.item.create(item=UserMessageItem(content=[InputTextContentPart(text=text)]))
        mark = len(c.events)
        await c.conn.response.create()
        await c.wait_for("response.done", start=mark)
        return [e for e in c.events[mark:] if e.type == "response.function_call_arguments.done"]

    async def scenario():
        async with client(emulator, tools=[CLOCK, ORDERS]) as c:
            by_word = await ask(c, "What time is it?")
            unrelated = await ask(c, "Tell me a joke")
            body = json.dumps({"name": "lookup_order", "arguments": {"id": 7}}).encode()
            request = urllib.request.Request(url(emulator) + "/emulator/function-call", body, method="POST")
            with urllib.request.urlopen(request) as response:
                assert json.load(response) == {"queued": 1}
            queued = await ask(c, "Tell me a joke")
            return by_word, unrelated, queued

    by_word, unrelated, queued = run(scenario())
    assert [(d.name, d.arguments) for d in by_word] == [("get_current_time", "{}")]
    assert unrelated == []
    assert [(d.name, json.loads(d.arguments)) for d in queued] == [("lookup_order", {"id": 7})]
