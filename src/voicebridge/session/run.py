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
from . import mcpevents, rollover
from .approvals import Approvals
from .bargein import BargeIn
from .connection import UpstreamLink
from .events import UpstreamEvents
from .initiative import Initiative, InitiativeOptions
from .limits import Limits, RunLimits
from .mcpcalls import McpCalls
from .stats import SessionStats
from .tab import TabLink, TabStatus
from .tools import ToolCalls
from .transcripts import DEFAULT_HISTORY, TranscriptKeeper
from .turns import TurnTracker
from .uplink import Uplink

_typed_ids = itertools.count(1)


class Run:
    def __init__(
        self,
        *,
        session_id: str,
        tab: TabLink,
        tasks: TaskOwner,
        stats: SessionStats,
        record_transcripts: bool,
        history_items: int = DEFAULT_HISTORY,
        on_ready: Callable[[], None] = lambda: None,
        toolbox: Toolbox | None = None,
        limits: Limits | None = None,
        user: str = "",
        initiative: InitiativeOptions | None = None,
        model: str = "",
        approval_s: float = 30.0,
        approval_arguments: bool = False,
        tokens_used: Callable[[int, int], None] = lambda endpoint, tokens: None,
    ):
        self._tokens_used = tokens_used  # the endpoint's tokens per minute, for the pacer
        self._tab = tab
        self._stats = stats
        self.telemetry = SessionTelemetry(session_id, record_transcripts, user=user, model=model)
        self.status = TabStatus(session_id, tab, self.telemetry, on_change=lambda state: self.initiative.state_changed(state))
        self.limits = RunLimits(limits or Limits(), tab, self.status, telemetry=self.telemetry)
        self.upstream = UpstreamLink(tasks, session_id)
        self.rejected = False  # the service refused the session configuration: the run ends
        self.rolling = False  # between a rollover's old connection and its next (rollover.py)
        self.turns = TurnTracker()
        self.transcripts = TranscriptKeeper(
            self._transcript, history_items, on_word=lambda *word: tab.send(protocol.word(*word))
        )
        self.barge_in = BargeIn(session_id, self.upstream, self.transcripts, tasks=tasks)
        self.tools = ToolCalls(
            session_id, toolbox or Toolbox(), self.upstream, tab=tab, tasks=tasks, telemetry=self.telemetry,
            user_speaking=lambda: self.status.state is State.LISTENING,
            on_started=lambda: self.initiative.tool_started(),
            on_all_done=lambda: self.initiative.tools_done(),
        )
        self.initiative = Initiative(
            session_id, initiative or InitiativeOptions(), self.upstream, turns=self.turns,
            state=lambda: self.status.state,
            tools_running=lambda: self.tools.running,
        )
        user_speaking = lambda: self.status.state is State.LISTENING  # noqa: E731
        self.approvals = Approvals(session_id, self.upstream, tab, timeout_s=approval_s,
                                   show_arguments=approval_arguments, user_speaking=user_speaking)
        self.mcp = McpCalls(session_id, self.upstream, tab, user_speaking=user_speaking)
        # Agent mode: the agent conversation this run continues on every new connection (None: not yet known).
        self.conversation_id: str | None = None
        self.continued = False  # this connection continues the agent conversation: nothing to replay
        self.events = UpstreamEvents(
            session_id=session_id,
            status=self.status,
            tab=tab,
            upstream=self.upstream,
            turns=self.turns,
            transcripts=self.transcripts,
            barge_in=self.barge_in,
            tools=self.tools,
            telemetry=self.telemetry,
            stats=stats,
            on_ready=lambda: self._ready(on_ready),
            on_speech=self._activity,
            on_rejected=self._rejected,
            side=mcpevents.side_events(self.approvals, self.mcp, self._conversation),
            on_usage=self._usage,
        )
        self.uplink = Uplink()

    def accepts_audio(self) -> bool:
        # While a rollover moves to the next connection, audio waits in the uplink queue for it.
        connected = self.upstream.conn is not None or self.rolling
        return connected and self.status.state in protocol.ACTIVE_STATES

    def audio(self, message: Audio) -> None:
        if not self.limits.audio_allowed(message.nbytes):
            self._stats.dropped_up += 1
            return
        self._stats.chunks_up += 1
        self.uplink.push(message.data)

    def text(self, message: Text) -> None:
        """A typed turn: like speech, it interrupts a reply that is playing; then the model answers it."""
        self._activity()
        self.approvals.interrupted()  # typing instead of answering denies what waits, as speaking does
        self.events.interrupt(time.monotonic())
        active = self.turns.active_response
        if active is not None and not self.turns.dropped(active):
            # A reply still being prepared (no audio yet) gives way to the typed turn.
            self.turns.drop(active)
            self.barge_in.cancel(active)
        self.transcripts.user(f"typed-{next(_typed_ids)}", message.text, final=True, typed=True)
        self.status.show(self.status.machine.speech_stopped())
        self.telemetry.turn_started()
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": message.text}]}
        gate = self.upstream.gate
        self.upstream.send_soon(gate.sent({"type": "conversation.item.create", "item": item}, "text"), "text")
        # A cancelled reply stays active until its response.done: the gate sends the create after it.
        gate.create("text")

    def _rejected(self) -> None:
        self.rejected = True  # the run loop ends the relay after this event, and the run with it

    def playback(self, message: Playback) -> None:
        if message.latency_ms is not None:
            self.telemetry.playback_latency(message.latency_ms)
        self.turns.played(message.item_id, message.played_ms, message.cleared)

    def _ready(self, on_ready: Callable[[], None]) -> None:
        """Ready on a fresh connection: the tab's resume token, then perhaps the greeting."""
        on_ready()
        self.initiative.ready(conversation_empty=not self.transcripts.replayable())

    def _activity(self) -> None:
        """The person spoke or typed: the idle clock starts again, and so does the re-prompt's."""
        self.limits.activity()
        self.initiative.activity()

    def connected(self, conn: VoiceLiveConnection, rolled: bool = False, continued: bool = False) -> None:
        """A new upstream connection: what the previous one said about turns and items is void (after a
        rollover, the microphone audio queued meanwhile goes to the new one; a connection that `continued`
        the agent conversation needs no replay, the service keeps it)."""
        self.initiative.new_connection()
        self.continued = continued
        self.turns.reset()
        self.transcripts.new_connection()
        self.tools.reset()
        self.mcp.reset()
        if not rolled:
            self.uplink.clear()
        self.rolling = False
        self.upstream.use(conn, rolled)

    def quiet(self) -> bool:
        """Nobody speaks, no reply is active or playing, no tool is running: a moment to roll over."""
        return rollover.quiet(self.status.state, self.upstream.gate.busy, self.turns.still_playing(time.monotonic()),
                              self.tools.running)

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
        if history:
            self.initiative.history_given()
        for turn in history:
            self.transcripts.remember(turn.role, turn.text)

    async def replay(self, conn: VoiceLiveConnection) -> int:
        """The conversation so far into a freshly configured connection, before the tab hears ready."""
        if self.continued:
            return 0  # the agent conversation is the service's: it remembers what was said
        entries = self.transcripts.replayable()
        if entries:
            await self.upstream.replay.send(conn, entries, self.upstream.gate.sent)
        return len(entries)

    def _conversation(self, conversation_id: str) -> None:
        self.conversation_id = conversation_id

    def _usage(self, tokens: int) -> None:
        """A reply's billed tokens (telemetry.token_counts): the endpoint's quota, and the session's budget."""
        self._tokens_used(self.upstream.endpoint, tokens)
        self.limits.tokens(tokens)

    def _transcript(self, role: str, item_id: str, text: str, final: bool, **extra: object) -> None:
        self._tab.send(protocol.transcript(role, item_id, text, final, **extra))
        if final:
            self.telemetry.transcript(role, text)
