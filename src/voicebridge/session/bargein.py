"""Barge-in: the user talks over the assistant.

On `speech_started` while assistant audio is playing or queued in the tab (TurnTracker.interrupt
decides), the tab's playback is cleared at once and the rest of the interrupted response dropped
(events.py); then, here, the response is cancelled if it is still streaming and the assistant item
truncated at what the tab reports having played, so the model remembers what the user heard.
"""

from __future__ import annotations

from azure.ai.voicelive.aio import VoiceLiveConnection

from ..logs import event
from ..tasks import TaskOwner
from .connection import UpstreamLink, quiet_send
from .ids import INTERNAL_EVENT_PREFIX, internal_id
from .transcripts import TranscriptKeeper
from .turns import Interruption, Item

__all__ = ["INTERNAL_EVENT_PREFIX", "BargeIn", "internal_id"]


class BargeIn:
    """The upstream side of a barge-in, once the tab has been cleared (see events.UpstreamEvents)."""

    def __init__(self, session_id: str, upstream: UpstreamLink, transcripts: TranscriptKeeper, *, tasks: TaskOwner):
        self._session_id = session_id
        self._upstream = upstream
        self._transcripts = transcripts
        self._tasks = tasks

    def recover(self, interruption: Interruption) -> None:
        item = interruption.item
        if interruption.response_active:
            self.cancel(item.response_id)
        conn = self._upstream.conn
        if conn is not None:
            self._tasks.spawn(self._truncate(conn, item), "truncate")

    def cancel(self, response_id: str | None) -> None:
        # Names the response, so that a late cancel can never hit the user's next one.
        cancel = {"type": "response.cancel", "event_id": internal_id("cancel"), "response_id": response_id}
        self._upstream.send_soon(self._upstream.gate.sent(cancel, "cancel"), "cancel")

    def unheard(self, item_id: str, content_index: int = 0) -> None:
        """A reply nobody heard (it began while the tab was away): the model keeps none of its audio."""
        truncate = {
            "type": "conversation.item.truncate",
            "event_id": internal_id("truncate"),
            "item_id": item_id,
            "content_index": content_index,
            "audio_end_ms": 0,
        }
        self._upstream.send_soon(self._upstream.gate.sent(truncate, "truncate"), "truncate")

    async def _truncate(self, conn: VoiceLiveConnection, item: Item) -> None:
        audio_end_ms, basis = await item.heard_ms()
        if self._upstream.conn is not conn:
            return  # the upstream was replaced meanwhile; its conversation is gone
        if item.sent_ms:
            self._transcripts.heard(item.id, audio_end_ms / item.sent_ms, audio_end_ms)
        truncate = {
            "type": "conversation.item.truncate",
            "event_id": internal_id("truncate"),
            "item_id": item.id,
            "content_index": item.content_index,  # the audio's own, from its deltas
            "audio_end_ms": audio_end_ms,
        }
        await quiet_send(conn, self._upstream.gate.sent(truncate, "truncate"))
        event("barge_in.truncate", self._session_id, item=item.id, audio_end_ms=audio_end_ms, sent_ms=item.sent_ms, basis=basis)
