"""The conversation the bridge keeps to replay (issue 12 §1): in conversation order, bounded, as heard.

Pure bookkeeping, so these drive TranscriptKeeper directly with events in the orders the service sends.
"""

from __future__ import annotations

import pytest

from voicebridge.protocol import MAX_START_HISTORY_BYTES, ProtocolError, Role, Start, Turn, parse
from voicebridge.session.replay import Replay, item_event
from voicebridge.session.transcripts import MAX_PENDING, TranscriptKeeper
from voicebridge.settings import Settings, SettingsError


def keeper(limit: int = 40) -> TranscriptKeeper:
    return TranscriptKeeper(lambda *args, **extra: None, limit)


def kept(k: TranscriptKeeper) -> list[tuple[str, str]]:
    return [(e.role, e.text) for e in k.replayable()]


def test_a_user_transcript_that_arrives_after_the_reply_keeps_its_place():
    k = keeper()
    k.began("user", "u1")  # speech started
    k.assistant_delta("a1", "r1", "Sure, ")
    k.assistant_done("a1", "Sure, here it is.", interrupted=False)
    k.user("u1", "Tell me a joke.", final=True)  # transcription finished late
    assert kept(k) == [("user", "Tell me a joke."), ("assistant", "Sure, here it is.")]


def test_a_reply_the_user_talked_over_comes_first_and_keeps_only_what_was_heard():
    k = keeper()
    k.assistant_delta("a1", "r1", "Once upon a time there was ")
    k.began("user", "u2")  # barge-in
    k.heard("a1", 0.5)  # the tab played half of the audio
    k.response_done("r1", interrupted=True)
    k.user("u2", "Stop.", final=True)
    assert kept(k) == [("assistant", "Once upon a"), ("user", "Stop.")]


def test_the_history_keeps_the_most_recent_items_and_false_starts_cannot_push_them_out():
    k = keeper(limit=3)
    for n in range(5):
        k.remember("user", f"turn {n}")
    for n in range(50):
        k.began("user", f"noise-{n}")  # speech_started that never became an item
    assert kept(k) == [("user", "turn 2"), ("user", "turn 3"), ("user", "turn 4")]
    assert len(k.history) == 3 + MAX_PENDING
    k.new_connection()  # those items will never finish on a new connection
    assert len(k.history) == 3


def test_replay_events_have_the_documented_shape_and_count_acknowledgements():
    user, assistant = item_event(Turn(Role.USER, "Hi")), item_event(Turn(Role.ASSISTANT, "Hello"))
    assert user["item"] == {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}
    assert assistant["item"] == {"type": "message", "role": "assistant", "content": [{"type": "text", "text": "Hello"}]}
    assert user["type"] == "conversation.item.create" and user["event_id"].startswith("vb-")
    replay = Replay()
    replay.pending, replay._event_ids = 2, {user["event_id"], assistant["event_id"]}
    assert not replay.acknowledged({"type": "error", "error": {"event_id": "someone-else"}})
    assert replay.acknowledged({"type": "conversation.item.created"}) and replay.pending == 1
    assert replay.acknowledged({"type": "error", "error": {"event_id": assistant["event_id"]}}) and replay.pending == 0
    assert not replay.acknowledged({"type": "conversation.item.created"})


def test_start_history_is_parsed_and_its_limits_hold():
    start = parse('{"type":"session.start","history":[{"role":"user","text":"Hi"},{"role":"assistant","text":" "}]}')
    assert start == Start((Turn(Role.USER, "Hi"),))  # blank texts carry nothing to replay
    for bad in (
        '{"type":"session.start","history":[{"role":"user","text":"\\ud800"}]}',
        '{"type":"session.start","history":"Hi"}',
        '{"type":"session.start","history":[{"role":"user","text":"' + "x" * (MAX_START_HISTORY_BYTES + 1) + '"}]}',
    ):
        try:
            parse(bad)
        except ProtocolError as exc:
            assert exc.code == "bad_message"
        else:
            raise AssertionError(f"accepted {bad[:60]}")


def test_continuity_settings_default_and_refuse_nonsense():
    defaults = Settings.from_env({})
    assert (defaults.history_items, defaults.resume_window_s) == (40, 30.0)
    off = Settings.from_env({"VOICEBRIDGE_RESUME_SECONDS": "0", "VOICEBRIDGE_HISTORY_ITEMS": "0"})
    assert (off.history_items, off.resume_window_s) == (0, 0.0)
    for name, value in (("VOICEBRIDGE_RESUME_SECONDS", "-1"), ("VOICEBRIDGE_HISTORY_ITEMS", "many")):
        with pytest.raises(SettingsError, match=name):
            Settings.from_env({name: value})
