"""Barge-in: the user talks over the assistant.

On `speech_started` while assistant audio is playing or queued in the tab (TurnTracker.interrupt
decides), the tab's playback is cleared at once and the rest of the interrupted response dropped
(events.py); then, here, the response is cancelled if it is still streaming and the assistant item
truncated at what the tab reports having played, so the model remembers what the user heard.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from azure.ai.voicelive.aio import VoiceLiveConnection

from ..logs import event
from ..tasks import TaskOwner
from .connection import UpstreamLink, quiet_send
from .transcripts import TranscriptKeeper
from .turns import Interruption, Item

# Events the bridge sends itself carry this prefix so the errors they provoke stay internal.
INTERNAL_EVENT_PREFIX = "vb-"

_event_ids = itertools.count(1)


def internal_id(kind: str) -> str:
    return f"{INTERNAL_EVENT_PREFIX}{kind}-{next(_event_ids)}"


@dataclass(eq=False, slots=True)
class BargeIn:
    """The upstream side of a barge-in, once the tab has been cleared (see events.UpstreamEvents)."""

    session_id: str
    upstream: UpstreamLink
    transcripts: TranscriptKeeper
    tasks: TaskOwner

    def recover(self, interruption: Interruption) -> None:
        item = interruption.item
        if interruption.response_active:
            # Names the response, so that a late cancel can never hit the user's next one.
            cancel = {"type": "response.cancel", "event_id": internal_id("cancel"), "response_id": item.response_id}
            self.upstream.send_soon(cancel, "cancel")
        conn = self.upstream.conn
        if conn is not None:
            self.tasks.spawn(self._truncate(conn, item), "truncate")

    async def _truncate(self, conn: VoiceLiveConnection, item: Item) -> None:
        audio_end_ms, basis = await item.heard_ms()
        if self.upstream.conn is not conn:
            return  # the upstream was replaced meanwhile; its conversation is gone
        if item.sent_ms:
            self.transcripts.heard(item.id, audio_end_ms / item.sent_ms)
        truncate = {
            "type": "conversation.item.truncate",
            "event_id": internal_id("truncate"),
            "item_id": item.id,
            "content_index": 0,
            "audio_end_ms": audio_end_ms,
        }
        await quiet_send(conn, truncate)
        event("barge_in.truncate", self.session_id, item=item.id, audio_end_ms=audio_end_ms, sent_ms=item.sent_ms, basis=basis)
