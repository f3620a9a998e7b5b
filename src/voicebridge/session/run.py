"""One run of a tab's session: from a start to its end, across upstream reconnects.

A run is built whole at each start and dropped at its end, so nothing of one conversation (states,
turns, transcripts, telemetry) leaks into the next, and a late callback meets a finished run.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

from azure.ai.voicelive.aio import VoiceLiveConnection

from .. import protocol
from ..protocol import Audio, Playback, State, Text, Turn
from ..tasks import TaskOwner
from ..telemetry import SessionTelemetry
from ..tools import Toolbox
from .bargein import BargeIn
from .connection import UpstreamLink
from .events import UpstreamEvents
from .ids import internal_id
from .limits import Limits, RunLimits
from .tab import TabLink, TabStatus
from .tools import ToolCalls
from .transcripts import DEFAULT_HISTORY, TranscriptKeeper
from .turns import TurnTracker
from .uplink import Uplink

_typed_ids = itertools.count(1)


class Run:
    def __init__(
        self,
        session_id: str,
        tab: TabLink,
        tasks: TaskOwner,
        stats: dict[str, int],
        record_transcripts: bool,
        history_items: int = DEFAULT_HISTORY,
        on_ready: Callable[[], None] = lambda: None,
        toolbox: Toolbox | None = None,
        limits: Limits | None = None,
        user: str = "",
        tokens_used: Callable[[int, int], None] = lambda endpoint, tokens: None,
    ):
        self._tokens_used = tokens_used  # the endpoint's tokens per minute, for the pacer
        self._tab = tab
        self._stats = stats
        self.telemetry = SessionTelemetry(session_id, record_transcripts, user=user)
        self.status = TabStatus(session_id, tab, self.telemetry)
        self.limits = RunLimits(limits or Limits(), tab, self.status, self.telemetry)
        self.upstream = UpstreamLink(tasks)
        self.turns = TurnTracker()
        self.transcripts = TranscriptKeeper(self._transcript, history_items)
        self.barge_in = BargeIn(session_id, self.upstream, self.transcripts, tasks)
        self.tools = ToolCalls(
            session_id, toolbox or Toolbox(), self.upstream, tab, tasks, self.telemetry,
            user_speaking=lambda: self.status.state is State.LISTENING,
        )
        self.events = UpstreamEvents(
            session_id, self.status, tab, self.upstream, self.turns, self.transcripts, self.barge_in, self.tools,
            self.telemetry, stats, on_ready, on_speech=self.limits.activity, on_usage=self._usage,
        )
        self.uplink = Uplink()

    def accepts_audio(self) -> bool:
        return self.upstream.conn is not None and self.status.state in protocol.ACTIVE_STATES

    def audio(self, message: Audio) -> None:
        if not self.limits.audio_allowed(message.nbytes):
            self._stats["dropped_up"] += 1
            return
        self._stats["chunks_up"] += 1
        self.uplink.push(message.data)

    def text(self, message: Text) -> None:
        """A typed turn: like speech, it interrupts a reply that is playing; then the model answers it."""
        self.limits.activity()
        self.events.interrupt(time.monotonic())
        active = self.turns.active_response
        if active is not None and not self.turns.dropped(active):
            # A reply still being prepared (no audio yet) would refuse the new response: it gives way.
            self.turns.drop(active)
            self.barge_in.cancel(active)
        self.transcripts.user(f"typed-{next(_typed_ids)}", message.text, final=True, typed=True)
        self.status.show(self.status.machine.speech_stopped())
        self.telemetry.turn_started()
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": message.text}]}
        self.upstream.send_soon_many(
            [
                {"type": "conversation.item.create", "event_id": internal_id("text"), "item": item},
                {"type": "response.create", "event_id": internal_id("text-reply")},
            ],
            "text",
        )

    def playback(self, message: Playback) -> None:
        if message.latency_ms is not None:
            self.telemetry.playback_latency(message.latency_ms)
        self.turns.played(message.item_id, message.played_ms, message.cleared)

    def connected(self, conn: VoiceLiveConnection) -> None:
        """A new upstream connection: what the previous one said about turns and items is void."""
        self.turns.reset()
        self.transcripts.new_connection()
        self.tools.reset()
        self.uplink.clear()
        self.upstream.attach(conn)

    def park(self) -> None:
        """The tab is gone, perhaps for a moment: what it was playing ends where it last said it was."""
        self.turns.parked = True
        interruption = self.turns.interrupt(time.monotonic())
        if interruption is not None:
            item = interruption.item
            item.played(item.reported_ms or 0, flush=True)  # no flush report will come: the last one stands
            self.barge_in.recover(interruption)
        active = self.turns.active_response
        if active is not None and not self.turns.dropped(active):  # a reply not yet heard at all
            self.turns.drop_unheard(active)
            self.barge_in.cancel(active)
        self.status.show(self.status.machine.response_finished())

    def resume(self) -> None:
        self.turns.parked = False

    def seed(self, history: tuple[Turn, ...]) -> None:
        """The conversation the tab handed back with session.start (replayed like our own)."""
        for turn in history:
            self.transcripts.remember(turn.role, turn.text)

    async def replay(self, conn: VoiceLiveConnection) -> int:
        """The conversation so far into a freshly configured connection, before the tab hears ready."""
        entries = self.transcripts.replayable()
        if entries:
            await self.upstream.replay.send(conn, entries)
        return len(entries)

    def _usage(self, usage: dict) -> None:
        tokens = usage.get("total_tokens")
        if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens > 0:
            self._tokens_used(self.upstream.endpoint, tokens)
            self.limits.tokens(tokens)

    def _transcript(self, role: str, item_id: str, text: str, final: bool, **extra: object) -> None:
        self._tab.send(protocol.transcript(role, item_id, text, final, **extra))
        if final:
            self.telemetry.transcript(role, text)
