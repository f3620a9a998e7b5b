"""Unit tests for the pure parts: the state machine, settings validation and the browser protocol."""

from __future__ import annotations

import base64
import json

import pytest

from voicebridge import protocol
from voicebridge.protocol import Audio, Playback, ProtocolError, Start, Stop
from voicebridge.session import StateMachine
from voicebridge.settings import Settings, SettingsError


def drive(machine: StateMachine, *steps: str) -> list[str | None]:
    return [getattr(machine, step)() if step != "connecting" else machine.connecting(False) for step in steps]


def test_state_machine_full_turn():
    machine = StateMachine()
    assert drive(
        machine, "connecting", "session_updated", "speech_started", "speech_stopped", "audio_delta", "audio_delta",
        "response_finished",
    ) == ["connecting", "ready", "listening", "processing", "speaking", None, "ready"]


def test_state_machine_barge_in_stays_listening_when_the_cancelled_response_ends():
    machine = StateMachine()
    drive(machine, "connecting", "session_updated", "speech_started", "speech_stopped", "audio_delta")
    assert machine.speech_started() == "listening"
    assert machine.response_finished() is None
    assert machine.state == "listening"


def test_state_machine_ignores_events_before_ready_and_after_stop():
    machine = StateMachine()
    assert machine.speech_started() is None and machine.audio_delta() is None
    machine.connecting(False)
    assert machine.speech_started() is None
    machine.session_updated()
    assert machine.stopped() == "stopped"
    assert machine.session_updated() is None and machine.audio_delta() is None


def test_state_machine_reconnect():
    machine = StateMachine()
    drive(machine, "connecting", "session_updated")
    assert machine.connecting(True) == "reconnecting"
    assert machine.session_updated() == "ready"


def test_settings_defaults_without_environment():
    settings = Settings.from_env({})
    assert settings.use_emulator
    assert (settings.model, settings.voice_choice, settings.port) == (
        "gpt-realtime", ("azure-standard", "en-US-AvaNeural"), 8000)
    assert settings.voice_is_azure


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("AZURE_VOICE_LIVE_ENDPOINT", "ftp://example", "http(s) URL"),
        ("VOICE_LIVE_VAD_THRESHOLD", "1.5", "between 0.01 and 0.99"),
        ("VOICE_LIVE_VAD_THRESHOLD", "loud", "float"),
        ("VOICE_LIVE_VAD_SILENCE_DURATION_MS", "20", "between 50 and 10000"),
        ("VOICE_LIVE_VOICE", "robot", "alloy"),
        ("PORT", "http", "int"),
        ("VOICEBRIDGE_TELEMETRY", "loud", "console"),
        ("VOICEBRIDGE_TELEMETRY_TRANSCRIPTS", "maybe", "true or false"),
    ],
)
def test_bad_settings_name_the_variable_and_what_is_allowed(variable, value, expected):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: value})
    assert caught.value.variable == variable
    assert str(caught.value).startswith(variable)
    assert expected in str(caught.value)


def test_settings_voice_kinds():
    assert Settings.from_env({"VOICE_LIVE_VOICE": "Alloy"}).voice == "alloy"
    assert not Settings.from_env({"VOICE_LIVE_VOICE": "alloy"}).voice_is_azure
    assert Settings.from_env({"VOICE_LIVE_VOICE": "en-US-Ava:DragonHDLatestNeural"}).voice_is_azure


def test_protocol_parses_the_four_client_messages():
    pcm = base64.b64encode(bytes(960)).decode()
    assert protocol.parse('{"type":"session.start"}') == Start()
    assert protocol.parse('{"type":"session.stop","extra":1}') == Stop()
    assert protocol.parse(json.dumps({"type": "audio", "data": pcm})) == Audio(pcm, 960)
    assert protocol.parse('{"type":"playback","item_id":"i","played_ms":12.7}') == Playback("i", 12, None)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{", "bad_json"),
        ("[]", "bad_message"),
        ('{"type":5}', "bad_message"),
        ('{"type":"nope"}', "unknown_type"),
        ('{"type":"audio"}', "bad_audio"),
        ('{"type":"audio","data":"@@@@"}', "bad_audio"),
        ('{"type":"audio","data":"AA=="}', "bad_audio"),
        ('{"type":"playback","played_ms":3}', "bad_message"),
        ('{"type":"playback","item_id":"i","played_ms":true}', "bad_message"),
        (b"binary", "bad_message"),
    ],
)
def test_protocol_rejects_bad_frames_with_a_code(frame, code):
    with pytest.raises(ProtocolError) as caught:
        protocol.parse(frame)
    assert caught.value.code == code


def test_protocol_builds_server_messages_as_json():
    assert json.loads(protocol.audio("AAAA", "item_1")) == {"type": "audio", "item_id": "item_1", "data": "AAAA"}
    assert json.loads(protocol.audio('A"B', "i"))["data"] == 'A"B'
    assert json.loads(protocol.state("ready")) == {"type": "state", "state": "ready"}
    assert json.loads(protocol.CLEAR) == {"type": "audio.clear"}
    assert json.loads(protocol.transcript("user", "i", "hé", True)) == {
        "type": "transcript", "role": "user", "item_id": "i", "text": "hé", "final": True,
    }
    assert json.loads(protocol.error("bad_json", "Nope.", upstream_code="x"))["upstream_code"] == "x"


class _Channel:
    def __init__(self):
        self.sent: list[dict] = []

    def send(self, text: str) -> None:
        self.sent.append(json.loads(text))


def test_surprising_upstream_events_are_skipped_and_the_session_goes_on():
    from voicebridge.session.run import Run
    from voicebridge.session.stats import SessionStats
    from voicebridge.session.tab import TabLink
    from voicebridge.tasks import TaskOwner

    channel = _Channel()
    run = Run(session_id="s", tab=TabLink(channel, "s"), tasks=TaskOwner("test"), stats=SessionStats(),
              record_transcripts=False)
    run.status.machine.connecting(False)
    run.status.machine.session_updated()
    for raw in (
        b"not json at all",
        b"[1, 2, 3]",
        b'{"type": "response.done", "response": {"id": ["unhashable"]}}',
        b'{"type": "response.audio.delta", "delta": 5, "item_id": null}',
        b'{"type": "brand.new.event", "anything": true}',
    ):
        run.events.dispatch(raw)
    run.events.dispatch(b'{"type": "input_audio_buffer.speech_started", "item_id": "i"}')
    assert run.status.state == "listening"
    assert channel.sent == [{"type": "state", "state": "listening"}]


def test_a_function_call_whose_done_event_has_no_name_uses_the_name_its_item_announced():
    """Another implementation of the protocol may leave `name` out of response.function_call_arguments.done
    (it is in the function_call item of response.output_item.added). The connection is a stand-in that
    records what the bridge sends: the emulator always sends the name, so it cannot show this case."""
    import asyncio

    from voicebridge.session.run import Run
    from voicebridge.session.stats import SessionStats
    from voicebridge.session.tab import TabLink
    from voicebridge.tasks import TaskOwner
    from voicebridge.tools import Toolbox

    toolbox = Toolbox.load(["voicebridge.tools.clock"])

    class Conn:
        def __init__(self):
            self.sent: list[dict] = []
            self.two = asyncio.Event()  # the output, then the reply request

        async def send(self, event: dict) -> None:
            self.sent.append(event)
            if len(self.sent) == 2:
                self.two.set()

    async def scenario():
        channel, conn, tasks = _Channel(), Conn(), TaskOwner("test")
        run = Run(session_id="s", tab=TabLink(channel, "s"), tasks=tasks, stats=SessionStats(), record_transcripts=False,
                  toolbox=toolbox)
        run.status.machine.connecting(False)
        run.status.machine.session_updated()
        run.upstream.use(conn)
        item = {"type": "function_call", "id": "it1", "call_id": "c1", "name": "get_current_time", "arguments": ""}
        for event in (
            {"type": "response.created", "response": {"id": "r1"}},
            {"type": "response.output_item.added", "response_id": "r1", "item": item},
            {"type": "response.function_call_arguments.done", "response_id": "r1", "call_id": "c1", "arguments": "{}"},
            {"type": "response.done", "response": {"id": "r1", "status": "completed"}},
        ):
            run.events.dispatch(json.dumps(event).encode())
        await asyncio.wait_for(conn.two.wait(), 5)
        await tasks.close(1.0)
        return channel.sent, conn.sent

    tab, upstream = asyncio.run(scenario())
    assert [(m["name"], m["status"]) for m in tab if m["type"] == "tool"] == [
        ("get_current_time", "running"), ("get_current_time", "done")]
    output, reply = upstream
    assert output["item"]["type"] == "function_call_output" and output["item"]["call_id"] == "c1"
    assert json.loads(output["item"]["output"])["timezone"] == "UTC"
    assert reply["type"] == "response.create"


def test_allowed_origins_are_normalised_and_validated():
    settings = Settings.from_env({"VOICEBRIDGE_ALLOWED_ORIGINS": "https://Voice.Example.com, http://localhost:9000/"})
    assert settings.allowed_origins == ("https://voice.example.com", "http://localhost:9000")
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"VOICEBRIDGE_ALLOWED_ORIGINS": "voice.example.com"})
    assert caught.value.variable == "VOICEBRIDGE_ALLOWED_ORIGINS"


def test_several_endpoints_are_listed_in_order_with_a_key_each_or_one_for_all():
    settings = Settings.from_env({"AZURE_VOICE_LIVE_ENDPOINT": "https://a.example/, https://b.example/"})
    assert settings.endpoints == ("https://a.example/", "https://b.example/")
    for env, variable, expected in [
        ({"AZURE_VOICE_LIVE_ENDPOINT": "https://a.example/,https://b.example/", "AZURE_VOICE_LIVE_API_KEY": "k1,k2,k3"},
         "AZURE_VOICE_LIVE_API_KEY", "3 keys for 2 endpoints"),
        ({"AZURE_VOICE_LIVE_ENDPOINT": "https://a.example/,https://a.example/"}, "AZURE_VOICE_LIVE_ENDPOINT", "twice"),
        ({"AZURE_VOICE_LIVE_ENDPOINT": "https://a.example/,b.example"}, "AZURE_VOICE_LIVE_ENDPOINT", "'b.example'"),
    ]:
        with pytest.raises(SettingsError) as caught:
            Settings.from_env(env)
        assert caught.value.variable == variable and expected in str(caught.value)
