"""Issue 26: every headless sample of the installed azure-ai-voicelive sdist completes its flow against the
emulator, unmodified: a real client we did not write, with our pyaudio stand-in as the sound card.

The samples are interactive: a voice sample is done when the emulator has answered the stand-in
microphone's utterance with audio and the sample has played it; then it gets Ctrl+C, as a person would end
it. The telemetry samples end by themselves and must exit 0.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from support.sdk_client import KEY, url
from support.watched import WatchedProcess, clean_env
from voicebridge.emulator import Emulator

TURN_S = 60  # deadline for one sample's whole flow (the machine is shared; the flow itself takes seconds)

VOICE = ["basic_voice_assistant_async.py"]
FUNCTION_CALLING = ["async_function_calling_sample.py"]
MCP = ["async_mcp_sample.py"]
AGENT = ["agent_v2_sample.py"]
TELEMETRY = [
    "telemetry/sample_voicelive_with_azure_monitor_tracing.py",
    "telemetry/sample_voicelive_with_console_tracing.py",
    "telemetry/sample_voicelive_with_console_tracing_custom_attributes.py",
    "telemetry/sample_voicelive_with_content_recording.py",
    "telemetry/sample_voicelive_with_telemetry_enablement.py",
]
# Samples of the sdist that cannot run headless, with the reason (docs/emulator.md lists them too).
NOT_HEADLESS: dict[str, str] = {}
NOT_SAMPLES = {"utils.py": "helpers (.env loading) the samples may import, not a sample"}
HEADLESS = VOICE + FUNCTION_CALLING + MCP + AGENT + TELEMETRY


def test_every_sample_of_the_sdist_is_run_here_or_listed_with_a_reason(sdist_samples: Path):
    found = {str(p.relative_to(sdist_samples)) for p in sdist_samples.rglob("*.py")}
    assert found == set(HEADLESS) | set(NOT_HEADLESS) | set(NOT_SAMPLES)


def spoken_replies(emu: Emulator) -> list[dict]:
    return [r for s in emu.sessions() for r in s.responses
            if r["status"] == "completed" and r["audio_bytes_sent"] > 0]


def only_session(emu: Emulator):
    (session,) = emu.sessions()
    return session


def wait_for_a_spoken_reply(emu: Emulator, sample) -> None:
    assert emu.wait_until(lambda: spoken_replies(emu) or sample.ended(), TURN_S) and spoken_replies(emu), \
        sample.output()
    assert sample.wait_for_output("[pyaudio-standin] playing sound", TURN_S), sample.output()


@pytest.mark.parametrize("script", VOICE)
def test_a_voice_sample_gets_a_spoken_reply_and_plays_it(script, samples_dir, run_sample, fresh_emulator):
    sample = run_sample(samples_dir / script, url(fresh_emulator))
    wait_for_a_spoken_reply(fresh_emulator, sample)
    assert sample.interrupt() == 0, sample.output()
    # Ctrl+C closes the connection properly: the session ends closed by the client, not dropped.
    assert fresh_emulator.wait_until(lambda: not only_session(fresh_emulator).open, TURN_S)
    session = only_session(fresh_emulator)
    assert session.closed_by_client and (session.model, session.credential) == ("gpt-realtime", "api-key")


@pytest.mark.parametrize("script", FUNCTION_CALLING)
def test_a_function_calling_sample_runs_the_call_sends_its_output_and_gets_the_follow_up_reply(
        script, samples_dir, run_sample, fresh_emulator):
    # The emulator has no model: it is told which call the response to the utterance makes.
    fresh_emulator.calls.queue([{"name": "get_current_weather", "arguments": {"location": "Seattle, WA"}}])
    sample = run_sample(samples_dir / script, url(fresh_emulator))

    def answered() -> bool:
        return any(i["type"] == "function_call_output" for s in fresh_emulator.sessions() for i in s.items_received)

    assert fresh_emulator.wait_until(lambda: (answered() and spoken_replies(fresh_emulator)) or sample.ended(),
                                     TURN_S), sample.output()
    assert sample.wait_for_output("Final response transcript: The tool answered:", TURN_S), sample.output()
    assert sample.interrupt() == 0, sample.output()
    session = only_session(fresh_emulator)
    (call_response, reply) = session.responses
    assert call_response["function_calls"] == ["get_current_weather"] and call_response["status"] == "completed"
    (output,) = [i for i in session.items_received if i["type"] == "function_call_output"]
    # The sample ran its own get_current_weather with the arguments the emulator streamed.
    assert json.loads(output["output"])["location"] == "Seattle, WA"
    assert reply["status"] == "completed" and reply["audio_bytes_sent"] > 0


@pytest.mark.parametrize("script", MCP)
def test_the_mcp_sample_declares_its_servers_and_gets_a_spoken_reply(script, samples_dir, run_sample, fresh_emulator):
    sample = run_sample(samples_dir / script, url(fresh_emulator))
    wait_for_a_spoken_reply(fresh_emulator, sample)
    assert sample.interrupt() == 0, sample.output()
    tools = only_session(fresh_emulator).config["tools"]
    assert [(t["type"], t["server_label"], t.get("require_approval")) for t in tools] == [
        ("mcp", "deepwiki", "never"), ("mcp", "azure_doc", "always")]
    assert not sample.said("VoiceLive error")


@pytest.mark.parametrize("script", AGENT)
def test_the_agent_sample_connects_in_agent_mode_and_gets_a_spoken_reply(script, samples_dir, run_sample,
                                                                         fresh_emulator):
    sample = run_sample(samples_dir / script, url(fresh_emulator), AGENT_NAME="concierge",
                        AGENT_PROJECT_NAME="voice-demo", AGENT_VERSION="3")
    wait_for_a_spoken_reply(fresh_emulator, sample)
    assert sample.interrupt() == 0, sample.output()
    agent = only_session(fresh_emulator).config["agent"]
    assert (agent["name"], agent["agent_id"]) == ("concierge", "concierge:3")
    assert agent["thread_id"].startswith("conv_")
    assert not sample.said("VoiceLive error")


@pytest.mark.parametrize("script", TELEMETRY)
def test_a_telemetry_sample_gets_its_text_reply_and_exits_0(script, samples_dir, run_sample, fresh_emulator):
    # Azure Monitor's exporter needs a connection string; this one points at a port nothing listens on.
    sample = run_sample(samples_dir / script, url(fresh_emulator), APPLICATIONINSIGHTS_CONNECTION_STRING=(
        "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=http://127.0.0.1:9/"),
        APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL="true")
    assert sample.finish(TURN_S) == 0, sample.output()
    # Each prints every event it receives and stops at response.done. A text-only session's reply is text.
    received = [line.removeprefix("Received event: ") for line in sample.lines if line.startswith("Received event: ")]
    assert received[-1] == "response.done" and "response.text.done" in received, sample.output()
    assert not any(t.startswith("response.audio") for t in received)
    (reply,) = only_session(fresh_emulator).responses
    assert reply["status"] == "completed" and reply["audio_bytes_sent"] == 0


def test_the_standalone_emulator_serves_a_sample_and_logs_what_the_connection_did(samples_dir, run_sample, tmp_path):
    """`make emulator` is `python -m voicebridge emulator`: the operator's view is its log at INFO."""
    emulator = WatchedProcess([sys.executable, "-m", "voicebridge", "emulator", "--port", "0", "--pace", "0",
                               "--require-key", KEY], tmp_path, clean_env())
    try:
        listening = emulator.wait_for_line(lambda line: "listening on http://" in line, TURN_S)
        assert listening, emulator.output()
        endpoint = re.search(r"http://[\d.]+:\d+", listening).group(0)
        sample = run_sample(samples_dir / "basic_voice_assistant_async.py", endpoint)
        assert sample.wait_for_output("[pyaudio-standin] playing sound", TURN_S), sample.output()
        assert sample.interrupt() == 0, sample.output()
        ended = emulator.wait_for_line(lambda line: "event=emulator.session_ended" in line, TURN_S)
        assert ended, emulator.output()
    finally:
        stopped = emulator.interrupt()
    assert re.search(r"INFO voicebridge.emulator event=emulator.session_ended session=sess_\w+ model=gpt-realtime "
                     r"user_turns=1 responses=1 completed=1 function_calls=0 close_code=1000$", ended), ended
    # Nothing per audio chunk or event: the start line and this one.
    assert [line for line in emulator.lines if "voicebridge.emulator" in line] == [listening, ended]
    assert stopped == 0
