"""Voice Live's server events, turned into tab states, audio, transcripts and barge-ins.

A surprising event (unparseable, an unexpected shape) is skipped and logged, never fatal: the
conversation goes on.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from .. import protocol
from ..logs import event as log_event
from ..protocol import State
from ..telemetry import SessionTelemetry, billed_tokens
from .bargein import BargeIn
from .connection import UpstreamLink
from .mcpevents import SideEvents
from .notices import ServiceNotices
from .replies import failed_reply, report_failed
from .serviceerrors import service_error
from .stats import SessionStats
from .tab import TabLink, TabStatus
from .tools import ToolCalls
from .transcripts import TranscriptKeeper
from .turns import TurnTracker

log = logging.getLogger("voicebridge.session")

# What history keeps for a user turn the service could not transcribe: the model heard it, so the
# conversation replayed elsewhere must show that something was said.
UNTRANSCRIBED = "(inaudible)"


def _b64_len(data: str) -> int:
    return len(data) // 4 * 3 - (2 if data.endswith("==") else 1 if data.endswith("=") else 0)


class UpstreamEvents:
    def __init__(
        self,
        session_id: str,
        status: TabStatus,
        tab: TabLink,
        *,
        upstream: UpstreamLink,
        turns: TurnTracker,
        transcripts: TranscriptKeeper,
        barge_in: BargeIn,
        tools: ToolCalls,
        telemetry: SessionTelemetry,
        stats: SessionStats,
        on_ready: Callable[[], None] = lambda: None,
        on_speech: Callable[[], None] = lambda: None,
        on_rejected: Callable[[], None] = lambda: None, side: SideEvents | None = None,
        on_usage: Callable[[int], None] = lambda tokens: None,
    ):
        self._id = self.session_id = session_id
        self._status = status
        self._machine = status.machine
        self._tab = tab
        self._upstream = self.upstream = upstream
        self._turns = turns
        self._transcripts = transcripts
        self._barge_in = barge_in
        self._tools = tools
        self._telemetry = telemetry
        self._stats = stats
        self.notices = ServiceNotices(session_id, stats, telemetry)  # warning, rate_limits.updated
        self._on_ready = on_ready  # the run is ready (again) on a fresh connection: the tab gets a resume token
        self._on_speech = on_speech  # the user spoke: activity for the idle limit
        self._on_rejected = on_rejected  # the service refused the configuration: the run ends
        self._side = side or SideEvents()  # after this module's handlers: the agent conversation, MCP calls
        self._on_usage = on_usage  # response.done's billed tokens: the quota's and the session's token budgets

    def dispatch(self, raw: bytes) -> None:
        try:
            event = json.loads(raw)
            handler = _HANDLERS.get(event.get("type"), _skip)
        except (ValueError, AttributeError):
            log.warning("event=upstream.unparseable session=%s bytes=%d", self._id, len(raw))
            return
        replay = self._upstream.replay
        if replay.pending and replay.acknowledged(event) and not replay.pending and self._upstream.configured:
            self.become_ready()
        try:
            handler(self, event)
            self._side.handle(event)
        except Exception:  # an event shaped in a way nobody expected: skip it, keep the conversation
            log.exception("event=upstream.unexpected session=%s type=%s", self._id, event.get("type"))

    def _session_updated(self, event: dict) -> None:
        self._upstream.configured = True
        if not self._upstream.replay.pending:
            self.become_ready()

    def become_ready(self) -> None:
        """Configured, and the replayed conversation acknowledged: the tab may talk."""
        if self._upstream.rolled:  # a rollover: the tab talked on all along and is told nothing
            if not self._upstream.ready:
                log_event("session.rolled_over", self._id, connect_ms=round(self._upstream.confirmed()))
            return
        new = self._machine.session_updated()
        if new is None:
            return
        elapsed_ms = self._upstream.confirmed()
        reconnect = self._upstream.reconnect
        self._telemetry.connected(elapsed_ms, reconnect=reconnect)
        log_event("session.ready", self._id, connect_ms=round(elapsed_ms), reconnect=reconnect)
        self._on_ready()
        self._status.show(new)

    def interrupt(self, received: float) -> None:
        """The user took the turn (speech or typed text): assistant audio playing or queued is a barge-in."""
        interruption = self._turns.interrupt(received)
        if interruption is not None:  # silence the tab first, then sort out the upstream
            self._tab.send(protocol.CLEAR)
            self._stats.barge_ins += 1
            self._telemetry.barge_in((time.monotonic() - received) * 1000.0)
            # The interrupted turn ends here: its response.done may come after the user's next turn began
            # (cancellation is asynchronous on the service).
            self._telemetry.turn_ended("cancelled")
            self._barge_in.recover(interruption)

    def _speech_started(self, event: dict) -> None:
        self._on_speech()
        self.interrupt(time.monotonic())
        self._transcripts.began("user", event.get("item_id"))
        self._status.show(self._machine.speech_started())

    def _speech_stopped(self, event: dict) -> None:
        self._status.show(self._machine.speech_stopped())
        self._telemetry.turn_started()

    def _response_created(self, event: dict) -> None:
        response = event.get("response")
        response_id = response.get("id") if isinstance(response, dict) else None
        self._upstream.gate.created(response_id)
        if self._turns.parked and isinstance(response_id, str):
            # No tab to hear it (the socket dropped): cancel it; its item is truncated to nothing.
            self._turns.drop_unheard(response_id)
            self._barge_in.cancel(response_id)
            return
        self._turns.response_created(response_id)

    def _audio_delta(self, event: dict) -> None:
        response_id = event.get("response_id")
        content_index = event.get("content_index")
        content_index = content_index if isinstance(content_index, int) and not isinstance(content_index, bool) else 0
        if self._turns.dropped(response_id):
            if self._turns.first_unheard_audio(response_id) and isinstance(event.get("item_id"), str):
                self._barge_in.unheard(event["item_id"], content_index)
            return
        data = event.get("delta")
        item_id = event.get("item_id")
        if not isinstance(data, str) or not isinstance(item_id, str):
            return
        self._turns.audio_sent(item_id, response_id, _b64_len(data), time.monotonic(), content_index)
        self._stats.chunks_down += 1
        self._tab.send(protocol.audio(data, item_id))
        if self._machine.state != State.SPEAKING:
            self._status.show(self._machine.audio_delta())
            self._telemetry.first_audio()

    def _audio_done(self, event: dict) -> None:
        if self._turns.is_current(event.get("response_id")):
            self._status.show(self._machine.response_finished())

    def _response_done(self, event: dict) -> None:
        response = event.get("response") if isinstance(event.get("response"), dict) else {}
        response_id = response.get("id")
        status = str(response.get("status", "unknown"))
        current = self._turns.is_current(response_id)
        dropped = self._turns.dropped(response_id)
        self._upstream.gate.done(response_id)
        counts = self._telemetry.usage(response.get("usage"))
        if counts:
            self._on_usage(billed_tokens(counts))
        failure = failed_reply(response)
        if failure is not None and not dropped:  # the person was answered with silence: say why
            report_failed(failure, self._id, self._status, self._telemetry)
        self._transcripts.response_done(response_id, interrupted=status == "cancelled" or dropped)
        self._turns.response_done(response_id)
        if self._tools.asked(response_id) or self._side.continues(response_id):
            # The reply comes in the response that follows the tools' outputs: the turn goes on.
            self._tools.response_done(response_id, interrupted=status == "cancelled" or dropped)
            if current:
                return
        if current:
            self._telemetry.turn_ended(status)
            self._status.show(self._machine.response_finished())
        elif dropped and self._machine.state == State.LISTENING:
            self._telemetry.turn_ended(status)  # the interrupted turn ends; the user's next one has not begun

    def _user_transcript_failed(self, event: dict) -> None:
        error = event.get("error") if isinstance(event.get("error"), dict) else {}
        log.warning("event=transcription.failed session=%s code=%s", self._id, error.get("code") or error.get("type"))
        self._transcripts.user(event.get("item_id"), UNTRANSCRIBED, final=True, untranscribed=True)

    def _user_transcript_delta(self, event: dict) -> None:
        self._transcripts.user(event.get("item_id"), event.get("delta"), final=False)

    def _user_transcript_done(self, event: dict) -> None:
        self._transcripts.user(event.get("item_id"), event.get("transcript"), final=True)

    def _assistant_transcript_delta(self, event: dict) -> None:
        response_id = event.get("response_id")
        if not self._turns.dropped(response_id):
            self._transcripts.assistant_delta(event.get("item_id"), response_id, event.get("delta"),
                                              event.get("content_index"))

    def _assistant_transcript_done(self, event: dict) -> None:
        interrupted = self._turns.dropped(event.get("response_id"))
        self._transcripts.assistant_done(event.get("item_id"), event.get("transcript"), interrupted,
                                         event.get("content_index"))

    def _function_call(self, event: dict) -> None:
        if not self._turns.dropped(event.get("response_id")):
            self._tools.requested(event)

    def _error(self, event: dict) -> None:
        if service_error(event, self._id, upstream=self._upstream, status=self._status, telemetry=self._telemetry):
            self._on_rejected()


def _skip(events: UpstreamEvents, event: dict) -> None:
    return None  # an event this module does not follow (SideEvents may)


def _session_created(events: UpstreamEvents, event: dict) -> None:
    session = event.get("session") if isinstance(event.get("session"), dict) else {}
    expires_at = session.get("expires_at")
    if isinstance(expires_at, int | float) and not isinstance(expires_at, bool) and expires_at > 0:
        events.upstream.expires_at = float(expires_at)


def _output_item_added(events: UpstreamEvents, event: dict) -> None:
    events._tools.announced(event.get("item"))


def _text_done(events: UpstreamEvents, event: dict) -> None:
    events._assistant_transcript_done({**event, "transcript": event.get("text")})


def _word_timestamp(events: UpstreamEvents, event: dict) -> None:
    """`response.audio_timestamp.delta` (Azure voices, when asked for): a word and its place in the audio."""
    if not events._turns.dropped(event.get("response_id")):
        events._transcripts.timestamp(event)


_HANDLERS: dict[str, Callable[[UpstreamEvents, dict], None]] = {
    "session.created": _session_created,
    "session.updated": UpstreamEvents._session_updated,
    "input_audio_buffer.speech_started": UpstreamEvents._speech_started,
    "input_audio_buffer.speech_stopped": UpstreamEvents._speech_stopped,
    "response.created": UpstreamEvents._response_created,
    "response.audio.delta": UpstreamEvents._audio_delta,
    "response.output_audio.delta": UpstreamEvents._audio_delta,
    "response.audio.done": UpstreamEvents._audio_done,
    "response.output_audio.done": UpstreamEvents._audio_done,
    "response.done": UpstreamEvents._response_done,
    "conversation.item.input_audio_transcription.delta": UpstreamEvents._user_transcript_delta,
    "conversation.item.input_audio_transcription.completed": UpstreamEvents._user_transcript_done,
    "conversation.item.input_audio_transcription.failed": UpstreamEvents._user_transcript_failed,
    # A reply in text only (the model can answer so after replayed history) is shown like a spoken one.
    "response.text.delta": UpstreamEvents._assistant_transcript_delta,
    "response.output_text.delta": UpstreamEvents._assistant_transcript_delta,
    "response.text.done": _text_done,
    "response.output_text.done": _text_done,
    "warning": lambda events, event: events.notices.warning(event),
    "rate_limits.updated": lambda events, event: events.notices.rate_limits(event),
    "response.audio_transcript.delta": UpstreamEvents._assistant_transcript_delta,
    "response.output_audio_transcript.delta": UpstreamEvents._assistant_transcript_delta,
    "response.audio_transcript.done": UpstreamEvents._assistant_transcript_done,
    "response.output_audio_transcript.done": UpstreamEvents._assistant_transcript_done,
    "response.output_item.added": _output_item_added,
    "response.audio_timestamp.delta": _word_timestamp,
    "response.function_call_arguments.done": UpstreamEvents._function_call,
    "error": UpstreamEvents._error,
}
