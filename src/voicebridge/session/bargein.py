"""Barge-in: the user talks over the assistant.

On `speech_started` while assistant audio is playing or queued in the tab: clear the tab's playback at
once, drop the rest of the interrupted response, cancel it if it is still streaming, and truncate the
assistant item at what the tab reports having played, so the model remembers what the user heard.
"""

from __future__ import annotations

import itertools
import time

from .. import protocol
from ..logs import event
from ..tasks import TaskOwner
from ..telemetry import SessionTelemetry
from .connection import UpstreamLink, quiet_send
from .tab import TabLink
from .transcripts import TranscriptKeeper
from .turns import Item, TurnTracker

# Events the bridge sends itself carry this prefix so the errors they provoke stay internal.
INTERNAL_EVENT_PREFIX = "vb-"

_event_ids = itertools.count(1)


def internal_id(kind: str) -> str:
    return f"{INTERNAL_EVENT_PREFIX}{kind}-{next(_event_ids)}"


class BargeIn:
    def __init__(
        self,
        session_id: str,
        tab: TabLink,
        turns: TurnTracker,
        upstream: UpstreamLink,
        transcripts: TranscriptKeeper,
        telemetry: SessionTelemetry,
        stats: dict[str, int],
        tasks: TaskOwner,
    ):
        self._session_id = session_id
        self._tasks = tasks
        self._tab = tab
        self._turns = turns
        self._upstream = upstream
        self._transcripts = transcripts
        self._telemetry = telemetry
        self._stats = stats

    def speech_started(self, received: float) -> None:
        interruption = self._turns.interrupt(received)
        if interruption is None:
            return
        item = interruption.item
        self._tab.send(protocol.CLEAR)
        self._stats["barge_ins"] += 1
        self._telemetry.barge_in((time.monotonic() - received) * 1000.0)
        if interruption.response_active:
            # Names the response, so that a late cancel can never hit the user's next one.
            cancel = {"type": "response.cancel", "event_id": internal_id("cancel"), "response_id": item.response_id}
            self._upstream.send_soon(cancel, "cancel")
        conn = self._upstream.conn
        if conn is not None:
            self._tasks.spawn(self._truncate(conn, item), "truncate")

    async def _truncate(self, conn: object, item: Item) -> None:
        audio_end_ms, basis = await item.heard_ms()
        if self._upstream.conn is not conn:
            return  # the upstream was replaced meanwhile; its conversation is gone
        if item.sent_ms:
            self._transcripts.heard(item.id, audio_end_ms / item.sent_ms)
        truncate = {
            "type": "conversation.item.truncate",
            "event_id": internal_id("truncate"),
            "item_id": item.id,
            "content_index": 0,
            "audio_end_ms": audio_end_ms,
        }
        await quiet_send(conn, truncate)  # type: ignore[arg-type]
        event("barge_in.truncate", self._session_id, item=item.id, audio_end_ms=audio_end_ms, sent_ms=item.sent_ms, basis=basis)
