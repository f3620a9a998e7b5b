"""Issue 24 in the emulator, driven by the real SDK and its models: pre-generated assistant messages spoken
as audio, word timestamps, interim responses while a tool runs, and the languages, phrase lists and
turn-taking knobs accepted or refused as the service does."""

from __future__ import annotations

import contextlib

import pytest
from azure.ai.voicelive.aio import connect
from azure.ai.voicelive.models import (
    AssistantMessageItem,
    AzureStandardVoice,
    FunctionCallOutputItem,
    InputTextContentPart,
    OutputTextContentPart,
    RequestSession,
    ResponseCreateParams,
    ServerEventResponseAudioTimestampDelta,
    StaticInterimResponseConfig,
    UserMessageItem,
)
from azure.core.credentials import AzureKeyCredential

from support.sdk_client import KEY, Client, run, url

CLOCK = {"type": "function", "name": "get_current_time", "description": "Tell the time.",
         "parameters": {"type": "object", "properties": {}}}
AVA = AzureStandardVoice(name="en-US-AvaNeural")


@contextlib.asynccontextmanager
async def session(emu, model="gpt-realtime", **config):
    async with connect(endpoint=url(emu), credential=AzureKeyCredential(KEY), model=model) as conn:
        c = Client(conn)
        await c.wait_for("session.created")
        if config:
            await conn.session.update(session=RequestSession(**config))
            await c.wait_for("session.updated")
        try:
            yield c
        finally:
            c._reader.cancel()


def greeting(text: str) -> ResponseCreateParams:
    return ResponseCreateParams(pre_generated_assistant_message=AssistantMessageItem(
        content=[OutputTextContentPart(text=text)]))


def test_a_pre_generated_message_is_spoken_as_audio_with_its_exact_words_and_joins_the_conversation(emulator):
    async def scenario():
        async with session(emulator, voice=AVA) as c:
            mark = len(c.events)
            await c.conn.response.create(response=greeting("Hello, I am Ava. How can I help?"))
            done = await c.wait_for("response.done", start=mark)
            item_id = done.response.output[0].id
            await c.conn.conversation.item.retrieve(item_id=item_id)
            retrieved = await c.wait_for("conversation.item.retrieved", start=mark)
            return c.events[mark:], done, retrieved

    events, done, retrieved = run(scenario())
    audio = b"".join(e.delta for e in events if e.type == "response.audio.delta")
    assert len(audio) > 0
    transcript = next(e for e in events if e.type == "response.audio_transcript.done").transcript
    assert transcript == "Hello, I am Ava. How can I help?"
    assert done.response.status == "completed"
    assert retrieved.item.role == "assistant" and retrieved.item.content[0].transcript == transcript


def test_a_pre_generated_message_waits_like_any_response_and_a_malformed_one_is_refused(make_emulator):
    emulator = make_emulator(pace=1.0)  # the first line is still being spoken when the second is asked for

    async def scenario():
        async with session(emulator) as c:
            mark = len(c.events)
            await c.conn.response.create(response=greeting("First."))
            await c.wait_for("response.created", start=mark)
            await c.conn.response.create(response=greeting("Second."))
            busy = await c.wait_for("error", start=mark)
            await c.wait_for("response.done", start=mark)
            second = len(c.events)
            # Raw, as another client might send it: a user's input_text part is no assistant message.
            await c.conn.send({"type": "response.create", "response": {"pre_generated_assistant_message": {
                "type": "message", "role": "assistant", "content": [{"type": "input_text", "text": "Hi"}]}}})
            bad = await c.wait_for("error", start=second)
            return busy, bad

    busy, bad = run(scenario())
    assert busy.error.code == "conversation_already_has_active_response"
    assert (bad.error.code, bad.error.param) == (
        "invalid_value", "response.pre_generated_assistant_message.content[0]")


def test_an_azure_voice_reports_word_timestamps_that_cover_the_audio(emulator):
    async def scenario():
        async with session(emulator, voice=AVA, output_audio_timestamp_types=["word"]) as c:
            mark = len(c.events)
            await c.conn.response.create(response=greeting("Welcome back to Contoso support today"))
            await c.wait_for("response.done", start=mark)
            return c.events[mark:]

    events = run(scenario())
    words = [e for e in events if e.type == "response.audio_timestamp.delta"]
    assert all(isinstance(e, ServerEventResponseAudioTimestampDelta) for e in words)
    assert [e.text for e in words] == "Welcome back to Contoso support today".split()
    audio_ms = sum(len(e.delta) for e in events if e.type == "response.audio.delta") // 48
    ends = [e.audio_offset_ms + e.audio_duration_ms for e in words]
    assert [e.audio_offset_ms for e in words] == sorted(e.audio_offset_ms for e in words)
    assert all(a + d <= b.audio_offset_ms for a, d, b in zip(
        [e.audio_offset_ms for e in words], [e.audio_duration_ms for e in words], words[1:], strict=False))
    assert 0 < ends[-1] <= audio_ms
    assert all(e.timestamp_type == "word" for e in words)
    kinds = [e.type for e in events]
    assert kinds.index("response.audio_timestamp.done") < kinds.index("response.done")


def test_an_openai_voice_or_no_request_gets_no_word_timestamps(emulator):
    async def scenario(**config):
        async with session(emulator, **config) as c:
            mark = len(c.events)
            await c.conn.response.create(response=greeting("No timings here"))
            await c.wait_for("response.done", start=mark)
            return [e.type for e in c.events[mark:]]

    for config in ({"voice": "alloy", "output_audio_timestamp_types": ["word"]}, {"voice": AVA}):
        assert "response.audio_timestamp.delta" not in run(scenario(**config))


def test_a_cascaded_model_speaks_its_interim_response_while_the_tool_runs(emulator):
    interim = StaticInterimResponseConfig(triggers=["tool"], texts=["One moment, I'm checking that."])
    emulator.calls.queue([{"name": "get_current_time", "arguments": "{}"}])

    async def scenario():
        async with session(emulator, model="gpt-4.1", voice=AVA, tools=[CLOCK], interim_response=interim) as c:
            await c.conn.conversation.item.create(item=UserMessageItem(content=[InputTextContentPart(text="Time?")]))
            mark = len(c.events)
            await c.conn.response.create()
            done = await c.wait_for("response.done", start=mark)
            call = next(e for e in c.events[mark:] if e.type == "response.function_call_arguments.done")
            await c.conn.conversation.item.create(item=FunctionCallOutputItem(call_id=call.call_id, output="10:00"))
            second = len(c.events)
            await c.conn.response.create()
            await c.wait_for("response.done", start=second)
            return c.events[mark:second], done, c.events[second:]

    calling, done, reply = run(scenario())
    assert [o.type for o in done.response.output] == ["function_call", "message"]
    spoken = [e.transcript for e in calling if e.type == "response.audio_transcript.done"]
    assert spoken == ["One moment, I'm checking that."]
    assert any(e.type == "response.audio.delta" for e in calling)
    # The interim line answers nothing: the reply after the output is still about the tool.
    assert next(e for e in reply if e.type == "response.audio_transcript.done").transcript.startswith("The tool")


@pytest.mark.parametrize(
    "model, update, param",
    [
        ("gpt-realtime", {"voice": {"type": "azure-standard", "name": "en-US-AvaNeural"},
                          "interim_response": {"type": "static_interim_response", "texts": ["Wait"]}},
         "session.interim_response"),
        ("gpt-4.1", {"voice": {"type": "azure-standard", "name": "en-US-AvaNeural"},
                     "interim_response": {"type": "static_interim_response", "triggers": ["whenever"]}},
         "session.interim_response.triggers"),
        ("gpt-realtime", {"output_audio_timestamp_types": ["phoneme"]}, "session.output_audio_timestamp_types"),
        ("gpt-realtime", {"input_audio_transcription": {"model": "whisper-1", "phrase_list": ["Contoso"]}},
         "session.input_audio_transcription.phrase_list"),
        ("gpt-realtime", {"turn_detection": {"type": "server_vad", "languages": ["de-DE"]}},
         "session.turn_detection.languages"),
        ("gpt-realtime", {"turn_detection": {"type": "server_vad", "remove_filler_words": True}},
         "session.turn_detection.remove_filler_words"),
        ("gpt-4.1", {"turn_detection": {"type": "azure_semantic_vad", "end_of_utterance_detection": {
            "model": "semantic_detection_v1", "threshold_level": "extreme"}}},
         "session.turn_detection.end_of_utterance_detection.threshold_level"),
        ("gpt-4.1", {"turn_detection": {"type": "azure_semantic_vad", "end_of_utterance_detection": {
            "model": "semantic_detection_v1", "timeout_ms": -5}}},
         "session.turn_detection.end_of_utterance_detection.timeout_ms"),
    ],
    ids=["interim-on-realtime", "interim-trigger", "timestamp-type", "phrase-list-whisper", "languages-server-vad",
         "filler-words-server-vad", "eou-level", "eou-timeout"],
)
def test_refused_conversation_settings_get_the_services_error(emulator, model, update, param):
    async def scenario():
        async with session(emulator, model=model) as c:
            mark = len(c.events)
            await c.conn.send({"type": "session.update", "session": update})
            return await c.wait_for("error", start=mark)

    error = run(scenario()).error
    assert (error.type, error.param) == ("invalid_request_error", param)


def test_languages_phrase_lists_and_turn_taking_knobs_are_accepted_and_reported(emulator):
    update = {
        "voice": {"type": "azure-standard", "name": "en-US-AvaNeural", "prefer_locales": ["en-US", "de-DE"]},
        "turn_detection": {"type": "azure_semantic_vad_multilingual", "languages": ["en-US", "de-DE"],
                           "remove_filler_words": True,
                           "end_of_utterance_detection": {"model": "semantic_detection_v1_multilingual",
                                                          "threshold_level": "low", "timeout_ms": 800}},
        "input_audio_transcription": {"model": "azure-speech", "language": "en-US,de-DE",
                                      "phrase_list": ["Contoso", "Fabrikam"]},
    }

    async def scenario():
        async with session(emulator, model="gpt-4.1") as c:
            mark = len(c.events)
            await c.conn.send({"type": "session.update", "session": update})
            return await c.wait_for("session.updated", start=mark)

    reported = run(scenario()).session
    for key, value in update.items():
        if key == "turn_detection":
            # What was sent is reported as sent; the service completes the rest from its defaults.
            assert {k: reported[key].get(k) for k in value} == value
        else:
            assert reported[key] == value, key
