"""The run's conversation history, kept by the real bridge in-process over real sockets: what the user
said and what the assistant said, an interrupted reply only as far as the user heard it."""

from __future__ import annotations

from support.audio import silence, speech
from support.inprocess import serve
from support.tab import Tab
from voicebridge.app import create_app
from voicebridge.settings import Settings


def test_history_holds_both_sides_and_cuts_an_interrupted_reply_to_what_was_heard(request, emulator):
    # max_audio_rate=0: the test streams speech faster than real time (the emulator VAD runs in audio time).
    app = create_app(Settings(endpoint=f"http://127.0.0.1:{emulator.port}", api_key="test-key", max_audio_rate=0))
    bridge = app.extensions["voicebridge"]
    tab = Tab(serve(request, app))
    request.addfinalizer(tab.close)
    tab.start()
    tab.wait_state("ready")
    (session,) = bridge.sessions.values()
    tab.speak(silence(200) + speech(1500, seed=5) + silence(900))
    first = tab.wait_for(lambda m: m["type"] == "audio", 20)
    item_id = first["item_id"]
    tab.wait_for(lambda m: len(tab.audio(item_id)) >= 300 * 48, 10)
    mark = tab.mark()
    tab.speak(speech(600, seed=6))
    tab.wait_for(lambda m: m["type"] == "audio.clear", 5, mark)
    tab.report(item_id, 200)
    shown = tab.wait_for(lambda m: m["type"] == "transcript" and m["item_id"] == item_id and m["final"], 10)
    assert emulator.wait_until(lambda: any(t["item_id"] == item_id for s in emulator.sessions() for t in s.truncations))
    tab.speak(silence(900))
    answer = tab.wait_for(
        lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"] and m["item_id"] != item_id, 20
    )

    async def snapshot():  # read on the loop that writes it
        return list(session.run.transcripts.history)

    history = bridge.runtime.run(snapshot(), timeout=5)
    assert [(e.role, e.interrupted) for e in history] == [
        ("user", False), ("assistant", True), ("user", False), ("assistant", False)
    ]
    interrupted = history[1]
    assert interrupted.item_id == item_id and shown["interrupted"] is True
    # 200 ms heard of the 300+ ms sent: the entry keeps that share of the text shown, cut at a word.
    assert len(interrupted.text) < len(shown["text"]) and shown["text"].startswith(interrupted.text)
    assert history[3].text == answer["text"]
