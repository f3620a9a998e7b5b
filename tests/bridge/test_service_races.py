"""Issue 19 findings 3-6 and 9, end to end: the real app, the unmodified SDK, the emulator in its strict
(service-like) behaviour, real sockets. Each test names the finding it holds the bridge to.

The emulator's knobs stand in for what the service does on its own: asynchronous cancellation (a
response stays active until its response.done), throttled and filtered replies, text-only replies,
errors without event_id, failed transcriptions, a bring-your-own-model deployment.
"""

from __future__ import annotations

import pytest

from support.apps import start_app
from support.audio import silence, speech
from support.tab import Tab
from support.upstreams import emulator_env, new_upstream, ready, record, running, upstream_ids
from support.waiting import until
from voicebridge.emulator import EmulatorConfig

TURN = silence(200) + speech(900, seed=7) + silence(800)


@pytest.fixture(scope="module")
def emulator():
    with running(EmulatorConfig(pace=1.0, deployments={"contoso-voice": "gpt-realtime"})) as emu:
        yield emu


@pytest.fixture(autouse=True)
def service_defaults(emulator):
    yield
    emulator.update_config(reply_outcome="completed", error_event_ids=True, transcription_fails=False,
                           session_max_s=3600, audio_short_ms=0)


@pytest.fixture(scope="module")
def app(request, emulator):
    return start_app(request, emulator_env(emulator))


@pytest.mark.parametrize("event_ids", [True, False], ids=["errors-name-the-event", "errors-without-event-id"])
def test_a_refused_truncate_is_bookkeeping_not_a_problem_for_the_person(app, tabs, emulator, event_ids):
    """Finding 9: the service may count an item's audio shorter than what it streamed and refuse a
    truncate at what was heard ("already shorter than"), naming the event or not. It changes nothing the
    person hears: logged for the operator, never shown, and the barge-in's answer comes."""
    emulator.update_config(error_event_ids=event_ids, audio_short_ms=60_000)  # every truncate past 0 ms refused
    logged = len(app.log_path.read_text().splitlines())
    tab, session_id = ready(tabs, emulator)
    tab.speak(silence(200) + speech(2500, seed=42) + silence(900))
    first = tab.wait_for(lambda m: m["type"] == "audio", 15)
    tab.wait_for(lambda m: len(tab.audio(first["item_id"])) >= 400 * 48, 10)
    mark = tab.mark()
    tab.send({"type": "text", "text": "Wait, another thing"})
    tab.send({"type": "playback", "item_id": first["item_id"], "played_ms": 300, "cleared": True})
    assert tab.wait_reply(mark)["text"] == "You wrote: Wait, another thing"
    refused = until(lambda: [line for line in app.log_path.read_text().splitlines()[logged:]
                             if "event=upstream.error" in line], 10, "the refusal in the log")
    assert tab.of_type("error") == []
    assert "code=invalid_value kind=truncate param=audio_end_ms" in refused[0], refused
    assert record(emulator, session_id).truncations == []


@pytest.mark.parametrize("event_ids", [True, False], ids=["errors-name-the-event", "errors-without-event-id"])
def test_a_typed_turn_during_a_reply_is_answered_after_the_cancelled_reply_is_done(tabs, emulator, event_ids):
    """Finding 3 (and 9: error.event_id "if applicable"): cancel and create back to back meet an active
    response on the service; the typed turn must still be answered, with no error shown."""
    emulator.update_config(error_event_ids=event_ids)
    tab, session_id = ready(tabs, emulator)
    tab.speak(silence(200) + speech(2500, seed=41) + silence(900))
    first = tab.wait_for(lambda m: m["type"] == "audio", 15)
    mark = tab.mark()
    tab.send({"type": "text", "text": "Actually, a question"})
    tab.send({"type": "playback", "item_id": first["item_id"], "played_ms": 100, "cleared": True})
    answer = tab.wait_reply(mark)
    assert answer["text"] == "You wrote: Actually, a question"
    assert tab.of_type("error") == []
    responses = record(emulator, session_id).responses
    assert [r["status"] for r in responses] == ["cancelled", "completed"]
    events = [e["type"] for e in record(emulator, session_id).events_received
              if e.get("type") in ("response.create", "response.cancel")]
    assert events[:1] == ["response.cancel"] and "response.create" in events


@pytest.mark.parametrize(("outcome", "reason", "words"), [
    ("failed", "rate_limit_exceeded", "busy"),
    ("content_filter", "content_filter", "content filter"),
])
def test_a_failed_or_filtered_reply_reaches_the_tab_and_the_next_turn_works(tabs, emulator, outcome, reason, words):
    """Finding 4: response.done failed / incomplete is not silence: reply_failed, then a live state and
    a next turn that is answered."""
    tab, _ = ready(tabs, emulator)
    emulator.update_config(reply_outcome=outcome)
    mark = tab.mark()
    tab.send({"type": "text", "text": "Hello?"})
    error = tab.wait_for(lambda m: m["type"] == "error", 10, mark)
    assert (error["code"], error["reason"]) == ("reply_failed", reason)
    assert words in error["message"]
    tab.wait_state("ready", 10, mark)
    emulator.update_config(reply_outcome="completed")
    again = tab.mark()
    tab.send({"type": "text", "text": "Hello again"})
    assert tab.wait_reply(again)["text"] == "You wrote: Hello again"


def test_a_reply_cut_at_the_longest_allowed_is_said_so_and_the_conversation_goes_on(request, emulator):
    """VOICE_LIVE_MAX_RESPONSE_TOKENS is the session's max_response_output_tokens; a reply that reaches it
    ends `incomplete` (max_output_tokens) where it stands: the tab keeps the words that came and hears
    `reply_failed` saying it was cut short, and the next (shorter) reply is given in full."""
    app = start_app(request, emulator_env(emulator, VOICE_LIVE_MAX_RESPONSE_TOKENS="30"))
    tab = Tab(app.url)
    request.addfinalizer(tab.close)
    known = upstream_ids(emulator)
    tab.start()
    tab.wait_state("ready")
    rec = new_upstream(emulator, known)
    assert rec.config["max_response_output_tokens"] == 30
    long = "Tell me about the sea, the tides, the winds, the fish, the boats and the people who sail them."
    mark = tab.mark()
    tab.send({"type": "text", "text": long})
    error = tab.wait_for(lambda m: m["type"] == "error", 15, mark)
    assert (error["code"], error["reason"]) == ("reply_failed", "max_output_tokens")
    assert "cut short" in error["message"]
    cut = tab.wait_for(lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"], 5, mark)
    assert cut["text"] and f"You wrote: {long}".startswith(cut["text"].strip()) and cut["text"].strip() != f"You wrote: {long}"
    (first,) = [r for r in record(emulator, rec.id).responses if r["status"] != "in_progress"]
    assert first["status"] == "incomplete" and first["usage"]["output_tokens"] <= 30
    tab.wait_state("ready", 10, mark)
    again = tab.mark()
    tab.send({"type": "text", "text": "Hi"})
    assert tab.wait_reply(again)["text"] == "You wrote: Hi"


def test_a_text_only_reply_is_shown_as_the_assistants_words(tabs, emulator):
    """Finding 5: a reply in response.text.* (no audio) is a transcript source like the audio transcript."""
    tab, _ = ready(tabs, emulator)
    emulator.update_config(reply_outcome="text_only")
    mark = tab.mark()
    tab.send({"type": "text", "text": "Are you there"})
    assert tab.wait_reply(mark)["text"] == "You wrote: Are you there"
    tab.wait_state("ready", 10, mark)


def test_a_failed_transcription_leaves_a_placeholder_in_the_conversation(tabs, emulator):
    """Finding 4: conversation.item.input_audio_transcription.failed: the user's turn still shows (and is
    kept for the history replayed after a reconnect) and is answered."""
    tab, _ = ready(tabs, emulator)
    emulator.update_config(transcription_fails=True)
    mark = tab.mark()
    tab.speak(TURN)
    user = tab.wait_for(lambda m: m["type"] == "transcript" and m["role"] == "user" and m["final"], 10, mark)
    assert user["text"] == "(inaudible)" and user.get("untranscribed") is True
    tab.wait_reply(mark)


@pytest.mark.parametrize("event_ids", [True, False], ids=["errors-name-the-event", "errors-without-event-id"])
def test_a_refused_configuration_fails_the_start_at_once_with_the_services_words(request, emulator, event_ids):
    """Finding 6: session.update carries an event_id, so the service's refusal (here: a bring-your-own-
    model deployment of gpt-realtime, which the app cannot know, given azure-speech) ends the start
    within moments, with the message and param, instead of "never confirmed" after the timeout. Without
    an event_id, the param naming a session field before any session.updated says the same."""
    emulator.update_config(error_event_ids=event_ids)
    app = start_app(request, {
        "AZURE_VOICE_LIVE_ENDPOINT": f"http://127.0.0.1:{emulator.port}",
        "AZURE_VOICE_LIVE_API_KEY": "test-key",
        "VOICE_LIVE_MODEL": "contoso-voice",
        "VOICEBRIDGE_CONNECT_TIMEOUT_SECONDS": "60",  # a refusal must not wait for this
    })
    tab = Tab(app.url)
    try:
        tab.start()
        error = tab.wait_for(lambda m: m["type"] == "error", 20)
        assert error["code"] == "upstream_rejected"
        assert error["param"] == "session.input_audio_transcription.model"
        assert "azure-speech" in error["message"]
        tab.wait_state("error", 5)
    finally:
        tab.close()
    assert emulator.wait_until(lambda: not [r for r in emulator.sessions() if r.model == "contoso-voice" and r.open], 10)


def test_a_session_near_its_expiry_rolls_over_between_turns_unseen_by_the_tab(tabs, emulator):
    """Finding 7: session.created's expires_at (here 8 s away, the 60-minute cap made short) is met by
    opening the next upstream session at a quiet moment, the conversation replayed there; the tab never
    sees reconnecting or an error, and the next turn is answered on the new session."""
    emulator.update_config(session_max_s=8)
    tab, first_id = ready(tabs, emulator)
    mark = tab.mark()
    tab.send({"type": "text", "text": "Remember the word lighthouse"})
    tab.wait_reply(mark)
    assert emulator.wait_until(lambda: not record(emulator, first_id).open, 15), "the first session never closed"
    first = record(emulator, first_id)
    assert first.closed_by_client, "the service cut the session: no rollover happened before expires_at"

    def successors():
        return [r for r in emulator.sessions() if r.id != first_id and r.open
                and sum("lighthouse" in str(i.get("content")) for i in r.items_received) == 2]

    assert emulator.wait_until(lambda: len(successors()) == 1, 10), "no new session got the conversation"
    (second,) = successors()
    replayed = [i for i in second.items_received if i["type"] == "message"]
    assert [i["role"] for i in replayed] == ["user", "assistant"], "the conversation was not replayed"
    again = tab.mark()
    tab.send({"type": "text", "text": "What was the word"})
    assert tab.wait_reply(again)["text"] == "You wrote: What was the word"
    assert any(e.get("type") == "conversation.item.create" and "What was the word" in str(e)
               for e in record(emulator, second.id).events_received)
    assert "reconnecting" not in tab.states() and tab.of_type("error") == []
