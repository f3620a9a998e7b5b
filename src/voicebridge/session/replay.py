"""Giving a new upstream session the conversation so far (issue 12).

A fresh Voice Live session knows nothing of what was said. After it is configured (session.update
sent) and before the tab hears `ready`, the bridge creates one conversation item per history entry, in
order: the user's words as `input_text`, the assistant's as `text`. No response.create follows: the
model only remembers, it does not answer the replay. The tab gets `ready` once the service has
acknowledged every item (conversation.item.created, or an error naming the item's event), so the user's
next words always meet a model that knows the conversation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from azure.ai.voicelive.aio import VoiceLiveConnection

from ..protocol import Role
from .ids import internal_id
from .transcripts import Entry

log = logging.getLogger("voicebridge.session")

REPLAY_EVENT = "replay"
# Acknowledgements of a created item: the preview protocol names it `created`, the GA one `added`.
ITEM_ACKS = frozenset(("conversation.item.created", "conversation.item.added"))


def item_event(entry: Entry) -> dict:
    part = "input_text" if entry.role == Role.USER else "text"
    return {
        "type": "conversation.item.create",
        "event_id": internal_id(REPLAY_EVENT),
        "item": {"type": "message", "role": entry.role, "content": [{"type": part, "text": entry.text}]},
    }


class Replay:
    """One connection's replay: what was sent, and how many items the service has yet to acknowledge."""

    def __init__(self) -> None:
        self.pending = 0
        self._event_ids: set[str] = set()

    async def send(self, conn: VoiceLiveConnection, entries: list[Entry], note: Callable[[dict, str], dict]) -> None:
        """`note` (ResponseGate.sent) remembers each event's id, so an error naming one is known as ours."""
        events = [note(item_event(entry), REPLAY_EVENT) for entry in entries]
        self._event_ids = {e["event_id"] for e in events}
        self.pending = len(events)
        for ev in events:
            await conn.send(ev)

    def acknowledged(self, event: dict) -> bool:
        """`event` settles one replayed item; returns whether the replay was waiting for it."""
        if self.pending == 0:
            return False
        if event.get("type") in ITEM_ACKS:
            self.pending -= 1
            return True
        error = event.get("error") if isinstance(event.get("error"), dict) else {}
        source = error.get("event_id")
        if event.get("type") == "error" and source in self._event_ids:
            # The service refused an item: the conversation goes on without it.
            log.warning("event=replay.item_refused code=%s", error.get("code"))
            self._event_ids.discard(source)
            self.pending -= 1
            return True
        return False
