"""Barge-in, response.cancel and conversation.item.truncate, with the service's events and errors."""

from __future__ import annotations

from support.sdk_client import BYTES_PER_MS, client, run, silence, speech

ONE_TURN = silence(300) + speech(1500, seed=1) + silence(700)


async def streaming_reply(c):
    """Start a turn and return once the reply is audibly under way (first audio delta)."""
    mark = len(c.events)
    await c.conn.input_audio_buffer.append(audio=ONE_TURN)
    return await c.wait_for("response.audio.delta", start=mark)


def test_speech_during_a_reply_cancels_it_with_turn_detected_after_speech_started(make_emulator):
    emu = make_emulator(pace=1.0)  # real-time pacing keeps the reply streaming while the user barges in

    async def main():
        async with client(emu) as c:
            first = await streaming_reply(c)
            mark = len(c.events)
            await c.conn.input_audio_buffer.append(audio=speech(600, seed=2) + silence(700))
            done = await c.wait_for("response.done", start=mark)
            after = c.events[mark:c.events.index(done) + 1]
            # Only the deltas already queued before the barge-in may precede speech_started; the cancellation
            # is asynchronous, so the new turn's input events may come before the cancelled response's end.
            types = [e.type for e in after if e.type not in ("response.audio.delta", "response.audio_transcript.delta")
                     and not e.type.startswith("input_audio_buffer.") and e.type != "conversation.item.created"]
            assert next(e for e in after if not e.type.startswith("response.audio")).type == \
                "input_audio_buffer.speech_started"
            assert types == ["response.output_item.done", "response.done"]
            started_at = next(i for i, e in enumerate(after) if e.type == "input_audio_buffer.speech_started")
            assert not [e for e in after[started_at:] if e.type == "response.audio.delta"]
            assert after[-2].item.status == "incomplete"
            assert done.response.id == first.response_id and done.response.status == "cancelled"
            assert dict(done.response.status_details) == {"type": "cancelled", "reason": "turn_detected"}
            # The new turn gets its own complete reply, and nothing more of the old one arrives.
            second = await c.wait_for("response.done", start=c.events.index(done) + 1, timeout=15)
            assert second.response.status == "completed"
            assert not [e for e in c.events[c.events.index(done):] if getattr(e, "response_id", None) == first.response_id]
        assert [(r["status"], r["cancel_reason"]) for r in emu.sessions()[0].responses] == [
            ("cancelled", "turn_detected"), ("completed", None)]

    run(main())


def test_interrupt_response_false_lets_the_reply_finish(make_emulator):
    emu = make_emulator(pace=1.0)

    async def main():
        async with client(emu, turn_detection={"type": "server_vad", "interrupt_response": False}) as c:
            first = await streaming_reply(c)
            await c.conn.input_audio_buffer.append(audio=speech(400, seed=2) + silence(700))
            await c.wait_for("input_audio_buffer.speech_started", start=c.events.index(first))
            done = await c.wait_for("response.done", where=lambda e: e.response.id == first.response_id, timeout=15)
            assert done.response.status == "completed"

    run(main())


def test_response_cancel_cancels_the_active_reply_and_errors_benignly_without_one(make_emulator):
    emu = make_emulator(pace=1.0)

    async def main():
        async with client(emu) as c:
            await c.conn.response.cancel()
            error = (await c.wait_for("error")).error
            assert (error.type, error.code, error.message) == (
                "invalid_request_error", "response_cancel_not_active", "Cancellation failed: no active response found")
            first = await streaming_reply(c)
            await c.conn.response.cancel()
            done = await c.wait_for("response.done", start=c.events.index(first))
            assert (done.response.status, done.response.status_details.reason) == ("cancelled", "client_cancelled")
            mark = len(c.events)
            await c.conn.response.cancel()
            assert (await c.wait_for("error", start=mark)).error.code == "response_cancel_not_active"
        assert emu.sessions()[0].responses[0]["cancel_reason"] == "client_cancelled"

    run(main())


def test_response_cancel_naming_another_response_leaves_the_active_one_alone(make_emulator):
    emu = make_emulator(pace=1.0)

    async def main():
        async with client(emu) as c:
            first = await streaming_reply(c)
            mark = len(c.events)
            await c.conn.response.cancel(response_id="resp_not_this_one")
            assert (await c.wait_for("error", start=mark)).error.code == "response_cancel_not_active"
            await c.conn.response.cancel(response_id=first.response_id)
            done = await c.wait_for("response.done", start=c.events.index(first))
            assert done.response.status == "cancelled"

    run(main())


def test_truncate_records_valid_cuts_and_rejects_unknown_items_and_cuts_past_the_end(emulator):
    async def main():
        async with client(emulator) as c:
            await c.conn.input_audio_buffer.append(audio=ONE_TURN)
            done = await c.wait_for("response.done")
            item_id = done.response.output[0].id
            heard_ms = sum(len(e.delta) for e in c.events if e.type == "response.audio.delta") // BYTES_PER_MS

            await c.conn.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=heard_ms + 1)
            error = (await c.wait_for("error")).error
            assert error.code == "invalid_value"
            assert error.message == f"Audio content of {heard_ms}ms is already shorter than {heard_ms + 1}ms"

            await c.conn.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=250)
            truncated = await c.wait_for("conversation.item.truncated")
            assert (truncated.item_id, truncated.content_index, truncated.audio_end_ms) == (item_id, 0, 250)

            mark = len(c.events)
            # After the cut the item is 250 ms long, so a later cut beyond that fails too.
            await c.conn.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=300)
            assert "already shorter than 300ms" in (await c.wait_for("error", start=mark)).error.message
            mark = len(c.events)
            await c.conn.conversation.item.truncate(item_id="item_nope", content_index=0, audio_end_ms=0)
            error = (await c.wait_for("error", start=mark)).error
            assert (error.code, error.param) == ("item_not_found", "item_id")
        assert emulator.sessions()[0].truncations == [{"item_id": item_id, "content_index": 0, "audio_end_ms": 250}]

    run(main())
