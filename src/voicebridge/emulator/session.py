"""One emulated Voice Live session: the wire protocol of a single WebSocket connection.

Every server event is queued synchronously through `emit`, so ordering decisions (speech_started
before the cancellation it causes, nothing after response.done) are made in one place; a writer task
sends the queue in order, adding the configured latency. The session dispatches client events to its
parts: the input audio buffer (input_audio.py), responses (responses.py) and the conversation's items
(conversation.py).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import logging
import secrets
import time

from aiohttp import WSMsgType, web

from .. import capabilities
from ..protocol import BYTES_PER_MS, SAMPLE_RATE
from ..tasks import TaskOwner
from .conversation import Conversation
from .input_audio import InputAudio
from .mcp import McpServers
from .records import EmulatorHost, SessionRecord
from .responses import Responder
from .spoken import check_interim, check_timestamps
from .validation import RequestError, require, validate_session

log = logging.getLogger("voicebridge.emulator")

# How long the session's own tasks (the writer, a streaming response) may take to end after the connection.
TASKS_END_S = 1.0


DEFAULT_TURN_DETECTION = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 500,
    "create_response": True,
    "interrupt_response": True,
}


def default_session(session_id: str, model: str | None, expires_at: int | None = None,
                    agent: dict | None = None) -> dict:
    """What the service reports in session.created before any session.update (in agent mode, with the agent)."""
    session = {
        "object": "realtime.session",
        "id": session_id,
        "model": model,
        "expires_at": expires_at,
        "modalities": ["text", "audio"],
        "instructions": "",
        "voice": {"name": "en-US-Ava:DragonHDLatestNeural", "type": "azure-standard"},
        "input_audio_format": "pcm16",
        "output_audio_format": "pcm16",
        "input_audio_sampling_rate": SAMPLE_RATE,
        "input_audio_transcription": None,
        "input_audio_noise_reduction": None,
        "input_audio_echo_cancellation": None,
        "turn_detection": dict(DEFAULT_TURN_DETECTION),
        "tools": [],
        "tool_choice": "auto",
        "temperature": 0.8,
        "max_response_output_tokens": "inf",
    }
    if agent is not None:
        session["agent"] = agent
    return session


class EmulatedSession:
    def __init__(self, host: EmulatorHost, ws: web.WebSocketResponse, transport, *, record: SessionRecord):
        self.host = host
        self.ws = ws
        self.transport = transport
        self.record = record
        self.loop = asyncio.get_running_loop()
        self.outbox: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
        self._event_ids = itertools.count(1)
        self._event_prefix = f"event_{secrets.token_hex(6)}"
        self.dropped = False
        self.expired = False
        model = host.config.deployments.get(record.model or "", record.model)
        # The rules this session's model follows (an agent session's: the agents family).
        self.family = capabilities.family_of(model, agent="agent" in record.config)
        self.tasks = TaskOwner(f"emulated-{record.id}")
        self.conversation = Conversation(self.emit, host, record)
        self.mcp = McpServers(self.emit, host, record, tasks=self.tasks, items=self.conversation.items,
                              last_item=self.conversation.last_id)
        self.responses = Responder(self.emit, host, record, conversation=self.conversation, tasks=self.tasks,
                                   mcp=self.mcp)
        self.input = InputAudio(self.emit, record, self.conversation, responses=self.responses, host=host)
        self.handlers = {
            "session.update": self.on_session_update,
            "input_audio_buffer.append": self.input.append,  # called with the decoded audio, see on_text
            "input_audio_buffer.commit": self.input.on_commit,
            "input_audio_buffer.clear": self.input.on_clear,
            "response.create": self.responses.on_create,
            "response.cancel": self.responses.on_cancel,
            "conversation.item.create": self.on_item_create,
            "conversation.item.truncate": self.conversation.on_truncate,
            "conversation.item.delete": self.conversation.on_delete,
            "conversation.item.retrieve": self.conversation.on_retrieve,
        }

    # ---- plumbing ---------------------------------------------------------------------------------

    def emit(self, type_: str, **fields) -> None:
        latency = self.host.config.latency_ms
        due = self.loop.time() + latency / 1000 if latency else 0.0
        event = {"type": type_, "event_id": f"{self._event_prefix}{next(self._event_ids):x}", **fields}
        self.outbox.put_nowait((due, json.dumps(event)))
        if type_ == "response.created" and (limits := self.host.config.rate_limits) is not None:
            # "Emitted at the beginning of a Response", the output tokens it reserves included [RT].
            self.emit("rate_limits.updated", rate_limits=[dict(limit) for limit in limits])

    def warn(self, message: str, code: str | None = None, param: str | None = None) -> None:  # [SDK] ServerEventWarning
        self.emit("warning", warning={"message": message, "code": code, "param": param})

    def error(self, message: str, code: str, param: str | None = None, event_id: str | None = None,
              type_: str = "invalid_request_error") -> None:
        if not self.host.config.error_event_ids:
            event_id = None
        self.emit("error", error={"type": type_, "code": code, "message": message, "param": param,
                                  "event_id": event_id})

    async def _writer(self) -> None:
        while True:
            due, text = await self.outbox.get()
            if due and (delay := due - self.loop.time()) > 0:
                await asyncio.sleep(delay)
            await self.ws.send_str(text)

    def _expire(self) -> None:
        self.expired = True
        self.tasks.spawn(self.ws.close(code=1000, message=b"session expired"), "expire")

    def drop(self) -> None:
        """Vanish without a close frame, like a network failure."""
        self.dropped = True
        if self.transport is not None:
            self.transport.abort()

    async def run(self) -> None:
        self.emit("session.created", session=self.record.config)
        writer = self.tasks.spawn(self._writer(), "writer")
        drop_after = self.host.config.drop_after_s
        dropper = self.loop.call_later(drop_after, self.drop) if drop_after is not None else None
        # [QUOTAS] at most 60 minutes per connection; the service closes it at expires_at.
        lifetime = max(0.0, self.record.expires_at - time.time()) if self.record.expires_at else None
        expiry = self.loop.call_later(lifetime, self._expire) if lifetime is not None else None
        try:
            async for msg in self.ws:
                if msg.type == WSMsgType.TEXT:
                    self.on_text(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self.error("Binary frames are not supported: send each client event as a JSON text frame.",
                               "invalid_request_format")
        finally:
            writer.cancel()
            if dropper:
                dropper.cancel()
            if expiry:
                expiry.cancel()
            self.responses.connection_closed()
            await self.tasks.close(TASKS_END_S)
            log.info("%s", self.summary())

    def summary(self) -> str:
        """What this connection did, in one line: the operator's view of `make emulator` (nothing per chunk)."""
        rec = self.record
        agent = rec.config.get("agent")
        who = f"agent={agent['name']} conversation={agent['thread_id']}" if agent else f"model={rec.model}"
        statuses = {s: sum(r["status"] == s for r in rec.responses) for s in sorted({r["status"] for r in rec.responses})}
        calls = sum(len(r.get("function_calls") or ()) for r in rec.responses)
        return " ".join([f"event=emulator.session_ended session={rec.id}", who,
                         f"user_turns={self.conversation.turns} responses={len(rec.responses)}",
                         *(f"{status}={count}" for status, count in statuses.items()),
                         f"function_calls={calls}",
                         "close=dropped" if self.dropped else f"close_code={self.ws.close_code}"])

    # ---- client events ----------------------------------------------------------------------------

    def on_text(self, text: str) -> None:
        try:
            event = json.loads(text)
        except ValueError:
            self._record_event({"invalid_json": text[:200]})
            self.error("The server could not parse the event: it is not valid JSON.", "invalid_json")
            return
        if not isinstance(event, dict):
            self._record_event({"invalid_json": text[:200]})
            self.error("Invalid event: expected a JSON object.", "invalid_type")
            return
        event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        pcm = None
        try:
            etype = event.get("type")
            if etype == "input_audio_buffer.append":
                pcm = self._decode_audio(event)
            if not isinstance(etype, str):
                raise RequestError("Missing required parameter: 'type'.", "missing_required_parameter", "type")
            handler = self.handlers.get(etype)
            if handler is None:
                raise RequestError(f"Invalid value: '{etype}'. Supported values are: {', '.join(self.handlers)}.",
                                    "invalid_value", "type")
        except RequestError as exc:
            self._record_event(event, pcm)
            self.error(exc.message, exc.code, exc.param, event_id)
            return
        self._record_event(event, pcm)
        try:
            if pcm is not None:
                self.input.append(pcm)
            else:
                handler(event)
        except RequestError as exc:
            if etype == "session.update":
                log.info("event=emulator.session_update_refused session=%s code=%s param=%s message=%r",
                         self.record.id, exc.code, exc.param, exc.message)
            self.error(exc.message, exc.code, exc.param, event_id)

    def _decode_audio(self, event: dict) -> bytes:
        audio = require(event, "audio", str)
        try:
            pcm = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError("Invalid 'audio': expected base64-encoded PCM16 audio.", "invalid_value", "audio") from None
        if len(pcm) % 2:
            raise RequestError("Invalid 'audio': PCM16 audio must have an even number of bytes.", "invalid_value", "audio")
        return pcm

    def _record_event(self, event: dict, pcm: bytes | None = None) -> None:
        config, registry = self.host.config, self.host.registry
        if event.get("type") == "input_audio_buffer.append":
            event = {**event, "audio": None if pcm is None else len(pcm)}
        with registry.changing(self.record) as rec:
            if len(rec.events_received) < config.record_max_events:
                rec.events_received.append(event)
            else:
                rec.events_dropped += 1
            if pcm:
                registry.add_audio(rec, pcm, int(config.record_max_audio_s * 1000) * BYTES_PER_MS)

    def on_session_update(self, event: dict) -> None:
        update = require(event, "session", dict)
        validate_session(update, self.family)
        check_timestamps(update)
        check_interim(update, self.family, self.record.config)
        agent = self.record.config.get("agent")
        if agent is not None and "instructions" in update:
            raise RequestError(f"Invalid 'session.instructions': this session is connected to agent "
                               f"'{agent['name']}', whose instructions are defined by the agent and cannot be "
                               "set in session.update.", "invalid_value", "session.instructions")
        update = {k: v for k, v in update.items() if k not in ("id", "object", "agent")}
        if isinstance(update.get("turn_detection"), dict):
            # The service fills in what was not sent from its defaults, and reports the whole.
            update["turn_detection"] = {**DEFAULT_TURN_DETECTION, **update["turn_detection"]}
        with self.host.registry.changing(self.record) as rec:
            rec.config = {**rec.config, **update}
        if "turn_detection" in update:
            self.input.configure_vad(update["turn_detection"])
        self.emit("session.updated", session=self.record.config)
        if "tools" in update:
            self.mcp.configured(update["tools"])

    def on_item_create(self, event: dict) -> None:
        item = self.conversation.on_create(event)
        if item.get("type") == "mcp_approval_response":
            self.responses.approval_answered(item)
