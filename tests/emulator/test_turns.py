"""Server VAD in audio time and the full turn: event order, echoed audio, transcripts."""

from __future__ import annotations

import pytest
from azure.ai.voicelive.models import InputTextContentPart, UserMessageItem

from support.sdk_client import BYTES_PER_MS, client, noise, run, silence, speech, tone

TRANSCRIBE = {"input_audio_transcription": {"model": "gpt-4o-transcribe"}}
TURN = [
    "input_audio_buffer.speech_started",
    "input_audio_buffer.speech_stopped",
    "input_audio_buffer.committed",
    "conversation.item.created",
    "conversation.item.input_audio_transcription.completed",
    "response.created",
    "response.output_item.added",
    "conversation.item.created",
    "response.content_part.added",
    "<deltas>",
    "response.audio.done",
    "response.audio_transcript.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.done",
]
DELTAS = ("response.audio.delta", "response.audio_transcript.delta")


def collapse_deltas(types: list[str]) -> list[str]:
    out: list[str] = []
    for t in types:
        t = "<deltas>" if t in DELTAS else t
        if not out or out[-1] != t or t != "<deltas>":
            out.append(t)
    return out


def test_a_vad_turn_has_the_service_order_and_echoes_the_utterance_in_100ms_deltas(emulator):
    audio = silence(600) + speech(1730, seed=3) + silence(900)

    async def main():
        async with client(emulator, **TRANSCRIBE) as c:
            mark = len(c.events)
            await c.conn.input_audio_buffer.append(audio=audio)
            done = await c.wait_for("response.done", start=mark)
            return c.events[mark:c.events.index(done) + 1]

    turn = run(main())
    assert collapse_deltas([e.type for e in turn]) == TURN
    by_type = {}
    for e in turn:
        by_type.setdefault(e.type, e)  # the first of each: the user's item is created before the assistant's
    started, stopped = by_type["input_audio_buffer.speech_started"], by_type["input_audio_buffer.speech_stopped"]
    user_item = started.item_id
    assert user_item.startswith("item_") and stopped.item_id == user_item
    assert by_type["input_audio_buffer.committed"].item_id == user_item
    created = by_type["conversation.item.created"].item
    assert (created.id, created.role, created.content[0].type) == (user_item, "user", "input_audio")
    assert by_type["conversation.item.input_audio_transcription.completed"].transcript == "(1.7 s of speech)"

    response = by_type["response.created"].response
    assert response.id.startswith("resp_")
    assistant_item = by_type["response.output_item.added"].item.id
    assert assistant_item.startswith("item_") and assistant_item != user_item
    created_assistant = [e for e in turn if e.type == "conversation.item.created"][1]
    assert (created_assistant.item.id, created_assistant.item.role) == (assistant_item, "assistant")
    assert created_assistant.previous_item_id == user_item
    audio_deltas = [e for e in turn if e.type == "response.audio.delta"]
    text_deltas = [e for e in turn if e.type == "response.audio_transcript.delta"]
    for delta in audio_deltas + text_deltas:
        assert (delta.response_id, delta.item_id, delta.output_index, delta.content_index) == (response.id, assistant_item, 0, 0)
    sizes = [len(d.delta) for d in audio_deltas]
    assert all(size == 4800 for size in sizes[:-1]) and 0 < sizes[-1] <= 4800
    # The echo is exactly the committed window: prefix padding before the onset, the silence after it.
    window = audio[started.audio_start_ms * BYTES_PER_MS:stopped.audio_end_ms * BYTES_PER_MS]
    assert b"".join(d.delta for d in audio_deltas) == window
    transcript = by_type["response.audio_transcript.done"].transcript
    assert "".join(d.delta for d in text_deltas) == transcript and "2.5 seconds" in transcript
    done = by_type["response.done"].response
    assert (done.id, done.status, done.output[0].id) == (response.id, "completed", assistant_item)
    assert len({e.event_id for e in turn}) == len(turn) and all(e.event_id.startswith("event_") for e in turn)

    record = emulator.sessions()[0]
    assert record.audio_received == audio
    assert [{k: r[k] for k in ("id", "item_id", "status", "audio_bytes_sent", "cancel_reason")}
            for r in record.responses] == [{"id": response.id, "item_id": assistant_item, "status": "completed",
                                            "audio_bytes_sent": len(window), "cancel_reason": None}]
    appended = [e for e in record.events_received if e["type"] == "input_audio_buffer.append"]
    assert [e["audio"] for e in appended] == [len(audio)]


@pytest.mark.parametrize(("prefix", "silence_ms", "onset", "start_ms"), [
    (300, 500, 800, 500),
    (0, 200, 800, 800),
    (500, 1000, 800, 300),
    (300, 500, 100, 0),  # padding never reaches before the start of the audio
])
def test_prefix_padding_and_silence_duration_set_the_turn_boundaries(emulator, prefix, silence_ms, onset, start_ms):
    td = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": prefix, "silence_duration_ms": silence_ms}

    async def main():
        async with client(emulator, turn_detection=td) as c:
            await c.conn.input_audio_buffer.append(audio=silence(onset) + tone(1000) + silence(silence_ms + 300))
            started = await c.wait_for("input_audio_buffer.speech_started")
            stopped = await c.wait_for("input_audio_buffer.speech_stopped")
            assert (started.audio_start_ms, stopped.audio_end_ms) == (start_ms, onset + 1000 + silence_ms)

    run(main())


@pytest.mark.parametrize(("silence_ms", "turns"), [(500, 1), (200, 2)])
def test_a_pause_shorter_than_silence_duration_does_not_end_the_turn(emulator, silence_ms, turns):
    td = {"type": "server_vad", "silence_duration_ms": silence_ms, "create_response": False}

    async def main():
        async with client(emulator, turn_detection=td) as c:
            await c.conn.input_audio_buffer.append(audio=tone(500) + silence(300) + tone(500) + silence(800))
            end = await c.roundtrip()
            assert c.types(0)[:end].count("input_audio_buffer.committed") == turns

    run(main())


def test_silence_and_low_noise_never_trigger_vad_and_a_high_threshold_ignores_speech(emulator):
    async def main():
        async with client(emulator) as c:
            await c.conn.input_audio_buffer.append(audio=silence(1000) + noise(3000, -55) + noise(3000, -60))
            await c.conn.session.update(session={"turn_detection": {"type": "server_vad", "threshold": 0.95}})
            await c.conn.input_audio_buffer.append(audio=speech(2000) + silence(1000))
            end = await c.roundtrip()
            assert not [t for t in c.types()[:end] if t.startswith("input_audio_buffer.speech")]
            await c.conn.session.update(session={"turn_detection": {"type": "server_vad", "threshold": 0.5}})
            await c.conn.input_audio_buffer.append(audio=speech(500) + silence(600))
            await c.wait_for("input_audio_buffer.speech_stopped")

    run(main())


def test_without_turn_detection_commit_and_response_create_drive_the_turn(emulator):
    said = speech(800, seed=5)

    async def main():
        async with client(emulator, turn_detection=None) as c:
            await c.conn.input_audio_buffer.append(audio=said)
            await c.roundtrip()
            assert "input_audio_buffer.speech_started" not in c.types()
            mark = len(c.events)
            await c.conn.input_audio_buffer.commit()
            committed = await c.wait_for("input_audio_buffer.committed", start=mark)
            assert "response.created" not in c.types(mark)
            await c.conn.response.create()
            done = await c.wait_for("response.done", start=mark)
            echoed = b"".join(e.delta for e in c.events[mark:] if e.type == "response.audio.delta")
            assert echoed == said and done.response.status == "completed"
            assert committed.item_id == (await c.wait_for("conversation.item.created", start=mark)).item.id
            mark = len(c.events)
            await c.conn.input_audio_buffer.commit()  # nothing new appended
            error = await c.wait_for("error", start=mark)
            assert error.error.code == "input_audio_buffer_commit_empty"

    run(main())


def test_response_create_before_anything_was_said_plays_a_tone(emulator):
    async def main():
        async with client(emulator) as c:
            await c.conn.response.create()
            done = await c.wait_for("response.done")
            audio = b"".join(e.delta for e in c.events if e.type == "response.audio.delta")
            assert done.response.status == "completed" and len(audio) > 0 and any(audio)

    run(main())


def test_clear_discards_the_buffered_speech(emulator):
    async def main():
        async with client(emulator, turn_detection=None) as c:
            await c.conn.input_audio_buffer.append(audio=speech(500))
            await c.conn.input_audio_buffer.clear()
            await c.wait_for("input_audio_buffer.cleared")
            await c.conn.input_audio_buffer.commit()
            assert (await c.wait_for("error")).error.code == "input_audio_buffer_commit_empty"

    run(main())


def test_conversation_item_create_is_acknowledged_in_conversation_order(emulator):
    async def main():
        async with client(emulator) as c:
            item = UserMessageItem(content=[InputTextContentPart(text="hi")])
            await c.conn.conversation.item.create(item=item)
            first = (await c.wait_for("conversation.item.created")).item.id
            await c.conn.conversation.item.create(item=item)
            second = await c.wait_for("conversation.item.created", where=lambda e: e.item.id != first)
            assert second.previous_item_id == first and second.item.content[0].text == "hi"

    run(main())
