"""A conversation that feels right (issue 24), end to end: the real app as a subprocess, the real SDK, the
real emulator, real sockets. The agent greets a fresh conversation (and nothing else), a barge-in during
the greeting works, a slow tool gets one filler and then its answer, an interrupted reply ends at the
last word the tab played, a silence gets one re-prompt (never during a tool), and the languages, phrase
list and turn-taking knobs reach session.update while refused combinations stop startup.

Waits end on events, never on elapsed time: a tool that finishes when the test creates a file, a tool
timeout and the idle limit are the clocks that say "long enough".
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.apps import start_app
from support.audio import silence, speech
from support.tab import Tab

SUPPORT = Path(__file__).resolve().parents[1] / "support"
GREETING = "Welcome to Contoso support. I can check an order, explain a bill, or reset a password for you."
FILLER = "One moment, I'm checking that."
REPROMPT = "Are you still there?"


def env(emulator, **extra: str) -> dict[str, str]:
    return {
        "AZURE_VOICE_LIVE_ENDPOINT": f"http://127.0.0.1:{emulator.port}",
        "AZURE_VOICE_LIVE_API_KEY": "test-key",
        "VOICEBRIDGE_TOOLS": "tooldemo",
        "PYTHONPATH": str(SUPPORT),
        **extra,
    }


@pytest.fixture(scope="module")
def app(request, emulator):
    """Greets, fills a tool's silence after 300 ms, never re-prompts (the re-prompt has its own app)."""
    return start_app(request, env(emulator, VOICEBRIDGE_GREETING=GREETING, VOICEBRIDGE_TOOL_FILLER_MS="300",
                                  VOICEBRIDGE_REPROMPT_SECONDS="0"))


def ready(tabs, emulator, **start):
    known = {r.id for r in emulator.sessions()}
    tab = tabs()
    tab.send({"type": "session.start", **start})
    tab.wait_state("ready")
    (record,) = [r for r in emulator.sessions() if r.id not in known]
    return tab, record.id


def record(emulator, session_id):
    return next(r for r in emulator.sessions() if r.id == session_id)


def lines(emulator, session_id) -> list[str]:
    """The pre-generated lines the bridge asked this upstream session to say, in order."""
    return [e["response"]["pre_generated_assistant_message"]["content"][0]["text"]
            for e in record(emulator, session_id).events_received
            if e.get("type") == "response.create" and "pre_generated_assistant_message" in (e.get("response") or {})]


def said(tab, text, start=0, timeout=15):
    return tab.wait_for(lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"]
                        and m["text"] == text, timeout, start)


def test_a_fresh_conversation_is_greeted_with_the_fixed_words_before_anyone_speaks(tabs, emulator):
    tab, session_id = ready(tabs, emulator)
    ready_at = tab.mark()
    first_audio = tab.wait_for(lambda m: m["type"] == "audio", 10, ready_at)
    final = said(tab, GREETING, ready_at)
    assert final["item_id"] == first_audio["item_id"] and "interrupted" not in final
    assert lines(emulator, session_id) == [GREETING]
    assert [m["role"] for m in tab.of_type("transcript")][:1] == ["assistant"]  # nobody had said anything
    assert tab.of_type("error") == []


def test_a_reconnect_replays_the_greeting_as_history_and_does_not_greet_again(tabs, emulator):
    tab, first = ready(tabs, emulator)
    said(tab, GREETING)
    mark = tab.mark()
    known = {r.id for r in emulator.sessions()}
    emulator.drop(first)
    tab.wait_state("reconnecting", 10, mark)
    tab.wait_state("ready", 15, mark)
    (second,) = [r.id for r in emulator.sessions() if r.id not in known]
    replayed = [i for i in record(emulator, second).items_received if i["type"] == "message"]
    assert [(i["role"], i["content"][0]["text"]) for i in replayed] == [("assistant", GREETING)]
    assert lines(emulator, second) == []


def test_a_rollover_before_expiry_does_not_greet_again(tabs, emulator):
    emulator.update_config(session_max_s=8)  # the 60-minute cap made short: the bridge rolls over early
    try:
        before = {r.id for r in emulator.sessions()}
        tab, first = ready(tabs, emulator)
        said(tab, GREETING)
        assert emulator.wait_until(lambda: not record(emulator, first).open, 15), "no rollover happened"
        assert record(emulator, first).closed_by_client

        def replayed_into() -> list:
            return [r for r in emulator.sessions() if r.id not in before and r.id != first and any(
                GREETING in str(i.get("content")) for i in r.items_received)]

        assert emulator.wait_until(lambda: len(replayed_into()) == 1, 10), "the greeting was not replayed"
        (second,) = replayed_into()
        mark = tab.mark()
        tab.send({"type": "text", "text": "Still with me?"})  # answered on the new session, after its ready
        said(tab, "You wrote: Still with me?", mark)
        assert any("Still with me?" in str(e) for e in record(emulator, second.id).events_received)
        assert lines(emulator, second.id) == []
        assert "reconnecting" not in tab.states() and tab.of_type("error") == []
    finally:
        emulator.update_config(session_max_s=3600)


def test_a_start_with_history_or_a_resume_is_not_greeted(tabs, emulator):
    history = [{"role": "user", "text": "Hi"}, {"role": "assistant", "text": "Hello again."}]
    tab, with_history = ready(tabs, emulator, history=history)
    token = tab.wait_for(lambda m: m["type"] == "session")["resume"]
    assert lines(emulator, with_history) == []
    tab.close()  # the network took the tab away: the session is parked for a resume
    back = tabs()
    back.send({"type": "session.resume", "resume": token})
    back.wait_for(lambda m: m["type"] == "session", 10)
    back.wait_for(lambda m: m["type"] == "state", 10)
    back.send({"type": "text", "text": "Are you there?"})
    back.wait_for(lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"], 15)
    assert lines(emulator, with_history) == []
    assert record(emulator, with_history).open, "the resumed conversation kept its upstream session"


def test_talking_over_the_greeting_interrupts_it_like_any_reply(tabs, emulator):
    tab, session_id = ready(tabs, emulator)
    first = tab.wait_for(lambda m: m["type"] == "audio", 10)
    item_id = first["item_id"]
    tab.wait_for(lambda m: len(tab.audio(item_id)) >= 300 * 48, 10)
    mark = tab.mark()
    tab.speak(speech(600, seed=3))
    tab.wait_for(lambda m: m["type"] == "audio.clear", 10, mark)
    tab.send({"type": "playback", "item_id": item_id, "played_ms": 250, "cleared": True})
    final = tab.wait_for(lambda m: m["type"] == "transcript" and m["item_id"] == item_id and m["final"], 10, mark)
    assert final["interrupted"] is True
    assert emulator.wait_until(lambda: any(t["item_id"] == item_id and t["audio_end_ms"] == 250
                                           for t in record(emulator, session_id).truncations))
    assert emulator.wait_until(lambda: any(r["item_id"] == item_id and r["status"] == "cancelled"
                                           for r in record(emulator, session_id).responses))
    tab.speak(silence(900))  # the person's turn ends: it is answered as usual
    tab.wait_for(lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"]
                 and m["item_id"] != item_id, 20, mark)


def test_an_interrupted_reply_ends_at_the_last_word_the_tab_played(tabs, emulator):
    tab, session_id = ready(tabs, emulator)
    first = tab.wait_for(lambda m: m["type"] == "audio", 10)
    item_id = first["item_id"]
    tab.wait_for(lambda m: len(tab.audio(item_id)) >= 1500 * 48, 15)
    words = [m for m in tab.of_type("word") if m["item_id"] == item_id]
    assert [w["text"] for w in words] == GREETING.split()[:len(words)] and len(words) >= 3
    played = words[2]["end_ms"] + 1  # the third word's audio has just ended, the fourth's not
    mark = tab.mark()
    tab.speak(speech(600, seed=4))
    tab.wait_for(lambda m: m["type"] == "audio.clear", 10, mark)
    tab.send({"type": "playback", "item_id": item_id, "played_ms": played, "cleared": True})
    heard = tab.wait_for(lambda m: m["type"] == "transcript" and m["item_id"] == item_id and m.get("heard"), 10, mark)
    assert heard["text"] == " ".join(GREETING.split()[:3]) and heard["interrupted"] is True
    # The history holds the same words: a new upstream session is given exactly them.
    tab.speak(silence(900))
    said_next = tab.wait_for(lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"]
                             and m["item_id"] != item_id, 20, mark)
    assert said_next
    known = {r.id for r in emulator.sessions()}
    reconnect = tab.mark()
    emulator.drop(session_id)
    tab.wait_state("ready", 15, reconnect)
    (second,) = [r.id for r in emulator.sessions() if r.id not in known]
    replayed = [i for i in record(emulator, second).items_received if i["type"] == "message"]
    assert (replayed[0]["role"], replayed[0]["content"][0]["text"]) == ("assistant", heard["text"])


def test_a_slow_tool_gets_one_filler_and_then_its_answer(tabs, emulator, tmp_path):
    tab, session_id = ready(tabs, emulator)
    said(tab, GREETING)
    done_file = tmp_path / "tool-may-finish"
    emulator.calls.queue([{"name": "wait_for_file", "arguments": {"path": str(done_file)}}], session_id)
    mark = tab.mark()
    tab.send({"type": "text", "text": "Please check my order."})
    tab.wait_for(lambda m: m["type"] == "tool" and m["status"] == "running", 10, mark)
    filler = said(tab, FILLER, mark)
    done_file.touch()  # only now may the tool answer: the filler came while it ran
    answer = tab.wait_for(lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"]
                          and m["text"].startswith("The tool answered"), 20, mark)
    messages = tab.messages[mark:]
    assert messages.index(filler) < messages.index(answer)
    assert [m["status"] for m in messages if m["type"] == "tool"] == ["running", "done"]
    assert lines(emulator, session_id) == [GREETING, FILLER]
    assert tab.of_type("error") == [], "the answer waited for the filler's response to be done"


def test_a_quick_tool_gets_no_filler(tabs, emulator):
    tab, session_id = ready(tabs, emulator)
    said(tab, GREETING)
    emulator.calls.queue([{"name": "add", "arguments": {"a": 2, "b": 3}}], session_id)
    mark = tab.mark()
    tab.send({"type": "text", "text": "Add them."})
    tab.wait_for(lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"]
                 and m["text"].startswith("The tool answered"), 20, mark)
    assert lines(emulator, session_id) == [GREETING]


def test_auto_lets_the_model_greet_and_a_cascaded_model_speaks_its_own_filler(request, emulator, tmp_path):
    """`auto`: a plain response.create (the model greets, following its instructions). gpt-4.1 with an
    Azure voice: Voice Live's interim_response speaks the filler, the bridge says none of its own."""
    app = start_app(request, env(emulator, VOICEBRIDGE_GREETING="auto", VOICE_LIVE_MODEL="gpt-4.1",
                                 VOICEBRIDGE_TOOL_FILLER_MS="300"))
    known = {r.id for r in emulator.sessions()}
    tab = Tab(app.url)
    try:
        tab.start()
        tab.wait_state("ready")
        (session_id,) = [r.id for r in emulator.sessions() if r.id not in known]
        tab.wait_for(lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"], 15)
        creates = [e for e in record(emulator, session_id).events_received if e.get("type") == "response.create"]
        assert len(creates) == 1 and "pre_generated_assistant_message" not in creates[0]["response"], \
            "auto: the model's own greeting"
        done_file = tmp_path / "tool-may-finish"
        emulator.calls.queue([{"name": "wait_for_file", "arguments": {"path": str(done_file)}}], session_id)
        mark = tab.mark()
        tab.send({"type": "text", "text": "Please check my order."})
        said(tab, FILLER, mark)  # spoken by the service (the emulator's interim response)
        done_file.touch()
        tab.wait_for(lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"]
                     and m["text"].startswith("The tool answered"), 20, mark)
        assert lines(emulator, session_id) == [], "the bridge said no filler of its own"
    finally:
        tab.close()


@pytest.fixture(scope="module")
def quiet_app(request, emulator):
    """Re-prompts after 1 s of silence; the idle limit ends a session 8 s after the person last spoke. A
    tool's filler comes after 300 ms: the state is `ready` again while the tool still runs."""
    return start_app(request, env(emulator, VOICEBRIDGE_REPROMPT_SECONDS="1", VOICEBRIDGE_IDLE_SECONDS="8",
                                  VOICEBRIDGE_TOOL_TIMEOUT_SECONDS="4", VOICEBRIDGE_TOOL_FILLER_MS="300"))


def test_a_silence_gets_one_re_prompt_and_the_idle_limit_still_ends_the_session(quiet_app, emulator):
    tab = Tab(quiet_app.url)
    try:
        tab.start()
        tab.wait_state("ready")
        said(tab, REPROMPT)
        tab.wait_for(lambda m: m["type"] == "error" and m["code"] == "idle_timeout", 15)
        prompts = [m for m in tab.of_type("transcript") if m["role"] == "assistant" and m["final"]]
        assert [m["text"] for m in prompts] == [REPROMPT]
    finally:
        tab.close()


def test_no_re_prompt_while_a_tool_runs(quiet_app, emulator):
    known = {r.id for r in emulator.sessions()}
    tab = Tab(quiet_app.url)
    try:
        tab.start()
        tab.wait_state("ready")
        (session_id,) = [r.id for r in emulator.sessions() if r.id not in known]
        emulator.calls.queue([{"name": "hang", "arguments": {}}], session_id)
        tab.send({"type": "text", "text": "Look it up."})
        running = tab.wait_for(lambda m: m["type"] == "tool" and m["status"] == "running", 10)
        failed = tab.wait_for(lambda m: m["type"] == "tool" and m["status"] == "failed", 10)  # the 4 s timeout
        during = tab.messages[tab.messages.index(running):tab.messages.index(failed)]
        assert [m["text"] for m in during if m["type"] == "transcript" and m["final"]] == [FILLER]
        assert "ready" in [m.get("state") for m in during], "the filler ended: a silence, but a tool is running"
        assert FILLER in lines(emulator, session_id)
    finally:
        tab.close()


def test_a_reply_still_playing_in_the_tab_is_no_silence(request):
    """A service streams a reply faster than it plays (pace 0): `ready` comes while the tab still has
    seconds of it to play. The re-prompt (1 s) must wait for the playing to end (3 s of reply + 1 s), so
    the idle limit (4 s after the typed turn) comes first and ends the session without one."""
    from voicebridge.emulator import Emulator, EmulatorConfig

    fast = Emulator(EmulatorConfig(pace=0))
    fast.start(host="127.0.0.1", port=0)
    request.addfinalizer(fast.stop)
    app = start_app(request, env(fast, VOICEBRIDGE_REPROMPT_SECONDS="1", VOICEBRIDGE_IDLE_SECONDS="4"))
    tab = Tab(app.url)
    try:
        tab.start()
        tab.wait_state("ready")
        tab.send({"type": "text", "text": " ".join(["word"] * 30)})  # a 3 s reply, streamed at once
        tab.wait_for(lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"], 15)
        tab.wait_for(lambda m: m["type"] == "error" and m["code"] == "idle_timeout", 15)
        assert not [m for m in tab.of_type("transcript") if m["text"] == REPROMPT]
    finally:
        tab.close()


CONVERSATION = {
    "VOICE_LIVE_MODEL": "gpt-4.1",
    "VOICE_LIVE_LANGUAGES": "en-US,de-DE",
    "VOICE_LIVE_PHRASE_LIST": "Contoso,Fabrikam Cloud",
    "VOICE_LIVE_TURN_DETECTION": "azure_semantic_vad",
    "VOICE_LIVE_REMOVE_FILLER_WORDS": "true",
    "VOICE_LIVE_END_OF_UTTERANCE": "semantic_detection_v1",
    "VOICE_LIVE_END_OF_UTTERANCE_THRESHOLD": "low",
    "VOICE_LIVE_END_OF_UTTERANCE_TIMEOUT_MS": "900",
}


def test_languages_phrase_list_and_turn_taking_knobs_reach_session_update(request, emulator):
    app = start_app(request, env(emulator, **CONVERSATION))
    known = {r.id for r in emulator.sessions()}
    tab = Tab(app.url)
    try:
        tab.start()
        tab.wait_state("ready")
    finally:
        tab.close()
    (rec,) = [r for r in emulator.sessions() if r.id not in known]
    (update,) = [e["session"] for e in rec.events_received if e.get("type") == "session.update"]
    td = update["turn_detection"]
    assert td["type"] == "azure_semantic_vad_multilingual"  # German is expected: the multilingual model
    assert td["languages"] == ["en-US", "de-DE"] and td["remove_filler_words"] is True
    assert td["end_of_utterance_detection"] == {"model": "semantic_detection_v1_multilingual",
                                                "threshold_level": "low", "timeout_ms": 900}
    assert update["input_audio_transcription"] == {"model": "azure-speech", "language": "en-US,de-DE",
                                                   "phrase_list": ["Contoso", "Fabrikam Cloud"]}
    assert update["voice"]["prefer_locales"] == ["en-US", "de-DE"]
    assert update["output_audio_timestamp_types"] == ["word"]
    # A cascaded model with an Azure voice: Voice Live speaks the tool filler itself.
    assert update["interim_response"] == {"type": "static_interim_response", "triggers": ["tool"], "texts": [FILLER]}


@pytest.mark.parametrize(
    "extra, variable",
    [
        ({"VOICE_LIVE_PHRASE_LIST": "Contoso"}, "VOICE_LIVE_PHRASE_LIST"),  # gpt-realtime: gpt-4o-transcribe
        ({"VOICE_LIVE_MODEL": "gpt-4.1", "VOICE_LIVE_TURN_DETECTION": "azure_semantic_vad",
          "VOICE_LIVE_LANGUAGES": "en-US,fi-FI"}, "VOICE_LIVE_LANGUAGES"),  # the semantic VAD knows ten
        ({"VOICE_LIVE_MODEL": "gpt-4.1", "VOICE_LIVE_TURN_DETECTION": "azure_semantic_vad_en",
          "VOICE_LIVE_LANGUAGES": "de-DE"}, "VOICE_LIVE_LANGUAGES"),
        ({"VOICE_LIVE_LANGUAGES": "english"}, "VOICE_LIVE_LANGUAGES"),
        ({"VOICE_LIVE_REMOVE_FILLER_WORDS": "true"}, "VOICE_LIVE_REMOVE_FILLER_WORDS"),  # server_vad
        ({"VOICE_LIVE_END_OF_UTTERANCE_THRESHOLD": "low"}, "VOICE_LIVE_END_OF_UTTERANCE_THRESHOLD"),
        ({"VOICE_LIVE_MODEL": "gpt-4.1", "VOICE_LIVE_END_OF_UTTERANCE": "semantic_detection_v1",
          "VOICE_LIVE_END_OF_UTTERANCE_THRESHOLD": "extreme"}, "VOICE_LIVE_END_OF_UTTERANCE_THRESHOLD"),
        ({"VOICEBRIDGE_TOOL_FILLER_MS": "-1"}, "VOICEBRIDGE_TOOL_FILLER_MS"),
        ({"VOICEBRIDGE_REPROMPT_SECONDS": "soon"}, "VOICEBRIDGE_REPROMPT_SECONDS"),
        ({"VOICEBRIDGE_GREETING": "x" * 501}, "VOICEBRIDGE_GREETING"),
    ],
)
def test_a_refused_combination_stops_startup_naming_the_variable(extra, variable):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "VOICE_LIVE_", "VOICEBRIDGE_"))}
    done = subprocess.run(
        [sys.executable, "-m", "voicebridge", "serve", "--port", "0"],
        env={**base, **extra}, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert f"invalid configuration: {variable}:" in done.stderr


def test_the_default_voice_follows_a_first_language_that_is_not_english():
    from voicebridge.settings import MULTILINGUAL_VOICE, Settings
    from voicebridge.upstream import session_config

    german = session_config(Settings.from_env({"VOICE_LIVE_LANGUAGES": "de-DE,en-US"})).as_dict()
    assert german["voice"] == {"type": "azure-standard", "name": MULTILINGUAL_VOICE, "prefer_locales": ["de-DE", "en-US"]}
    assert german["input_audio_transcription"].get("language") is None  # gpt-4o-transcribe: one language or none
    chosen = session_config(Settings.from_env({"VOICE_LIVE_LANGUAGES": "de-DE", "VOICE_LIVE_VOICE": "de-DE-KatjaNeural"}))
    assert chosen.as_dict()["voice"]["name"] == "de-DE-KatjaNeural"  # the operator's voice is kept
    assert chosen.as_dict()["input_audio_transcription"]["language"] == "de"
    english = session_config(Settings.from_env({"VOICE_LIVE_LANGUAGES": "en-GB"})).as_dict()
    assert english["voice"]["name"] == "en-US-AvaNeural"


def test_the_page_speaks_the_first_language(request, emulator):
    from support.apps import http_get

    app = start_app(request, env(emulator, VOICE_LIVE_LANGUAGES="de-DE,en-US"))
    status, body = http_get(app.url + "/")
    assert status == 200 and b'<html lang="de-DE">' in body
    assert b"en-US-AvaMultilingualNeural" in body  # the footer names the voice that follows it
