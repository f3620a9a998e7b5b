"""Emulator mode keeps bounded records: `make run` may serve for days (issue 10, finding 10)."""

from __future__ import annotations

import json
import urllib.request

from support.sdk_client import client, run, silence, url
from voicebridge.app import start_bridge
from voicebridge.emulator import Emulator, EmulatorConfig
from voicebridge.settings import Settings


def test_only_the_latest_closed_sessions_are_kept():
    emu = Emulator(EmulatorConfig(record_max_sessions=2, record_max_audio_s=0.1))
    emu.start(port=0)
    try:
        async def sessions(n: int) -> list[str]:
            ids = []
            for _ in range(n):
                async with client(emu) as c:
                    await c.conn.input_audio_buffer.append(audio=silence(500))
                    await c.roundtrip()
                    ids.append(c.events[0].session.id)
            return ids

        ids = run(sessions(5))
        assert emu.wait_until(lambda: not any(s.open for s in emu.sessions()))
        kept = emu.sessions()
        assert [s.id for s in kept] == ids[-2:]
        assert all(len(s.audio_received) == 100 * 48 for s in kept)  # 0.1 s of the 0.5 s appended
        with urllib.request.urlopen(url(emu) + "/emulator/sessions", timeout=10) as response:
            shown = json.loads(response.read())
        assert [s["id"] for s in shown] == ids[-2:]
        assert [s["audio_received"]["bytes"] for s in shown] == [100 * 48, 100 * 48]
    finally:
        emu.stop()


def test_the_built_in_emulator_keeps_little_per_session_and_few_sessions():
    bridge = start_bridge(Settings())
    try:
        config = bridge.emulator.config
        assert config.record_max_sessions <= 20
        assert config.record_max_audio_s <= 10
        assert config.record_max_events <= 1000
    finally:
        bridge.shutdown(timeout=1.0)
