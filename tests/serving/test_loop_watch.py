"""The heartbeat only a running loop can beat, and the report of a blocked loop (runtime.LoopWatch), in
process: a real loop thread, blocked the way a wrong tool blocks it (issue 21)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from support.waiting import until
from voicebridge.runtime import LoopThread, LoopWatch


def test_a_blocked_loop_stops_beating_and_is_reported_with_its_task_and_stack(caplog):
    caplog.set_level(logging.WARNING, logger="voicebridge.runtime")
    runtime = LoopThread(name="test-loop").start()
    beats: list[float] = []
    release = threading.Event()
    try:
        watch = LoopWatch(runtime=runtime, beat=lambda: beats.append(time.monotonic()), every_s=0.02, report_after_s=0.3)
        watch.start()
        until(lambda: len(beats) >= 3, 5, "the loop beats")

        async def stuck_in_a_tool() -> None:
            release.wait(10)  # blocking call inside a coroutine: the whole loop waits

        runtime.call(lambda: runtime.loop.create_task(stuck_in_a_tool(), name="session-abc:tool:stuck_in_a_tool"))
        blocked = until(lambda: watch.check() or [r for r in caplog.records if "event=loop.blocked" in r.getMessage()],
                        5, "the block reported")
        during = len(beats)
        watch.check()
        watch.check()
        message = blocked[0].getMessage()
        assert "task=session-abc:tool:stuck_in_a_tool" in message
        assert "test_loop_watch.py" in message and "stuck_in_a_tool" in message
        assert [r for r in caplog.records if "event=loop.blocked" in r.getMessage()] == blocked, "once per block"
        assert len(beats) == during, "no beat while the loop is blocked"
        release.set()
        until(lambda: [r for r in caplog.records if "event=loop.unblocked" in r.getMessage()], 5, "the end of the block")
        until(lambda: len(beats) > during + 2, 5, "the loop beats again")
    finally:
        release.set()
        runtime.stop()


def test_a_busy_but_running_loop_is_not_reported(caplog):
    caplog.set_level(logging.WARNING, logger="voicebridge.runtime")
    runtime = LoopThread(name="test-loop").start()
    beats: list[float] = []
    try:
        watch = LoopWatch(runtime=runtime, beat=lambda: beats.append(time.monotonic()), every_s=0.02, report_after_s=2.0)
        watch.start()

        async def many_short_steps() -> None:
            for _ in range(100):
                time.sleep(0.002)  # 2 ms at a time, the loop turning between
                await asyncio.sleep(0)

        runtime.run(many_short_steps(), timeout=10)
        watch.check()
        until(lambda: len(beats) >= 5, 5, "the loop beats")
        assert not [r for r in caplog.records if "loop." in r.getMessage()]
    finally:
        runtime.stop()
