"""Fault knobs: dropped connections, injected errors, added latency, runtime changes, shutdown."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from test_turns import TURN, collapse_deltas

from support.sdk_client import KEY, client, run, silence, speech, url


async def raw_connection(http: aiohttp.ClientSession, emu):
    ws = await http.ws_connect(url(emu) + "/voice-live/realtime?model=m", headers={"api-key": KEY})
    assert (await ws.receive_json(timeout=5))["type"] == "session.created"
    return ws


async def assert_vanished(ws) -> None:
    """The connection ended without a close frame, as on a network failure."""
    msg = await ws.receive(timeout=10)
    assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR), msg
    assert ws.close_code in (None, 1006)


def test_drop_after_s_aborts_each_connection_without_a_close_frame(make_emulator):
    emu = make_emulator(drop_after_s=0.3)

    async def main():
        async with aiohttp.ClientSession() as http:
            await assert_vanished(await raw_connection(http, emu))
        async with client(emu) as c:  # the SDK notices the loss too
            await c.until(lambda: c.closed)

    run(main())
    assert emu.wait_until(lambda: not any(s.open for s in emu.sessions()))
    assert [s.closed_by_client for s in emu.sessions()] == [False, False]


def test_drop_now_hits_only_the_chosen_session(emulator):
    async def main():
        async with client(emulator) as victim, client(emulator) as bystander:
            victim_id = victim.events[0].session.id
            assert emulator.drop(victim_id) == 1
            await victim.until(lambda: victim.closed)
            await bystander.roundtrip()
            assert not bystander.closed

    run(main())


def test_injected_error_reaches_one_session_which_carries_on(emulator):
    async def main():
        async with client(emulator) as target, client(emulator) as other:
            sent = emulator.inject_error(code="server_error", message="The model had a hiccup.",
                                         session_id=target.events[0].session.id)
            assert sent == 1
            error = (await target.wait_for("error")).error
            assert (error.type, error.code, error.message) == ("server_error", "server_error", "The model had a hiccup.")
            await target.conn.input_audio_buffer.append(audio=speech(500) + silence(600))
            assert (await target.wait_for("response.done")).response.status == "completed"
            await other.roundtrip()
            assert "error" not in other.types()
            assert emulator.inject_error(code="rate_limit_exceeded", message="Slow down.") == 2
            assert (await other.wait_for("error")).error.type == "invalid_request_error"

    run(main())


def test_latency_delays_every_event_and_keeps_their_order(make_emulator):
    emu = make_emulator(latency_ms=150)

    async def main():
        async with client(emu, input_audio_transcription={"model": "gpt-4o-transcribe"}) as c:
            began = time.monotonic()
            await c.roundtrip()
            assert time.monotonic() - began >= 0.15  # a lower bound the knob guarantees, not a speed claim
            mark = len(c.events)
            await c.conn.input_audio_buffer.append(audio=silence(300) + speech(700) + silence(600))
            done = await c.wait_for("response.done", start=mark)
            assert collapse_deltas(c.types(mark)[:c.events.index(done) + 1 - mark]) == TURN

    run(main())


def test_auth_knobs_change_at_runtime_and_bad_settings_are_refused(emulator):
    from azure.ai.voicelive.aio import ConnectionError as VoiceLiveConnectionError

    async def main():
        emulator.update_config(required_key="new-key")
        with pytest.raises(VoiceLiveConnectionError):
            async with client(emulator, key=KEY):
                pass
        async with client(emulator, key="new-key"):
            pass

    run(main())
    with pytest.raises(ValueError, match="unknown"):
        emulator.update_config(latency=5)
    with pytest.raises(ValueError, match="pace"):
        emulator.update_config(pace=-1)


def test_stop_closes_every_session_and_the_records_say_the_server_closed(make_emulator):
    emu = make_emulator()

    async def main():
        async with client(emu) as c:
            await asyncio.to_thread(emu.stop)
            await c.until(lambda: c.closed)

    run(main())
    assert [(s.open, s.closed_by_client) for s in emu.sessions()] == [(False, False)]
