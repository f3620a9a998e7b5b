"""The emulator's knobs for what the service does in its own time and on its own (issue 19), driven by
the real SDK: a calling response that stays active after its calls, an item whose audio is not its first
content part (and the strict truncate that follows), `rate_limits.updated` and `warning`."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from azure.ai.voicelive.models import FunctionCallOutputItem, InputTextContentPart, UserMessageItem

from support.sdk_client import client, run, silence, speech, url

CLOCK = {"type": "function", "name": "get_current_time", "description": "Tell the time.",
         "parameters": {"type": "object", "properties": {}}}
ONE_TURN = silence(300) + speech(1500, seed=3) + silence(700)


async def typed(c, text: str) -> int:
    await c.conn.conversation.item.create(item=UserMessageItem(content=[InputTextContentPart(text=text)]))
    await c.wait_for("conversation.item.created")
    mark = len(c.events)
    await c.conn.response.create()
    return mark


def test_a_calling_response_stays_active_after_its_calls_until_its_done(make_emulator):
    emu = make_emulator(function_call_done_ms=400)
    emu.calls.queue([{"name": "get_current_time", "arguments": {}}])

    async def scenario():
        async with client(emu, tools=[CLOCK]) as c:
            mark = await typed(c, "Time?")
            call = await c.wait_for("response.function_call_arguments.done", start=mark)
            # Sent at once, before the response is done: recorded, and the create is refused.
            await c.conn.conversation.item.create(item=FunctionCallOutputItem(call_id=call.call_id, output='"10:00"'))
            await c.conn.response.create()
            error = await c.wait_for("error", start=mark)
            done = await c.wait_for("response.done", start=mark)
            return error.error, done.response, c.types(mark)

    error, response, types = run(scenario())
    assert error.code == "conversation_already_has_active_response"
    assert response.status == "completed" and [o.type for o in response.output] == ["function_call"]
    assert types.index("error") < types.index("response.done")
    rec = emu.sessions()[0]
    (asking,) = [r for r in rec.responses if r.get("function_calls")]
    output_at = next(i for i, e in enumerate(rec.events_received) if e.get("type") == "conversation.item.create"
                     and e["item"]["type"] == "function_call_output")
    assert output_at < asking["done_at_event"]  # the record shows the output came while it was in progress


def test_a_calling_response_cancelled_before_its_done_ends_cancelled_with_its_calls(make_emulator):
    emu = make_emulator(function_call_done_ms=5000)
    emu.calls.queue([{"name": "get_current_time", "arguments": {}}])

    async def scenario():
        async with client(emu, tools=[CLOCK]) as c:
            mark = await typed(c, "Time?")
            await c.wait_for("response.function_call_arguments.done", start=mark)
            await c.conn.response.cancel()
            return (await c.wait_for("response.done", start=mark, timeout=3)).response

    response = run(scenario())
    assert response.status == "cancelled" and [o.type for o in response.output] == ["function_call"]


def test_a_reply_with_a_text_part_first_has_its_audio_at_content_index_1_and_only_that_truncates(make_emulator):
    emu = make_emulator(reply_text_part=True)

    async def scenario():
        async with client(emu) as c:
            await c.conn.input_audio_buffer.append(audio=ONE_TURN)
            done = await c.wait_for("response.done")
            item = done.response.output[0]
            parts = [(e.content_index, e.part.type) for e in c.events if e.type == "response.content_part.added"]
            audio = {e.content_index for e in c.events if e.type == "response.audio.delta"}
            text = next(e for e in c.events if e.type == "response.text.done")
            mark = len(c.events)
            await c.conn.conversation.item.truncate(item_id=item.id, content_index=0, audio_end_ms=100)
            error = (await c.wait_for("error", start=mark)).error
            await c.conn.conversation.item.truncate(item_id=item.id, content_index=1, audio_end_ms=100)
            truncated = await c.wait_for("conversation.item.truncated", start=mark)
            return item, parts, audio, text, error, truncated

    item, parts, audio, text, error, truncated = run(scenario())
    assert parts == [(0, "text"), (1, "audio")] and audio == {1}
    assert [p.type for p in item.content] == ["text", "audio"] and text.content_index == 0
    assert (error.type, error.code, error.param) == ("invalid_request_error", "invalid_value", "content_index")
    assert (truncated.content_index, truncated.audio_end_ms) == (1, 100)


def test_every_response_begins_with_the_configured_rate_limits(make_emulator):
    limits = [{"name": "tokens", "limit": 120000, "remaining": 0, "reset_seconds": 12.5}]
    emu = make_emulator(rate_limits=limits)

    async def scenario():
        async with client(emu) as c:
            mark = await typed(c, "Hello")
            await c.wait_for("response.done", start=mark)
            return c.types(mark), next(e for e in c.events[mark:] if e.type == "rate_limits.updated")

    types, event = run(scenario())
    assert types[:2] == ["response.created", "rate_limits.updated"]
    assert [dict(limit) for limit in event["rate_limits"]] == limits


@pytest.mark.parametrize("value", [[], [{"name": "coins", "remaining": 1}], [{"name": "tokens", "remaining": -1}]])
def test_bad_rate_limits_are_refused_by_the_control_surface(emulator, value):
    request = urllib.request.Request(url(emulator) + "/emulator/faults", data=json.dumps({"rate_limits": value}).encode(),
                                     method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 400


def test_a_warning_reaches_the_sdk_as_its_warning_event_and_the_session_goes_on(emulator):
    async def scenario():
        async with client(emulator) as c:
            body = json.dumps({"message": "Heads up.", "code": "deprecated_format", "param": "session.voice"}).encode()
            with urllib.request.urlopen(urllib.request.Request(url(emulator) + "/emulator/warning", data=body,
                                                               method="POST"), timeout=5) as answer:
                assert json.load(answer) == {"sessions": 1}
            warning = await c.wait_for("warning")
            mark = await typed(c, "Still fine?")
            done = await c.wait_for("response.done", start=mark)
            return type(warning).__name__, warning.warning, done.response.status

    kind, warning, status = run(scenario())
    assert kind == "ServerEventWarning"
    assert (warning.message, warning.code, warning.param) == ("Heads up.", "deprecated_format", "session.voice")
    assert status == "completed"
