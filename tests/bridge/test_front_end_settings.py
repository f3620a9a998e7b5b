"""Voice Live's audio front end from the environment to session.update (issue 11), through the real app
and the unmodified SDK to the emulator; and each bad value stopping startup with a message naming it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from support.apps import start_app
from support.tab import Tab

FRONT_END = {
    "VOICE_LIVE_MODEL": "gpt-4.1",  # end-of-utterance detection: a cascaded model (capabilities.py)
    "VOICE_LIVE_TURN_DETECTION": "azure_semantic_vad_multilingual",
    "VOICE_LIVE_END_OF_UTTERANCE": "semantic_detection_v1",
    "VOICE_LIVE_NOISE_REDUCTION": "azure_deep_noise_suppression",
    "VOICE_LIVE_ECHO_CANCELLATION": "true",
    "VOICE_LIVE_TEMPERATURE": "0.7",
    "VOICE_LIVE_VAD_THRESHOLD": "0.6",
}


def sent_session(request, emulator, extra: dict[str, str]) -> dict:
    """The session object of the session.update the app sent for one tab."""
    app = start_app(request, {
        "AZURE_VOICE_LIVE_ENDPOINT": f"http://127.0.0.1:{emulator.port}",
        "AZURE_VOICE_LIVE_API_KEY": "test-key",
        **extra,
    })
    known = {r.id for r in emulator.sessions()}
    tab = Tab(app.url)
    try:
        tab.start()
        tab.wait_state("ready")
    finally:
        tab.close()
    (record,) = [r for r in emulator.sessions() if r.id not in known]
    (update,) = [e for e in record.events_received if e.get("type") == "session.update"]
    return update["session"]


def test_each_front_end_setting_reaches_session_update(request, emulator):
    session = sent_session(request, emulator, FRONT_END)
    assert session["turn_detection"]["type"] == "azure_semantic_vad_multilingual"
    assert session["turn_detection"]["end_of_utterance_detection"] == {"model": "semantic_detection_v1"}
    assert session["turn_detection"]["threshold"] == 0.6  # the VAD variables still apply
    assert session["input_audio_noise_reduction"] == {"type": "azure_deep_noise_suppression"}
    assert session["input_audio_echo_cancellation"] == {"type": "server_echo_cancellation"}
    assert session["temperature"] == 0.7


def test_unset_keeps_todays_configuration_and_sends_no_tools(request, emulator):
    session = sent_session(request, emulator, {})
    assert session["turn_detection"]["type"] == "server_vad"
    assert "end_of_utterance_detection" not in session["turn_detection"]
    for absent in ("input_audio_noise_reduction", "input_audio_echo_cancellation", "temperature", "tools", "tool_choice"):
        assert absent not in session, absent


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"VOICE_LIVE_TURN_DETECTION": "semantic"}, "VOICE_LIVE_TURN_DETECTION"),
        ({"VOICE_LIVE_END_OF_UTTERANCE": "semantic_detection_v1"}, "VOICE_LIVE_END_OF_UTTERANCE"),  # server_vad
        ({"VOICE_LIVE_TURN_DETECTION": "azure_semantic_vad", "VOICE_LIVE_END_OF_UTTERANCE": "v9"},
         "VOICE_LIVE_END_OF_UTTERANCE"),
        ({"VOICE_LIVE_NOISE_REDUCTION": "studio"}, "VOICE_LIVE_NOISE_REDUCTION"),
        ({"VOICE_LIVE_ECHO_CANCELLATION": "sometimes"}, "VOICE_LIVE_ECHO_CANCELLATION"),
        ({"VOICE_LIVE_TEMPERATURE": "1.5"}, "VOICE_LIVE_TEMPERATURE"),
        ({"VOICE_LIVE_TEMPERATURE": "warm"}, "VOICE_LIVE_TEMPERATURE"),
        ({"VOICEBRIDGE_TOOLS": "no_such_tools_module"}, "VOICEBRIDGE_TOOLS"),
        ({"VOICEBRIDGE_TOOLS": "not a module!"}, "VOICEBRIDGE_TOOLS"),
        ({"VOICEBRIDGE_TOOLS": "json"}, "VOICEBRIDGE_TOOLS"),  # importable, but declares no tool
        ({"VOICEBRIDGE_TOOL_TIMEOUT_SECONDS": "0"}, "VOICEBRIDGE_TOOL_TIMEOUT_SECONDS"),
    ],
)
def test_a_bad_value_stops_startup_naming_the_variable(env, variable):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "VOICE_LIVE_", "VOICEBRIDGE_"))}
    done = subprocess.run(
        [sys.executable, "-m", "voicebridge", "serve", "--port", "0"],
        env={**base, **env}, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert f"invalid configuration: {variable}:" in done.stderr
