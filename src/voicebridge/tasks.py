"""One owner per group of tasks: every task the bridge creates is named, referenced, logged and awaited.

asyncio keeps only a weak reference to a task, and a failed task nobody awaits reports itself late, as
"Task exception was never retrieved", far from its cause. A `TaskOwner` holds each task it spawned
until the task ends, logs a failure at once with the task's name, and on `close()` cancels whatever is
left and waits for it (bounded), so a session or the loop ends with no task left behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger("voicebridge.tasks")


class TaskOwner:
    """The tasks of one owner (a session, the loop's socket adoptions). Loop-thread only."""

    def __init__(self, name: str):
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.name}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()  # retrieved here, so asyncio never reports it as lost
        if exc is not None:
            log.error("event=task.failed task=%s", task.get_name(), exc_info=exc)

    @staticmethod
    async def cancel(task: asyncio.Task[Any], timeout: float) -> bool:
        """Cancel one task and wait (bounded) until it has ended; returns whether it did.

        Its outcome is left to the done callback; only the caller's own cancellation propagates.
        """
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=timeout)
        return bool(done)

    async def join(self, timeout: float) -> bool:
        """Wait up to `timeout` for every task to end by itself; returns whether all did."""
        pending = {t for t in self._tasks if t is not asyncio.current_task()}
        if not pending:
            return True
        _, left = await asyncio.wait(pending, timeout=timeout)
        return not left

    async def close(self, timeout: float) -> bool:
        """Cancel every task still running and wait up to `timeout` for all of them to end."""
        pending = {t for t in self._tasks if t is not asyncio.current_task()}
        for task in pending:
            task.cancel()
        if not pending:
            return True
        _, left = await asyncio.wait(pending, timeout=timeout)
        for task in left:
            log.warning("event=task.stuck task=%s", task.get_name())
        return not left
