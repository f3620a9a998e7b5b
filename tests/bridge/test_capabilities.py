"""Issue 19 findings 1 and 2: the capability table per model family, the defaults it chooses, the
combinations it refuses at startup, and the same table in the emulator refusing them like the service."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from test_front_end_settings import sent_session

from support.sdk_client import client, run
from voicebridge import capabilities
from voicebridge.settings import Settings, SettingsError
from voicebridge.upstream import session_config


def test_every_family_defaults_pass_its_own_rules():
    for fam in capabilities.FAMILIES:
        kind, _ = fam.default_voice
        choice = capabilities.Choice(transcription_model=fam.default_transcription, voice_kind=kind)
        assert capabilities.problems(fam, choice) == [], fam.name
        for model in fam.models:
            assert capabilities.family_of(model) is fam
    assert capabilities.family_of("gpt-realtime-2025-08-28").name == "realtime"
    assert capabilities.family_of("my-own-deployment") is None


@pytest.mark.parametrize(("model", "transcription"), [("gpt-realtime", "gpt-4o-transcribe"),
                                                       ("gpt-realtime-mini", "gpt-4o-transcribe"),
                                                       ("gpt-4.1", "azure-speech"), ("phi4-mm-realtime", "azure-speech")])
def test_the_default_transcription_model_is_the_models_own(model, transcription):
    settings = Settings.from_env({"VOICE_LIVE_MODEL": model})
    assert session_config(settings).as_dict()["input_audio_transcription"] == {"model": transcription}


def test_voices_go_as_typed_objects_and_only_set_vad_values_are_sent():
    sent = session_config(Settings.from_env({"VOICE_LIVE_VOICE": "alloy"})).as_dict()
    assert sent["voice"] == {"type": "openai", "name": "alloy"}
    assert set(sent["turn_detection"]) == {"type", "create_response", "interrupt_response"}
    native = session_config(Settings.from_env({"VOICE_LIVE_MODEL": "azure-realtime"})).as_dict()
    assert native["voice"] == {"type": "azure-realtime-native", "name": "ava"}
    padded = session_config(Settings.from_env({"VOICE_LIVE_VAD_PREFIX_PADDING_MS": "200"})).as_dict()
    assert padded["turn_detection"]["prefix_padding_ms"] == 200 and "threshold" not in padded["turn_detection"]


@pytest.mark.parametrize("variant", ["semantic_detection_v1", "semantic_detection_v1_en",
                                     "semantic_detection_v1_multilingual"])
def test_end_of_utterance_variants_serialize_as_themselves_also_on_server_vad(variant):
    settings = Settings.from_env({"VOICE_LIVE_MODEL": "gpt-4.1", "VOICE_LIVE_END_OF_UTTERANCE": variant})
    assert settings.turn_detection == "server_vad"
    sent = session_config(settings).as_dict()["turn_detection"]
    assert sent["end_of_utterance_detection"] == {"model": variant}


@pytest.mark.parametrize(
    ("env", "variable", "hint"),
    [
        ({"VOICE_LIVE_TRANSCRIPTION_MODEL": "azure-speech"}, "VOICE_LIVE_TRANSCRIPTION_MODEL", "gpt-4o-transcribe"),
        ({"VOICE_LIVE_MODEL": "gpt-4.1", "VOICE_LIVE_NOISE_REDUCTION": "near_field"}, "VOICE_LIVE_NOISE_REDUCTION",
         "azure_deep_noise_suppression"),
        ({"VOICE_LIVE_MODEL": "gpt-4.1", "VOICE_LIVE_VOICE": "alloy"}, "VOICE_LIVE_VOICE", "azure-standard"),
        ({"VOICE_LIVE_MODEL": "gpt-4.1", "VOICE_LIVE_TRANSCRIPTION_MODEL": "whisper-1"},
         "VOICE_LIVE_TRANSCRIPTION_MODEL", "azure-speech"),
        ({"VOICE_LIVE_MODEL": "azure-realtime", "VOICE_LIVE_VOICE": "en-US-AvaNeural"}, "VOICE_LIVE_VOICE",
         "azure-realtime-native"),
        ({"VOICE_LIVE_END_OF_UTTERANCE": "semantic_detection_v1_en"}, "VOICE_LIVE_END_OF_UTTERANCE", "empty"),
        ({"VOICE_LIVE_VAD_THRESHOLD": "1.0"}, "VOICE_LIVE_VAD_THRESHOLD", "0.99"),
        ({"VOICE_LIVE_VAD_THRESHOLD": "0"}, "VOICE_LIVE_VAD_THRESHOLD", "0.01"),
        # The session's temperature is 0.0 to 1.0; the realtime models take 0.6 and more of it.
        ({"VOICE_LIVE_TEMPERATURE": "0.3"}, "VOICE_LIVE_TEMPERATURE", "0.6 to 1.0"),
        ({"VOICE_LIVE_MODEL": "gpt-4.1", "VOICE_LIVE_TEMPERATURE": "1.1"}, "VOICE_LIVE_TEMPERATURE", "1.0"),
    ],
)
def test_impossible_combinations_are_refused_naming_the_variables_and_what_works(env, variable, hint):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert caught.value.variable == variable
    assert hint in str(caught.value)
    if variable != "VOICE_LIVE_VAD_THRESHOLD" and env.get("VOICE_LIVE_TEMPERATURE") != "1.1":
        assert "VOICE_LIVE_MODEL=" in str(caught.value)


def test_the_cascaded_model_with_defaults_starts():
    """`VOICE_LIVE_MODEL=gpt-4.1` with nothing else is a valid configuration (its transcription: azure-speech)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "VOICE_LIVE_", "VOICEBRIDGE_"))}
    done = subprocess.run(
        [sys.executable, "-c", "from voicebridge.settings import Settings; import os; "
         "s = Settings.from_env(os.environ); print(s.transcription)"],
        env={**base, "VOICE_LIVE_MODEL": "gpt-4.1"}, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "azure-speech"


def test_the_default_configuration_is_accepted_by_the_strict_emulator(request, emulator):
    """Finding 1: the session.update the app sends by default is one the service accepts for gpt-realtime."""
    session = sent_session(request, emulator, {})
    assert session["input_audio_transcription"] == {"model": "gpt-4o-transcribe"}
    assert "prefix_padding_ms" not in session["turn_detection"]
    assert session["voice"] == {"type": "azure-standard", "name": "en-US-AvaNeural"}


@pytest.mark.parametrize(
    ("model", "update", "param"),
    [
        ("gpt-realtime", {"input_audio_transcription": {"model": "azure-speech"}},
         "session.input_audio_transcription.model"),
        ("gpt-4.1", {"input_audio_transcription": {"model": "gpt-4o-transcribe"}},
         "session.input_audio_transcription.model"),
        ("gpt-4.1", {"input_audio_noise_reduction": {"type": "near_field"}}, "session.input_audio_noise_reduction.type"),
        ("gpt-4.1", {"voice": {"type": "openai", "name": "alloy"}}, "session.voice"),
        ("azure-realtime", {"voice": {"type": "azure-standard", "name": "en-US-AvaNeural"}}, "session.voice"),
        ("gpt-realtime", {"turn_detection": {"type": "server_vad", "threshold": 1.0}},
         "session.turn_detection.threshold"),
        ("gpt-realtime", {"temperature": 0.3}, "session.temperature"),
        ("gpt-4.1", {"temperature": 1.1}, "session.temperature"),
        ("phi4-mm-realtime", {"turn_detection": {"type": "azure_semantic_vad",
                                                 "end_of_utterance_detection": {"model": "semantic_detection_v1"}}},
         "session.turn_detection.end_of_utterance_detection"),
    ],
)
def test_the_emulator_refuses_what_the_models_family_does_not_support(emulator, model, update, param):
    async def scenario():
        async with client(emulator, model=model) as c:
            mark = len(c.events)
            await c.conn.send({"type": "session.update", "event_id": "evt-caps", "session": update})
            return await c.wait_for("error", start=mark)

    error = run(scenario()).error
    assert (error.type, error.code, error.param, error.event_id) == ("invalid_request_error", "invalid_value", param,
                                                                     "evt-caps")


@pytest.mark.parametrize(("model", "update"), [
    ("gpt-4.1", {"turn_detection": {"type": "server_vad",
                                    "end_of_utterance_detection": {"model": "semantic_detection_v1_multilingual"}}}),
    ("azure-realtime", {"voice": {"type": "azure-realtime-native", "name": "ava"}}),
    ("gpt-4.1", {"temperature": 0.2}),
    ("gpt-realtime", {"temperature": 1.0}),
    ("gpt-realtime", {"input_audio_noise_reduction": {"type": "near_field"},
                      "input_audio_transcription": {"model": "gpt-4o-mini-transcribe"}}),
])
def test_the_emulator_accepts_what_the_reference_allows(emulator, model, update):
    async def scenario():
        async with client(emulator, model=model, **update) as c:
            return c.types()

    assert "error" not in run(scenario())


def test_the_docs_carry_the_table_and_name_every_rules_source():
    """README's table and docs/emulator.md's rules are the capability table's, each rule with its source."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("### What each model takes"):]
    for fam in capabilities.FAMILIES:
        row = next(line for line in table.splitlines() if line.startswith(f"| {fam.name} |"))
        assert f"**{fam.default_transcription}**" in row, fam.name
        assert all(m.split("-")[0] in row for m in fam.models), fam.name
    emulator_md = (root / "docs" / "emulator.md").read_text(encoding="utf-8")
    section = emulator_md[emulator_md.index("## Validation"):emulator_md.index("## Usage")]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith(("| Rule", "| ---"))]
    assert len(rows) >= 8 and all(re.search(r"\[(REF|HOWTO|SDK|QUOTAS|RT)\]", row) for row in rows)
    for model in capabilities.OPENAI_TRANSCRIPTION + capabilities.NOISE_REDUCTION_TYPES + capabilities.END_OF_UTTERANCE_MODELS[:1]:
        assert model in section, model
