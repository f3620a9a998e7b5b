"""What the agent says without being asked (issue 24): the greeting, the filler while a tool runs, and
the re-prompt after a silence.

Each is one `response.create` through the connection's response gate (gate.py), sent only at a moment
no response is active or asked for (the gate holds any request that comes meanwhile, a tool's reply say,
until this one's `response.done`), so it never talks over a reply or the person. A fixed line is a `pre_generated_assistant_message`: it costs no
model turn, always says the same words, and lands in the conversation like any reply (its transcript
reaches the tab and the history the usual way, and a barge-in during it works like any other).

- Greeting: once per run, when its first connection becomes ready, and only if the conversation is
  empty: never on a reconnect, a resume or a rollover (the conversation already started), never when
  session.start handed back history. `auto` lets the model greet, following its instructions.
- Filler: when a tool has been running for `tool_filler_ms` and nothing is being said; once per batch
  of calls. Skipped where Voice Live speaks one itself (`interim_response`, cascaded models).
- Re-prompt: after `reprompt_s` in `ready` with nobody speaking, no tool running and no reply playing
  (a reply streamed faster than real time is still playing in the tab: the silence starts after it);
  once per silence (the person's next words or text arm it again). The idle limit still ends the session.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..logs import event
from ..protocol import State
from .connection import UpstreamLink
from .turns import PLAYBACK_SLACK_MS, TurnTracker

GREETING_AUTO = "auto"  # VOICEBRIDGE_GREETING=auto: the model greets, following its instructions
FILLER_RETRY_S = 0.2  # the filler is due but a response is active: look again this much later


@dataclass(frozen=True, slots=True)
class InitiativeOptions:
    greeting: str = ""  # "": none; "auto": the model greets; else the words to say
    tool_filler_ms: int = 0  # 0: no filler
    tool_filler: str = ""
    filler_by_service: bool = False  # Voice Live's interim_response speaks the filler
    reprompt_s: float = 0.0  # 0: no re-prompt
    reprompt: str = ""
    idle_s: float = 0.0  # the idle limit: a re-prompt due after it would never be heard


def pre_generated(text: str) -> dict:
    """response.create's `response` speaking `text` as it is (ResponseCreateParams in azure-ai-voicelive)."""
    return {"pre_generated_assistant_message": {
        "type": "message", "role": "assistant", "content": [{"type": "text", "text": text}]}}


class Initiative:
    def __init__(
        self,
        session_id: str,
        options: InitiativeOptions,
        upstream: UpstreamLink,
        *,
        turns: TurnTracker,
        state: Callable[[], State],
        tools_running: Callable[[], bool],
    ):
        self._id = session_id
        self._options = options
        self._upstream = upstream
        self._turns = turns
        self._state = state  # the tab-visible state
        self._tools_running = tools_running
        self._greeted = False  # this run has greeted, or must not (history, a later connection)
        self._filler: asyncio.TimerHandle | None = None
        self._filled = False  # this batch of calls had its filler
        self._reprompt: asyncio.TimerHandle | None = None
        self._prompted = False  # this silence had its re-prompt

    # --- what the run tells it ---------------------------------------------------------------------

    def history_given(self) -> None:
        """session.start carried the conversation so far: it has begun, nobody is greeted."""
        self._greeted = True

    def ready(self, conversation_empty: bool) -> None:
        """A connection became ready. Only the run's first, on an empty conversation, is greeted."""
        first, self._greeted = not self._greeted, True
        if first and conversation_empty and self._options.greeting and not self._turns.parked:
            if self._options.greeting == GREETING_AUTO:
                self._create(None, "greeting")
            else:
                self._create(pre_generated(self._options.greeting), "greeting")

    def state_changed(self, state: State) -> None:
        """The tab-visible state changed: a silence in `ready` starts (or a turn ends it)."""
        if state is State.READY:
            self._arm_reprompt()
        else:
            self._cancel_reprompt()

    def activity(self) -> None:
        """The person spoke or typed: the next silence may be re-prompted again."""
        self._prompted = False
        self._cancel_reprompt()

    def tool_started(self) -> None:
        opts = self._options
        self._cancel_reprompt()
        if opts.tool_filler_ms <= 0 or opts.filler_by_service or self._filler is not None or self._filled:
            return
        loop = asyncio.get_running_loop()
        self._filler = loop.call_later(opts.tool_filler_ms / 1000, self._filler_time)

    def tools_done(self) -> None:
        """Every call of the batch answered: the next batch may have its own filler."""
        self._clear_filler()
        self._filled = False

    def new_connection(self) -> None:
        """Calls and silences of the previous connection are void."""
        self._clear_filler()
        self._filled = False
        self._cancel_reprompt()

    def cancel(self) -> None:
        """The run is over: nothing of it may speak later."""
        self._clear_filler()
        self._cancel_reprompt()

    # --- the lines ---------------------------------------------------------------------------------

    def _filler_time(self) -> None:
        self._filler = None
        if not self._tools_running() or self._turns.parked or self._state() is State.LISTENING:
            return
        if self._upstream.gate.busy:  # the calls' own response is still streaming: try again shortly
            self._filler = asyncio.get_running_loop().call_later(FILLER_RETRY_S, self._filler_time)
            return
        self._filled = True
        self._create(pre_generated(self._options.tool_filler), "filler")

    def _arm_reprompt(self) -> None:
        opts = self._options
        if opts.reprompt_s <= 0 or self._prompted or self._reprompt is not None:
            return
        if opts.idle_s and opts.reprompt_s >= opts.idle_s:
            return
        self._reprompt = asyncio.get_running_loop().call_later(opts.reprompt_s, self._reprompt_time)

    def _reprompt_time(self) -> None:
        self._reprompt = None
        if self._state() is not State.READY or self._tools_running() or self._upstream.gate.busy or self._turns.parked:
            return  # not a silence after all: the next `ready` arms it again
        now = time.monotonic()
        if self._turns.still_playing(now):
            # The reply was streamed faster than it plays: the silence begins when the tab has played it.
            item = self._turns.item
            ends = item.first_sent + (item.sent_ms + PLAYBACK_SLACK_MS) / 1000.0
            delay = max(0.05, ends - now) + self._options.reprompt_s
            self._reprompt = asyncio.get_running_loop().call_later(delay, self._reprompt_time)
            return
        self._prompted = True
        self._create(pre_generated(self._options.reprompt), "reprompt")

    def _create(self, response: dict | None, kind: str) -> None:
        if self._upstream.conn is not None and self._upstream.gate.say(response, kind):
            event(f"initiative.{kind}", self._id)

    def _clear_filler(self) -> None:
        if self._filler is not None:
            self._filler.cancel()
            self._filler = None

    def _cancel_reprompt(self) -> None:
        if self._reprompt is not None:
            self._reprompt.cancel()
            self._reprompt = None
