"""Which assistant audio the tab is playing, which response is the live one, which were interrupted.

Pure bookkeeping for one upstream connection (its ids mean nothing on the next one): the event
handlers ask it what an event means, barge-in asks it whether there is anything to interrupt.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ..protocol import BYTES_PER_MS

# How long to wait for the tab's playback report after a clear before estimating from the clock.
REPORT_WAIT_S = 0.5
# Audio counts as still playing this long after it should have finished (tab buffering, jitter).
PLAYBACK_SLACK_MS = 300


@dataclass(slots=True)
class Item:
    """The assistant audio item the tab is playing (or has queued)."""

    id: str
    response_id: str | None
    first_sent: float
    sent_bytes: int = 0
    reported_ms: int | None = None  # the most the tab has said it played of this item
    reported_after_clear: bool = False
    interrupted: bool = False
    cleared_at: float = 0.0
    flush_report: asyncio.Event | None = None  # set by the tab's report marked `cleared`
    flushed_ms: int | None = None
    content_index: int = 0  # which content part of the item the audio is (truncate names it)

    @property
    def sent_ms(self) -> int:
        return self.sent_bytes // BYTES_PER_MS

    async def heard_ms(self) -> tuple[int, str]:
        """What the tab played of this item before the clear, and whether the tab or the clock says so."""
        assert self.flush_report is not None
        try:
            await asyncio.wait_for(self.flush_report.wait(), REPORT_WAIT_S)
            heard, basis = self.flushed_ms or 0, "tab"
        except TimeoutError:
            if self.reported_after_clear:
                heard, basis = self.reported_ms or 0, "tab_unmarked"
            else:
                heard, basis = int((self.cleared_at - self.first_sent) * 1000.0), "clock"
        return max(0, min(heard, self.sent_ms)), basis

    def played(self, played_ms: int, flush: bool) -> None:
        if self.flush_report is None:
            self.reported_ms = max(self.reported_ms or 0, played_ms)
            return
        # After the clear. A report sent before the tab saw the clear can still arrive here first, so only
        # the report marked `cleared` (what was played at the flush) ends the wait; unmarked ones, from a
        # client that does not mark it, count as the most it played when the wait runs out.
        if flush and not self.flush_report.is_set():
            self.flushed_ms = played_ms
            self.flush_report.set()
        else:
            self.reported_ms = max(self.reported_ms or 0, played_ms)
            self.reported_after_clear = True


@dataclass(frozen=True, slots=True)
class Interruption:
    item: Item
    response_active: bool  # the interrupted response is still streaming: cancel it


class TurnTracker:
    def __init__(self) -> None:
        self.item: Item | None = None
        self.active_response: str | None = None
        self._dropped: set[str] = set()
        self.parked = False  # no tab is listening: every reply is dropped
        self._unheard: set[str] = set()  # responses dropped before any of their audio was sent

    def reset(self) -> None:
        self.item = None
        self.active_response = None
        self._dropped.clear()
        self._unheard.clear()

    def drop_unheard(self, response_id: str) -> None:
        """A reply that began while no tab was listening: nobody hears any of it."""
        self._dropped.add(response_id)
        self._unheard.add(response_id)

    def first_unheard_audio(self, response_id: object) -> bool:
        """The first audio of an unheard reply: its item is now known (and is truncated to nothing)."""
        if response_id in self._unheard:
            self._unheard.discard(response_id)
            return True
        return False

    def drop(self, response_id: str) -> None:
        """Whatever this response still sends is stale: the user has moved on."""
        self._dropped.add(response_id)

    def dropped(self, response_id: object) -> bool:
        return response_id in self._dropped

    def is_current(self, response_id: object) -> bool:
        """Events of an interrupted response, or of an older one than the active response, change nothing."""
        if response_id in self._dropped:
            return False
        return self.active_response is None or response_id is None or response_id == self.active_response

    def response_created(self, response_id: str | None) -> None:
        self.active_response = response_id

    def response_done(self, response_id: object) -> None:
        if response_id == self.active_response:
            self.active_response = None

    def audio_sent(self, item_id: str, response_id: str | None, nbytes: int, now: float, content_index: int = 0) -> None:
        item = self.item
        if item is None or item.id != item_id:
            item = self.item = Item(item_id, response_id, now, content_index=content_index)
        item.sent_bytes += nbytes

    def played(self, item_id: str, played_ms: int, flush: bool = False) -> None:
        item = self.item
        if item is not None and item.id == item_id:
            item.played(played_ms, flush)

    def still_playing(self, now: float) -> bool:
        """The tab may still be playing assistant audio (the same allowance as a barge-in's)."""
        item = self.item
        if item is None or item.interrupted:
            return False
        if item.reported_ms is not None and item.reported_ms >= item.sent_ms:
            return False
        return (now - item.first_sent) * 1000.0 < item.sent_ms + PLAYBACK_SLACK_MS

    def interrupt(self, received: float) -> Interruption | None:
        """Speech started at `received`: the playing (or queued) reply is interrupted, if there is one."""
        item = self.item
        if item is None or item.interrupted:
            return None
        response_active = self.active_response is not None and self.active_response == item.response_id
        if not response_active and item.reported_ms is not None and item.reported_ms >= item.sent_ms:
            return None  # the tab said it played all of it
        expected_end_ms = item.sent_ms + PLAYBACK_SLACK_MS
        if not response_active and (received - item.first_sent) * 1000.0 >= expected_end_ms:
            return None  # the reply has finished playing: nothing to interrupt
        item.interrupted = True
        item.cleared_at = received
        item.flush_report = asyncio.Event()
        if item.response_id:
            self._dropped.add(item.response_id)
        return Interruption(item, response_active)
