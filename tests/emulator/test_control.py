"""The HTTP control surface (for out-of-process users) and the command line."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from azure.ai.voicelive.aio import ConnectionError as VoiceLiveConnectionError
from azure.ai.voicelive.aio import connect
from azure.core.credentials import AzureKeyCredential

from support.sdk_client import client, run, silence, speech, url

SRC = Path(__file__).resolve().parents[2] / "src"


def test_control_endpoints_report_sessions_and_drive_faults(emulator):
    async def main():
        async with aiohttp.ClientSession() as http, client(emulator) as c:
            async with http.get(url(emulator) + "/healthz") as response:
                assert response.status == 200
            await c.conn.input_audio_buffer.append(audio=silence(200) + speech(400) + silence(600))
            await c.wait_for("response.done")
            async with http.get(url(emulator) + "/emulator/sessions") as response:
                [session] = await response.json()
            assert session["id"] == c.events[0].session.id and session["open"] is True
            assert session["responses"][0]["status"] == "completed"
            envelope = session["audio_received"]["rms_20ms"]
            assert session["audio_received"]["bytes"] == 1200 * 48 and len(envelope) == 60
            # -20 dBFS speech between digital silence shows up in the envelope.
            assert max(envelope[:10]) == 0 and min(envelope[10:30]) > 0.05 and max(envelope[30:]) == 0

            async with http.post(url(emulator) + "/emulator/faults", json={"latency_ms": 5, "pace": 0.5}) as response:
                assert response.status == 200 and (await response.json())["latency_ms"] == 5
            assert (emulator.config.latency_ms, emulator.config.pace) == (5, 0.5)
            async with http.post(url(emulator) + "/emulator/faults", json={"nonsense": 1}) as response:
                assert response.status == 400

            body = {"session_id": session["id"], "code": "server_error", "message": "Injected over HTTP."}
            async with http.post(url(emulator) + "/emulator/inject", json=body) as response:
                assert (await response.json()) == {"sessions": 1}
            assert (await c.wait_for("error")).error.message == "Injected over HTTP."

            async with http.post(url(emulator) + "/emulator/drop", json={}) as response:
                assert (await response.json()) == {"dropped": 1}
            await c.until(lambda: c.closed)

    run(main())


def read_url(process: subprocess.Popen, deadline: float) -> str:
    """The CLI logs its URL once it is serving; read stderr until then (bounded, no blocking read)."""
    selector = selectors.DefaultSelector()
    selector.register(process.stderr, selectors.EVENT_READ)
    seen = b""
    while time.monotonic() < deadline:
        if selector.select(timeout=deadline - time.monotonic()):
            chunk = os.read(process.stderr.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
            if match := re.search(rb"listening on (http://\S+)", seen):
                return match.group(1).decode()
    raise AssertionError(f"emulator CLI did not report its URL: {seen.decode(errors='replace')}")


@pytest.fixture
def cli_emulator():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-m", "voicebridge.emulator", "--port", "0", "--require-key", "cli-key",
                                "--pace", "0"], stderr=subprocess.PIPE, env=env)
    try:
        yield process, read_url(process, time.monotonic() + 20)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        process.stderr.close()


def test_cli_serves_the_protocol_honours_its_options_and_exits_cleanly_on_sigterm(cli_emulator):
    process, base = cli_emulator

    async def main():
        async with aiohttp.ClientSession() as http, http.get(base + "/healthz") as response:
            assert response.status == 200
        with pytest.raises(VoiceLiveConnectionError):
            async with connect(endpoint=base, credential=AzureKeyCredential("wrong"), model="m"):
                pass
        async with connect(endpoint=base, credential=AzureKeyCredential("cli-key"), model="m") as conn:
            assert (await conn.recv()).type == "session.created"
            await conn.response.create()
            async for event in conn:
                if event.type == "response.done":
                    return event.response.status
        return None

    assert run(main()) == "completed"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
