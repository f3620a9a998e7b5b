"""The session's pure parts on their own: the task owner, the transcript keeper and its history."""

from __future__ import annotations

import asyncio
import logging

from voicebridge.session.transcripts import DEFAULT_HISTORY as MAX_HISTORY
from voicebridge.session.transcripts import TranscriptKeeper
from voicebridge.tasks import TaskOwner


def test_a_failed_task_is_logged_at_once_with_its_name_and_never_reported_lost(caplog):
    async def scenario() -> None:
        owner = TaskOwner("session-x")

        async def boom() -> None:
            raise RuntimeError("kaput")

        task = owner.spawn(boom(), "truncate")
        await asyncio.wait({task})
        await asyncio.sleep(0)  # the done callback runs on the next turn of the loop
        assert len(owner) == 0

    with caplog.at_level(logging.INFO):
        asyncio.run(scenario())
    failed = [r for r in caplog.records if "event=task.failed" in r.getMessage()]
    assert [r.getMessage() for r in failed] == ["event=task.failed task=session-x:truncate"]
    assert failed[0].exc_info[1].args == ("kaput",)
    assert not any("never retrieved" in r.getMessage() for r in caplog.records)


def test_close_cancels_what_is_left_and_waits_for_it_to_end():
    ended = []

    async def scenario() -> bool:
        owner = TaskOwner("s")

        async def forever(name: str) -> None:
            try:
                await asyncio.Event().wait()
            finally:
                ended.append(name)

        owner.spawn(forever("a"), "a")
        owner.spawn(forever("b"), "b")
        await asyncio.sleep(0)
        assert not await owner.join(0.01), "join does not cancel"
        return await owner.close(1.0)

    assert asyncio.run(scenario()) is True
    assert sorted(ended) == ["a", "b"]


def test_cancel_awaits_one_task_without_raising_its_outcome():
    async def scenario() -> bool:
        owner = TaskOwner("s")
        task = owner.spawn(asyncio.sleep(10), "sleeper")
        done = await owner.cancel(task, 1.0)
        return done and task.cancelled()

    assert asyncio.run(scenario())


def keeper() -> tuple[TranscriptKeeper, list[tuple]]:
    sent: list[tuple] = []
    return TranscriptKeeper(lambda *args, **extra: sent.append((*args, extra))), sent


def test_history_keeps_the_finals_in_order():
    transcripts, sent = keeper()
    transcripts.user("u1", "hel", final=False)
    transcripts.user("u1", "hello there", final=True)
    transcripts.assistant_delta("a1", "r1", "Hi, ")
    transcripts.assistant_delta("a1", "r1", "how can I help?")
    transcripts.assistant_done("a1", "Hi, how can I help?", interrupted=False)
    assert [(e.role, e.item_id, e.text, e.interrupted) for e in transcripts.history] == [
        ("user", "u1", "hello there", False),
        ("assistant", "a1", "Hi, how can I help?", False),
    ]
    assert [s[3] for s in sent] == [False, True, False, False, True], "partials and finals reach the tab"


def test_an_interrupted_reply_is_kept_only_as_far_as_it_was_heard():
    transcripts, sent = keeper()
    transcripts.assistant_delta("a1", "r1", "one two three four five six seven eight")
    # The response ends cancelled without a transcript.done; the tab gets what was streamed.
    transcripts.response_done("r1", interrupted=True)
    assert sent[-1] == ("assistant", "a1", "one two three four five six seven eight", True, {"interrupted": True})
    transcripts.heard("a1", 0.5)  # the truncate: half of the item's audio was played
    (entry,) = transcripts.history
    assert (entry.text, entry.interrupted) == ("one two three four", True)


def test_a_heard_share_that_comes_before_the_final_still_cuts_it():
    transcripts, _ = keeper()
    transcripts.assistant_delta("a1", "r1", "alpha beta gamma delta")
    transcripts.heard("a1", 0.3)
    transcripts.assistant_done("a1", "alpha beta gamma delta", interrupted=True)
    assert [e.text for e in transcripts.history] == ["alpha"]


def test_history_is_bounded():
    transcripts, _ = keeper()
    for n in range(MAX_HISTORY + 10):
        transcripts.user(f"u{n}", f"said {n}", final=True)
    assert len(transcripts.history) == MAX_HISTORY
    assert transcripts.history[0].text == "said 10"
