"""Replacing an upstream session before it expires, between turns (issue 19).

A Voice Live connection lasts at most 60 minutes; `session.created` says when it ends (`expires_at`).
Rather than let the service cut a conversation, possibly mid-utterance, the run opens the next upstream
session while nobody speaks and no reply plays, then moves over to it: the relay of the old connection
ends, the new one is configured and given the conversation so far (replay.py, as after a reconnect),
and the tab sees neither `reconnecting` nor an error. Microphone audio arriving meanwhile waits in the
uplink queue for the new connection.

If no quiet moment comes before the expiry, the service closes the connection and the ordinary reconnect
restores the conversation.

The next session's connection waits its turn in the connection pacer like any other (pacer.py, issue 23:
starts, reconnects and rollovers draw from it), as a continuing conversation and without telling the tab:
the old connection serves on meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from azure.ai.voicelive.aio import VoiceLiveConnection

from ..logs import event
from ..protocol import State
from ..tasks import TaskOwner
from .connection import quiet_close
from .host import Opened

log = logging.getLogger("voicebridge.session")

# Roll over this long before the expiry, or within the last quarter of a shorter lifetime.
MARGIN_SHARE = 0.25


def due_at(expires_at: float, seen_at: float, margin_s: float) -> float:
    """When (wall clock) a connection that expires at `expires_at`, announced at `seen_at`, rolls over."""
    return expires_at - min(margin_s, max(0.0, expires_at - seen_at) * MARGIN_SHARE)


class Rollover:
    """One connection's rollover: armed by its expiry, carried out at the first quiet moment after."""

    def __init__(
        self,
        session_id: str,
        tasks: TaskOwner,
        open_upstream: Callable[[], Awaitable[Opened]],
        *,
        quiet: Callable[[], bool],
        margin_s: float,
    ):
        self._id = session_id
        self._tasks = tasks
        self._open = open_upstream
        self._quiet = quiet  # nobody speaks, no reply is active or playing, no tool is running
        self._margin_s = margin_s
        self._timer: asyncio.TimerHandle | None = None
        self._due = False
        self._opening: asyncio.Task[None] | None = None
        self.next: Opened | None = None  # open and waiting for the quiet moment
        self._old: VoiceLiveConnection | None = None
        self.swapped = False

    def watch(self, conn: VoiceLiveConnection, expires_at: float) -> None:
        """The connection's session.created named its expiry: arm the rollover."""
        if self._timer is not None or self._margin_s <= 0:
            return
        self._old = conn
        delay = due_at(expires_at, time.time(), self._margin_s) - time.time()
        self._timer = asyncio.get_running_loop().call_later(max(0.0, delay), self._fire)

    def _fire(self) -> None:
        self._due = True
        event("upstream.rollover_due", self._id)
        self.check()

    def check(self) -> None:
        """After every upstream event (and when due): open the next session, or move over to it, if quiet."""
        if not self._due or self.swapped or not self._quiet():
            return
        if self.next is None:
            if self._opening is None:
                self._opening = self._tasks.spawn(self._open_next(), "rollover-open")
            return
        self.swapped = True
        old, self._old = self._old, None
        event("upstream.rollover", self._id)
        if old is not None:
            # Its relay ends on the close; the run loop then relays the next connection (runloop.py).
            self._tasks.spawn(quiet_close(old), "rollover-close")

    async def _open_next(self) -> None:
        try:
            self.next = await self._open()
        except Exception as exc:  # the old connection serves on; at its expiry the reconnect takes over
            log.warning("event=upstream.rollover_failed session=%s cause=%s: %s", self._id, type(exc).__name__, exc)
            return
        self.check()

    def take(self) -> Opened | None:
        """The connection to relay next, if this rollover swapped to one."""
        opened = self.next if self.swapped else None
        self.next = None if self.swapped else self.next
        return opened

    async def close(self) -> None:
        """The connection's relay is over: nothing more to arm; a next session not moved to is closed."""
        if self._timer is not None:
            self._timer.cancel()
        if self._opening is not None and not self._opening.done():
            await self._tasks.cancel(self._opening, 1.0)
        if self.next is not None and not self.swapped:
            await quiet_close(self.next.conn)
            self.next = None


def quiet(state: State, gate_busy: bool, playing: bool, tools_running: bool) -> bool:
    return state is State.READY and not gate_busy and not playing and not tools_running
