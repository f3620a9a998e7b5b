"""Malformed client events get an `error` event and the session carries on.

The SDK only sends well-formed events, so these frames go over a plain aiohttp WebSocket client.
"""

from __future__ import annotations

import json

import aiohttp
import pytest

from support.sdk_client import KEY, run, url

CASES = [
    ("not json {", None, "invalid_json"),
    ("[1, 2]", None, "invalid_type"),
    ('{"event_id": "e1"}', "e1", "missing_required_parameter"),
    ('{"type": "bogus.event", "event_id": "e2"}', "e2", "invalid_value"),
    ('{"type": "input_audio_buffer.append", "event_id": "e3"}', "e3", "missing_required_parameter"),
    ('{"type": "input_audio_buffer.append", "audio": "@@not base64@@", "event_id": "e4"}', "e4", "invalid_value"),
    ('{"type": "input_audio_buffer.append", "audio": 42}', None, "invalid_type"),
    ('{"type": "session.update", "session": "fast", "event_id": "e5"}', "e5", "invalid_type"),
    ('{"type": "session.update", "session": {"turn_detection": {"type": "server_vad", "threshold": 7}}}', None,
     "invalid_value"),
    ('{"type": "session.update", "session": {"input_audio_format": "mp3"}}', None, "invalid_value"),
    ('{"type": "conversation.item.truncate", "item_id": "item_x", "content_index": 0, "audio_end_ms": 5}', None,
     "item_not_found"),
    ('{"type": "conversation.item.create", "item": {"type": "telepathy"}}', None, "invalid_value"),
    # Message content by role ([REF] ContentPartType): an assistant's words are `text`, a user's `input_text`.
    ('{"type": "conversation.item.create", "item": {"type": "message", "role": "assistant", '
     '"content": [{"type": "input_text", "text": "Hi"}]}}', None, "invalid_value"),
    ('{"type": "conversation.item.create", "item": {"type": "message", "role": "user", '
     '"content": [{"type": "text", "text": "Hi"}]}}', None, "invalid_value"),
    ('{"type": "conversation.item.create", "item": {"type": "message", "role": "assistant", '
     '"content": [{"type": "audio", "audio": ""}]}}', None, "invalid_value"),
    ('{"type": "conversation.item.create", "item": {"type": "message", "role": "system"}}', None,
     "missing_required_parameter"),
    ('{"type": "conversation.item.create", "item": {"type": "message", "role": "user", '
     '"content": [{"type": "input_text"}]}}', None, "missing_required_parameter"),
    ('{"type": "session.update", "session": {"max_response_output_tokens": 0}}', None, "invalid_value"),
    ('{"type": "session.update", "session": {"max_response_output_tokens": "lots"}}', None, "invalid_value"),
    (b"\x00\x01binary", None, "invalid_request_format"),
]


async def next_json(ws) -> dict:
    msg = await ws.receive(timeout=10)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return json.loads(msg.data)


@pytest.mark.parametrize(("frame", "event_id", "code"), CASES, ids=[str(c[0])[:40] for c in CASES])
def test_malformed_event_gets_an_error_and_the_session_continues(emulator, frame, event_id, code):
    async def main():
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(url(emulator) + "/voice-live/realtime?model=m", headers={"api-key": KEY}) as ws:
                created = await next_json(ws)
                assert created["type"] == "session.created"
                await (ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_str(frame))
                error = await next_json(ws)
                assert error["type"] == "error" and error["event_id"].startswith("event_")
                assert error["error"]["type"] == "invalid_request_error" and error["error"]["code"] == code
                assert error["error"]["event_id"] == event_id and error["error"]["message"]
                await ws.send_str('{"type": "session.update", "session": {"instructions": "still here"}}')
                updated = await next_json(ws)
                assert updated["type"] == "session.updated"
                # A rejected update changes nothing.
                assert updated["session"] == {**created["session"], "instructions": "still here"}

    run(main())
    assert emulator.wait_until(lambda: not emulator.sessions()[0].open)
    record = emulator.sessions()[0]
    assert record.closed_by_client is True
    assert record.config["instructions"] == "still here"
