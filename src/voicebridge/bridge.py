"""The session bridge: one upstream Voice Live session per browser tab, and the tab's state machine.

Everything in this module runs on the bridge's event loop (see runtime.py for how the WSGI threads
reach it). A session relays audio both ways untouched, turns upstream events into tab states and
transcripts, and implements barge-in: on `speech_started` while assistant audio is playing or queued it
clears the tab's playback at once, drops the rest of the interrupted response, and truncates the
assistant item at what the tab reports having played.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from azure.ai.voicelive.aio import ConnectionClosed, VoiceLiveConnection
from azure.ai.voicelive.aio import ConnectionError as VoiceLiveConnectionError

from . import protocol
from .protocol import BYTES_PER_MS, Audio, Playback, ProtocolError, Start, Stop
from .runtime import LoopThread, TabConnection
from .settings import Settings
from .telemetry import SessionTelemetry
from .upstream import Connector, UpstreamError, send_audio, session_config

log = logging.getLogger("voicebridge.session")

ACTIVE = frozenset(("ready", "listening", "processing", "speaking"))
# How long to wait for the tab's playback report after a clear before estimating from the clock.
REPORT_WAIT_S = 0.5
# Audio counts as still playing this long after it should have finished (tab buffering, jitter).
PLAYBACK_SLACK_MS = 300
# Events the bridge sends itself carry this prefix so the errors they provoke stay internal.
INTERNAL_EVENT_PREFIX = "vb-"
BENIGN_ERROR_CODES = frozenset(("response_cancel_not_active",))


class StateMachine:
    """The tab-visible state, driven by upstream events. Each method returns the new state or None."""

    def __init__(self) -> None:
        self.state = "idle"

    def _to(self, new: str) -> str | None:
        if new == self.state:
            return None
        self.state = new
        return new

    def connecting(self, reconnect: bool) -> str | None:
        return self._to("reconnecting" if reconnect else "connecting")

    def session_updated(self) -> str | None:
        return self._to("ready") if self.state in ("connecting", "reconnecting") else None

    def speech_started(self) -> str | None:
        return self._to("listening") if self.state in ACTIVE else None

    def speech_stopped(self) -> str | None:
        return self._to("processing") if self.state in ACTIVE else None

    def audio_delta(self) -> str | None:
        return self._to("speaking") if self.state in ACTIVE else None

    def response_finished(self) -> str | None:
        return self._to("ready") if self.state in ("speaking", "processing") else None

    def stopped(self) -> str | None:
        return self._to("stopped")

    def failed(self) -> str | None:
        return self._to("error")


@dataclass(slots=True)
class _Item:
    """The assistant audio item the tab is playing (or has queued)."""

    id: str
    response_id: str | None
    first_sent: float
    sent_bytes: int = 0
    reported_ms: int | None = None
    interrupted: bool = False
    cleared_at: float = 0.0
    report_after_clear: asyncio.Event | None = None

    @property
    def sent_ms(self) -> int:
        return self.sent_bytes // BYTES_PER_MS


def _b64_len(data: str) -> int:
    return len(data) // 4 * 3 - (2 if data.endswith("==") else 1 if data.endswith("=") else 0)


_event_ids = itertools.count(1)


def _internal_id(kind: str) -> str:
    return f"{INTERNAL_EVENT_PREFIX}{kind}-{next(_event_ids)}"


class BridgeSession:
    def __init__(self, bridge: Bridge, channel: TabConnection):
        self.id = secrets.token_hex(6)
        self.bridge = bridge
        self.channel = channel
        self.machine = StateMachine()
        self.telemetry = SessionTelemetry(self.id, bridge.settings.telemetry_transcripts)
        self._task: asyncio.Task[None] | None = None
        self._conn: VoiceLiveConnection | None = None
        self._uplink: deque[str] = deque()
        self._uplink_wake = asyncio.Event()
        self._item: _Item | None = None
        self._active_response: str | None = None
        self._dropped_responses: set[str] = set()
        self._assistant_text: dict[str, tuple[object, str]] = {}  # item id -> (response id, text so far)
        self._stopping = False
        self._tab_gone = False
        self._connect_started = 0.0
        self._reconnecting = False
        self._ready_here = False
        self._restart = False
        self._warned_not_started = False
        self.closed = asyncio.Event()
        self.closed.set()  # nothing upstream yet
        self.stats = {"chunks_up": 0, "chunks_down": 0, "dropped_up": 0, "barge_ins": 0, "bad_frames": 0}

    # --- the tab's socket (TabHandler) -----------------------------------------------------------

    def on_frame(self, frame: str | bytes) -> None:
        try:
            message = protocol.parse(frame)
        except ProtocolError as exc:
            self.stats["bad_frames"] += 1
            if self.stats["bad_frames"] == 1:
                log.info("event=tab.bad_frame session=%s code=%s", self.id, exc.code)
            self.channel.send(protocol.error(exc.code, exc.message))
            return
        if isinstance(message, Audio):
            self._audio(message)
        elif isinstance(message, Playback):
            self._playback(message)
        elif isinstance(message, Start):
            self.start()
        elif isinstance(message, Stop):
            self.stop("tab_stop")

    def on_closed(self) -> None:
        self._tab_gone = True
        self.stop("tab_closed")
        self.bridge.forget(self)

    def _audio(self, message: Audio) -> None:
        if self._conn is None or self.machine.state not in ACTIVE:
            self.stats["dropped_up"] += 1
            if self._task is None and not self._warned_not_started:
                self._warned_not_started = True
                self._send_error("not_started", "Audio arrived before the session was started; send session.start first.")
            return
        self.stats["chunks_up"] += 1
        self._uplink.append(message.data)
        self._uplink_wake.set()

    def _playback(self, message: Playback) -> None:
        if message.latency_ms is not None:
            self.telemetry.playback_latency(message.latency_ms)
        item = self._item
        if item is None or item.id != message.item_id:
            return
        item.reported_ms = message.played_ms
        if item.report_after_clear is not None and not item.report_after_clear.is_set():
            item.report_after_clear.set()

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is not None:
            # Running: a second start is a no-op; stopping: start again once the old upstream is closed.
            self._restart = self._stopping
            return
        if self.bridge.draining:
            self._send_error("server_draining", "The server is restarting; reconnecting will reach a fresh instance.")
            self.channel.close(1012, "service restart")
            return
        if self.bridge.upstream_sessions() >= self.bridge.settings.max_sessions:
            self._send_error("too_many_sessions", "The server is at capacity; please try again in a moment.")
            return
        self._stopping = False
        self.machine = StateMachine()
        self.closed.clear()
        self.telemetry = SessionTelemetry(self.id, self.bridge.settings.telemetry_transcripts)
        self.telemetry.started()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"session-{self.id}")
        _event("session.start", self.id)

    def stop(self, reason: str) -> None:
        if self._task is None or self._stopping:
            return
        self._stopping = True
        self._task.cancel()
        _event("session.stop", self.id, reason=reason)

    # --- the upstream run loop --------------------------------------------------------------------

    async def _run(self) -> None:
        settings = self.bridge.settings
        deadline: float | None = None  # set while recovering a lost upstream
        attempt = 0
        end_reason = "stopped"
        try:
            while True:
                self._set_state(self.machine.connecting(reconnect=deadline is not None))
                self._connect_started = time.monotonic()
                try:
                    conn = await self.bridge.connector.open()
                except UpstreamError as exc:
                    self.telemetry.failure(exc.code)
                    if deadline is None or exc.code == "upstream_auth":
                        end_reason = exc.code
                        self._fail(exc.code, exc.message)
                        return
                    _event("upstream.retry_failed", self.id, code=exc.code, attempt=attempt)
                else:
                    was_ready = await self._serve(conn)
                    if self._stopping:
                        return
                    if was_ready or deadline is None:
                        deadline = time.monotonic() + settings.reconnect_window_s
                        attempt = 0
                    self.telemetry.reconnecting("upstream_closed")
                    _event("upstream.lost", self.id)
                    self._set_state(self.machine.connecting(reconnect=True))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    end_reason = "upstream_lost"
                    self._fail(
                        "upstream_lost",
                        f"Lost the connection to Voice Live and could not restore it within "
                        f"{settings.reconnect_window_s:g} s. Start a new session to try again.",
                    )
                    return
                delay = min(0.25 * 2**attempt, 4.0) * random.uniform(0.75, 1.25)
                attempt += 1
                await asyncio.sleep(min(delay, remaining))
        except asyncio.CancelledError:
            end_reason = "stopped"
        except Exception:  # a surprise must end this session only, never the process or a neighbour
            log.exception("event=session.crashed session=%s", self.id)
            end_reason = "internal"
            self._fail("internal", "Something went wrong in the bridge; please start the session again.")
        finally:
            await self._close_upstream()
            if self.machine.state != "error":
                self._set_state(self.machine.stopped())
            self.telemetry.ended(end_reason)
            self._task = None
            self.closed.set()
            _event("session.closed", self.id, reason=end_reason, **self.stats)
            if self._restart and not self._tab_gone:
                self._restart = False
                self.start()

    async def _serve(self, conn: VoiceLiveConnection) -> bool:
        """Relay until the upstream ends. Returns whether the session got ready on this connection."""
        self._conn = conn
        self._reset_turn()
        sender = asyncio.get_running_loop().create_task(self._send_uplink(conn))
        watchdog = asyncio.get_running_loop().call_later(
            self.bridge.settings.connect_timeout_s, self._ready_timeout, conn
        )
        try:
            await conn.session.update(session=self.bridge.session_config)
            while True:
                raw = await conn.recv_bytes()
                if raw:
                    self._on_upstream(raw)
        except (ConnectionClosed, VoiceLiveConnectionError, OSError) as exc:
            _event("upstream.closed", self.id, detail=str(exc)[:120])
        finally:
            watchdog.cancel()
            sender.cancel()
            self._conn = None
            await _quiet_close(conn)
        return self._ready_here

    def _ready_timeout(self, conn: VoiceLiveConnection) -> None:
        if self._conn is conn and self.machine.state in ("connecting", "reconnecting"):
            self.telemetry.failure("upstream_timeout")
            self._fail("upstream_timeout", "Voice Live accepted the connection but never confirmed the session.")
            self.stop("ready_timeout")

    async def _send_uplink(self, conn: VoiceLiveConnection) -> None:
        uplink = self._uplink
        try:
            while True:
                await self._uplink_wake.wait()
                self._uplink_wake.clear()
                while uplink:
                    await send_audio(conn, uplink.popleft())
        except VoiceLiveConnectionError:
            return  # the connection is going away; the receiving side notices and reconnects

    async def _close_upstream(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await _quiet_close(conn)

    # --- upstream events --------------------------------------------------------------------------

    def _on_upstream(self, raw: bytes) -> None:
        try:
            event = json.loads(raw)
            handler = _HANDLERS.get(event.get("type"))
        except (ValueError, AttributeError):
            log.warning("event=upstream.unparseable session=%s bytes=%d", self.id, len(raw))
            return
        if handler is None:
            return
        try:
            handler(self, event)
        except Exception:  # an event shaped in a way nobody expected: skip it, keep the conversation
            log.exception("event=upstream.unexpected session=%s type=%s", self.id, event.get("type"))

    def _session_updated(self, event: dict) -> None:
        new = self.machine.session_updated()
        if new is None:
            return
        elapsed_ms = (time.monotonic() - self._connect_started) * 1000.0
        reconnect = self._reconnecting
        self._ready_here = True
        self.telemetry.connected(elapsed_ms, reconnect=reconnect)
        _event("session.ready", self.id, connect_ms=round(elapsed_ms), reconnect=reconnect)
        self._send_state(new)

    def _speech_started(self, event: dict) -> None:
        received = time.monotonic()
        self._barge_in(received)
        self._set_state(self.machine.speech_started())

    def _speech_stopped(self, event: dict) -> None:
        self._set_state(self.machine.speech_stopped())
        self.telemetry.turn_started()

    def _response_created(self, event: dict) -> None:
        response = event.get("response")
        self._active_response = response.get("id") if isinstance(response, dict) else None

    def _audio_delta(self, event: dict) -> None:
        response_id = event.get("response_id")
        if response_id in self._dropped_responses:
            return
        data = event.get("delta")
        item_id = event.get("item_id")
        if not isinstance(data, str) or not isinstance(item_id, str):
            return
        item = self._item
        if item is None or item.id != item_id:
            item = self._item = _Item(item_id, response_id, time.monotonic())
        item.sent_bytes += _b64_len(data)
        self.stats["chunks_down"] += 1
        self.channel.send(protocol.audio(data, item_id))
        if self.machine.state != "speaking":
            self._set_state(self.machine.audio_delta())
            self.telemetry.first_audio()

    def _is_current(self, response_id: object) -> bool:
        """Events of an interrupted response, or of an older one than the active response, change nothing."""
        if response_id in self._dropped_responses:
            return False
        return self._active_response is None or response_id is None or response_id == self._active_response

    def _audio_done(self, event: dict) -> None:
        if self._is_current(event.get("response_id")):
            self._set_state(self.machine.response_finished())

    def _response_done(self, event: dict) -> None:
        response = event.get("response") if isinstance(event.get("response"), dict) else {}
        response_id = response.get("id")
        status = str(response.get("status", "unknown"))
        current = self._is_current(response_id)
        self._finish_transcripts(response_id, interrupted=status == "cancelled")
        if response_id == self._active_response:
            self._active_response = None
        if current:
            self.telemetry.turn_ended(status)
            self._set_state(self.machine.response_finished())
        elif response_id in self._dropped_responses and self.machine.state == "listening":
            self.telemetry.turn_ended(status)  # the interrupted turn ends; the user's next one has not begun

    def _user_transcript_delta(self, event: dict) -> None:
        self._transcript("user", event, event.get("delta"), final=False)

    def _user_transcript_done(self, event: dict) -> None:
        self._transcript("user", event, event.get("transcript"), final=True)

    def _assistant_transcript_delta(self, event: dict) -> None:
        response_id = event.get("response_id")
        if response_id in self._dropped_responses:
            return
        text = event.get("delta")
        item_id = event.get("item_id")
        if isinstance(text, str) and isinstance(item_id, str):
            _, so_far = self._assistant_text.get(item_id, (response_id, ""))
            self._assistant_text[item_id] = (response_id, so_far + text)
        self._transcript("assistant", event, text, final=False)

    def _assistant_transcript_done(self, event: dict) -> None:
        item_id = event.get("item_id")
        _, heard = self._assistant_text.pop(item_id, (None, "")) if isinstance(item_id, str) else (None, "")
        if event.get("response_id") in self._dropped_responses:
            # The user cut the reply off: show what was streamed before the interruption.
            self._transcript("assistant", event, heard, final=True, interrupted=True)
        else:
            self._transcript("assistant", event, event.get("transcript"), final=True)

    def _finish_transcripts(self, response_id: object, interrupted: bool) -> None:
        """Every streamed assistant transcript ends with a final, even when the service sends none
        (a cancelled response ends without response.audio_transcript.done)."""
        if response_id in self._dropped_responses:
            interrupted = True
        for item_id, (owner, text) in list(self._assistant_text.items()):
            if owner == response_id:
                del self._assistant_text[item_id]
                extra = {"interrupted": True} if interrupted else {}
                self._transcript("assistant", {"item_id": item_id}, text, final=True, **extra)

    def _transcript(self, role: str, event: dict, text: object, final: bool, **extra: object) -> None:
        item_id = event.get("item_id")
        if not isinstance(text, str) or not isinstance(item_id, str):
            return
        self.channel.send(protocol.transcript(role, item_id, text, final, **extra))
        if final:
            self.telemetry.transcript(role, text)

    def _error(self, event: dict) -> None:
        error = event.get("error") if isinstance(event.get("error"), dict) else {}
        code = str(error.get("code") or error.get("type") or "unknown")
        message = str(error.get("message") or "no details")
        source = str(error.get("event_id") or "")
        if code in BENIGN_ERROR_CODES or source.startswith(INTERNAL_EVENT_PREFIX):
            log.info("event=upstream.benign_error session=%s code=%s source=%s", self.id, code, source)
            return
        log.warning("event=upstream.error session=%s code=%s", self.id, code)
        self._send_error("upstream_error", f"Voice Live reported a problem: {message}", upstream_code=code)

    # --- barge-in ---------------------------------------------------------------------------------

    def _barge_in(self, received: float) -> None:
        item = self._item
        if item is None or item.interrupted:
            return
        response_active = self._active_response is not None and self._active_response == item.response_id
        expected_end_ms = item.sent_ms + PLAYBACK_SLACK_MS
        if not response_active and (received - item.first_sent) * 1000.0 >= expected_end_ms:
            return  # the reply has finished playing: nothing to interrupt
        self.channel.send(protocol.CLEAR)
        item.interrupted = True
        item.cleared_at = received
        item.report_after_clear = asyncio.Event()
        if item.response_id:
            self._dropped_responses.add(item.response_id)
        self.stats["barge_ins"] += 1
        self.telemetry.barge_in((time.monotonic() - received) * 1000.0)
        conn = self._conn
        if conn is not None:
            if response_active:
                asyncio.get_running_loop().create_task(
                    # Named, so that a late cancel can never hit the user's next response.
                    _quiet_send(
                        conn,
                        {"type": "response.cancel", "event_id": _internal_id("cancel"), "response_id": item.response_id},
                    )
                )
            asyncio.get_running_loop().create_task(self._truncate(conn, item))

    async def _truncate(self, conn: VoiceLiveConnection, item: _Item) -> None:
        assert item.report_after_clear is not None
        try:
            await asyncio.wait_for(item.report_after_clear.wait(), REPORT_WAIT_S)
            heard_ms = item.reported_ms or 0
            basis = "tab"
        except TimeoutError:
            heard_ms = int((item.cleared_at - item.first_sent) * 1000.0)
            basis = "clock"
        audio_end_ms = max(0, min(heard_ms, item.sent_ms))
        if self._conn is not conn:
            return  # the upstream was replaced meanwhile; its conversation is gone
        await _quiet_send(
            conn,
            {
                "type": "conversation.item.truncate",
                "event_id": _internal_id("truncate"),
                "item_id": item.id,
                "content_index": 0,
                "audio_end_ms": audio_end_ms,
            },
        )
        _event("barge_in.truncate", self.id, item=item.id, audio_end_ms=audio_end_ms, sent_ms=item.sent_ms, basis=basis)

    # --- helpers ----------------------------------------------------------------------------------

    def _reset_turn(self) -> None:
        self._item = None
        self._active_response = None
        self._dropped_responses.clear()
        self._assistant_text.clear()
        self._uplink.clear()
        self._reconnecting = self.machine.state == "reconnecting"
        self._ready_here = False

    def _set_state(self, new: str | None) -> None:
        if new is not None:
            self._send_state(new)

    def _send_state(self, state: str) -> None:
        if not self._tab_gone:
            self.channel.send(protocol.state(state))

    def _send_error(self, code: str, message: str, **extra: object) -> None:
        self.telemetry.error(code)
        if not self._tab_gone:
            self.channel.send(protocol.error(code, message, **extra))

    def _fail(self, code: str, message: str) -> None:
        _event("session.error", self.id, code=code)
        self._send_error(code, message)
        self._set_state(self.machine.failed())


def _event(name: str, session_id: str, **fields: object) -> None:
    extra = "".join(f" {key}={value}" for key, value in fields.items())
    log.info("event=%s session=%s%s", name, session_id, extra)


async def _quiet_send(conn: VoiceLiveConnection, event: dict) -> None:
    try:
        await conn.send(event)
    except (VoiceLiveConnectionError, OSError) as exc:
        log.info("event=upstream.send_failed type=%s detail=%s", event.get("type"), exc)


async def _quiet_close(conn: VoiceLiveConnection) -> None:
    try:
        await conn.close()
    except Exception as exc:  # closing must never raise into the session's own cleanup
        log.info("event=upstream.close_failed detail=%s", exc)


_HANDLERS: dict[str, Callable[[BridgeSession, dict], None]] = {
    "session.updated": BridgeSession._session_updated,
    "input_audio_buffer.speech_started": BridgeSession._speech_started,
    "input_audio_buffer.speech_stopped": BridgeSession._speech_stopped,
    "response.created": BridgeSession._response_created,
    "response.audio.delta": BridgeSession._audio_delta,
    "response.output_audio.delta": BridgeSession._audio_delta,
    "response.audio.done": BridgeSession._audio_done,
    "response.output_audio.done": BridgeSession._audio_done,
    "response.done": BridgeSession._response_done,
    "conversation.item.input_audio_transcription.delta": BridgeSession._user_transcript_delta,
    "conversation.item.input_audio_transcription.completed": BridgeSession._user_transcript_done,
    "response.audio_transcript.delta": BridgeSession._assistant_transcript_delta,
    "response.output_audio_transcript.delta": BridgeSession._assistant_transcript_delta,
    "response.audio_transcript.done": BridgeSession._assistant_transcript_done,
    "response.output_audio_transcript.done": BridgeSession._assistant_transcript_done,
    "error": BridgeSession._error,
}


class Bridge:
    """Every session of this process, the event loop they run on, and how to reach Voice Live."""

    def __init__(self, settings: Settings, runtime: LoopThread, connector: Connector, emulator: object | None = None):
        self.settings = settings
        self.runtime = runtime
        self.connector = connector
        self.emulator = emulator
        self.session_config = session_config(settings)
        self.sessions: dict[str, BridgeSession] = {}
        self.draining = False

    @property
    def uses_emulator(self) -> bool:
        return self.emulator is not None

    def upstream_sessions(self) -> int:
        return sum(1 for s in self.sessions.values() if not s.closed.is_set())

    def attach(self, channel: TabConnection) -> BridgeSession:
        """A tab's socket arrived on the loop (see runtime.serve_tab)."""
        session = BridgeSession(self, channel)
        self.sessions[session.id] = session
        _event("tab.open", session.id)
        return session

    def forget(self, session: BridgeSession) -> None:
        self.sessions.pop(session.id, None)
        _event("tab.closed", session.id)

    def drain(self, timeout: float) -> bool:
        """Stop taking sessions, tell every tab to reconnect elsewhere, close every upstream. Blocking."""
        return self.runtime.run(self._drain(timeout), timeout=timeout + 1)

    async def _drain(self, timeout: float) -> bool:
        self.draining = True
        sessions = list(self.sessions.values())
        log.info("event=drain.start sessions=%d", len(sessions))
        for session in sessions:
            session._send_state("reconnecting")
            session.stop("drain")
            session.channel.close(1012, "service restart")
        waits = [s.closed.wait() for s in sessions]
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*waits)
            done = True
        except TimeoutError:
            done = False
        log.info("event=drain.done clean=%s", done)
        return done

    def shutdown(self, timeout: float = 2.0) -> None:
        if self.runtime.loop.is_running():
            try:
                self.runtime.run(self._close_all(timeout), timeout=timeout + 1)
            except Exception as exc:
                log.warning("event=shutdown.incomplete detail=%s", exc)
        self.runtime.stop()
        stop = getattr(self.emulator, "stop", None)
        if stop is not None:
            stop()

    async def _close_all(self, timeout: float) -> None:
        sessions = list(self.sessions.values())
        for session in sessions:
            session.stop("shutdown")
        try:
            if sessions:
                async with asyncio.timeout(timeout):
                    await asyncio.gather(*(s.closed.wait() for s in sessions))
        finally:
            await self.connector.close()
