"""One emulated Voice Live session: the wire protocol of a single WebSocket connection.

Every server event is queued synchronously through `emit`, so ordering decisions (speech_started
before the cancellation it causes, nothing after response.done) are made in one place; a writer task
sends the queue in order, adding the configured latency.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import math
import secrets
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from .records import SessionRecord
from .vad import BYTES_PER_MS, FRAME_SAMPLES, SAMPLE_RATE, EnergyVad, VadParams

if TYPE_CHECKING:
    from .server import Emulator

DELTA_BYTES = 100 * BYTES_PER_MS  # 100 ms of PCM16 24 kHz mono
SAMPLES_PER_MS = SAMPLE_RATE // 1000
VAD_TYPES = ("server_vad", "azure_semantic_vad", "azure_semantic_vad_en", "azure_semantic_vad_multilingual")
EOU_MODELS = ("semantic_detection_v1", "semantic_detection_v1_en", "semantic_detection_v1_multilingual")
NOISE_REDUCTION_TYPES = ("azure_deep_noise_suppression", "near_field", "far_field")
MIN_COMMIT_MS = 100
# Typed turns and tool results have no audio to echo: the reply is a tone this long per word, within bounds.
TEXT_REPLY_MS_PER_WORD, TEXT_REPLY_MS = 150, (600, 3000)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def default_session(session_id: str, model: str | None) -> dict:
    """What the service reports in session.created before any session.update."""
    return {
        "object": "realtime.session",
        "id": session_id,
        "model": model,
        "modalities": ["text", "audio"],
        "instructions": "",
        "voice": {"name": "en-US-Ava:DragonHDLatestNeural", "type": "azure-standard"},
        "input_audio_format": "pcm16",
        "output_audio_format": "pcm16",
        "input_audio_sampling_rate": SAMPLE_RATE,
        "input_audio_transcription": None,
        "input_audio_noise_reduction": None,
        "input_audio_echo_cancellation": None,
        "turn_detection": {
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 500,
            "create_response": True,
            "interrupt_response": True,
        },
        "tools": [],
        "tool_choice": "auto",
        "temperature": 0.8,
        "max_response_output_tokens": "inf",
    }


class ProtocolError(Exception):
    def __init__(self, message: str, code: str = "invalid_value", param: str | None = None):
        super().__init__(message)
        self.message, self.code, self.param = message, code, param


def _require(event: dict, name: str, kind: type | tuple[type, ...]):
    if name not in event:
        raise ProtocolError(f"Missing required parameter: '{name}'.", "missing_required_parameter", name)
    value = event[name]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ProtocolError(f"Invalid type for '{name}'.", "invalid_type", name)
    return value


def _check_number(obj: dict, name: str, low: float, high: float = math.inf) -> None:
    value = obj.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        bound = f"between {low} and {high}" if high != math.inf else f"at least {low}"
        raise ProtocolError(f"Invalid 'session.turn_detection.{name}': expected a number {bound}.",
                            "invalid_value", f"session.turn_detection.{name}")


def validate_session(update: dict) -> None:
    """Reject what the service rejects, and what this emulator cannot honour, with the service's error shape."""
    voice = update.get("voice")
    if voice is not None and not (isinstance(voice, str) or isinstance(voice, dict) and isinstance(voice.get("name"), str)):
        raise ProtocolError("Invalid 'session.voice': expected a voice name or an object with 'name'.",
                            "invalid_value", "session.voice")
    modalities = update.get("modalities")
    if modalities is not None and (not isinstance(modalities, list) or not set(modalities) <= {"text", "audio"}):
        raise ProtocolError("Invalid 'session.modalities': allowed values are 'text' and 'audio'.",
                            "invalid_value", "session.modalities")
    for name in ("input_audio_format", "output_audio_format"):
        if name in update and update[name] != "pcm16":
            raise ProtocolError(f"Invalid 'session.{name}': the emulator supports only 'pcm16' (24 kHz mono).",
                                "invalid_value", f"session.{name}")
    rate = update.get("input_audio_sampling_rate")
    if rate is not None and rate != SAMPLE_RATE:
        raise ProtocolError("Invalid 'session.input_audio_sampling_rate': the emulator supports only 24000.",
                            "invalid_value", "session.input_audio_sampling_rate")
    transcription = update.get("input_audio_transcription")
    if transcription is not None and not isinstance(transcription, dict):
        raise ProtocolError("Invalid 'session.input_audio_transcription': expected an object or null.",
                            "invalid_type", "session.input_audio_transcription")
    if "turn_detection" in update and (td := update["turn_detection"]) is not None:
        if not isinstance(td, dict) or td.get("type") not in VAD_TYPES:
            raise ProtocolError(f"Invalid 'session.turn_detection.type': supported values are {', '.join(VAD_TYPES)}.",
                                "invalid_value", "session.turn_detection.type")
        _check_number(td, "threshold", 0.0, 1.0)
        _check_number(td, "prefix_padding_ms", 0)
        _check_number(td, "silence_duration_ms", 0)
        eou = td.get("end_of_utterance_detection")
        if eou is not None:
            if not td["type"].startswith("azure_semantic_vad"):
                raise ProtocolError("Invalid 'session.turn_detection.end_of_utterance_detection': end-of-utterance "
                                    "detection is only supported with azure_semantic_vad turn detection.",
                                    "invalid_value", "session.turn_detection.end_of_utterance_detection")
            if not isinstance(eou, dict) or eou.get("model") not in EOU_MODELS:
                raise ProtocolError("Invalid 'session.turn_detection.end_of_utterance_detection.model': supported "
                                    f"values are {', '.join(EOU_MODELS)}.", "invalid_value",
                                    "session.turn_detection.end_of_utterance_detection.model")
    _check_typed_object(update, "input_audio_noise_reduction", NOISE_REDUCTION_TYPES)
    _check_typed_object(update, "input_audio_echo_cancellation", ("server_echo_cancellation",))
    temperature = update.get("temperature")
    if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, int | float)
                                    or not 0.6 <= temperature <= 1.2):
        raise ProtocolError("Invalid 'session.temperature': expected a number between 0.6 and 1.2.",
                            "invalid_value", "session.temperature")
    _check_tools(update)


def _check_typed_object(update: dict, name: str, types: tuple[str, ...]) -> None:
    value = update.get(name)
    if value is not None and (not isinstance(value, dict) or value.get("type") not in types):
        raise ProtocolError(f"Invalid 'session.{name}.type': supported values are {', '.join(types)}.",
                            "invalid_value", f"session.{name}.type")


def _check_tools(update: dict) -> None:
    tools = update.get("tools")
    if tools is None:
        return
    if not isinstance(tools, list):
        raise ProtocolError("Invalid 'session.tools': expected an array.", "invalid_type", "session.tools")
    names = set()
    for index, tool in enumerate(tools):
        where = f"session.tools[{index}]"
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise ProtocolError(f"Invalid '{where}.type': supported values are function.", "invalid_value",
                                f"{where}.type")
        name = tool.get("name")
        if not isinstance(name, str) or not name or name in names:
            raise ProtocolError(f"Invalid '{where}.name': expected a unique non-empty string.", "invalid_value",
                                f"{where}.name")
        names.add(name)
        parameters = tool.get("parameters")
        if parameters is not None and (not isinstance(parameters, dict) or parameters.get("type") != "object"):
            raise ProtocolError(f"Invalid '{where}.parameters': expected a JSON schema of type object.",
                                "invalid_value", f"{where}.parameters")
    choice = update.get("tool_choice")
    if choice is not None and choice not in ("auto", "none", "required") and not (
            isinstance(choice, dict) and choice.get("type") == "function" and choice.get("name") in names):
        raise ProtocolError("Invalid 'session.tool_choice': expected auto, none, required or a declared function.",
                            "invalid_value", "session.tool_choice")


@dataclass(slots=True)
class Response:
    id: str
    item_id: str
    record: dict
    transcript: str
    sent_text: list[str] = field(default_factory=list)
    task: asyncio.Task | None = None


class EmulatedSession:
    def __init__(self, emulator: Emulator, ws: web.WebSocketResponse, transport, record: SessionRecord):
        self.emu = emulator
        self.ws = ws
        self.transport = transport
        self.record = record
        self.loop = asyncio.get_running_loop()
        self.outbox: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
        self._event_ids = itertools.count(1)
        self._event_prefix = f"event_{secrets.token_hex(6)}"
        self.dropped = False
        # Input audio buffer, positions in absolute samples since the session started.
        self.buf = bytearray()
        self.buf_start = 0  # sample position of buf[0]
        self.floor = 0  # first sample not yet committed or cleared
        self.vad_pos = 0  # next sample the VAD has not looked at
        self.vad: EnergyVad | None = None
        self.prefix_samples = 0
        self.speech: tuple[int, str, int] | None = None  # (audio_start, item_id, onset) of the open turn
        # Conversation: id -> {"item", "audio_bytes"}; insertion order is conversation order.
        self.items: dict[str, dict] = {}
        self.last_utterance = b""
        # What the next response answers: ("audio", pcm), ("text", typed text) or ("tool", [outputs]).
        self.reply_to: tuple[str, object] = ("audio", b"")
        self.active: Response | None = None
        self.handlers = {
            "session.update": self.on_session_update,
            "input_audio_buffer.append": self.on_append,
            "input_audio_buffer.commit": self.on_commit,
            "input_audio_buffer.clear": self.on_clear,
            "response.create": self.on_response_create,
            "response.cancel": self.on_response_cancel,
            "conversation.item.create": self.on_item_create,
            "conversation.item.truncate": self.on_truncate,
            "conversation.item.delete": self.on_item_delete,
            "conversation.item.retrieve": self.on_item_retrieve,
        }
        self.configure_vad(record.config.get("turn_detection"))

    # ---- plumbing ---------------------------------------------------------------------------------

    def emit(self, type_: str, **fields) -> None:
        latency = self.emu.config.latency_ms
        due = self.loop.time() + latency / 1000 if latency else 0.0
        event = {"type": type_, "event_id": f"{self._event_prefix}{next(self._event_ids):x}", **fields}
        self.outbox.put_nowait((due, json.dumps(event)))

    def error(self, message: str, code: str, param: str | None = None, event_id: str | None = None,
              type_: str = "invalid_request_error") -> None:
        self.emit("error", error={"type": type_, "code": code, "message": message, "param": param,
                                  "event_id": event_id})

    async def _writer(self) -> None:
        while True:
            due, text = await self.outbox.get()
            if due and (delay := due - self.loop.time()) > 0:
                await asyncio.sleep(delay)
            await self.ws.send_str(text)

    def drop(self) -> None:
        """Vanish without a close frame, like a network failure."""
        self.dropped = True
        if self.transport is not None:
            self.transport.abort()

    async def run(self) -> None:
        self.emit("session.created", session=self.record.config)
        writer = asyncio.create_task(self._writer())
        drop_after = self.emu.config.drop_after_s
        dropper = self.loop.call_later(drop_after, self.drop) if drop_after is not None else None
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
            if self.active:
                self.active.task.cancel()
                with self.emu.registry.changing(self.record):
                    self.active.record.update(status="cancelled", cancel_reason="connection_closed")

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
                raise ProtocolError("Missing required parameter: 'type'.", "missing_required_parameter", "type")
            handler = self.handlers.get(etype)
            if handler is None:
                raise ProtocolError(f"Invalid value: '{etype}'. Supported values are: {', '.join(self.handlers)}.",
                                    "invalid_value", "type")
        except ProtocolError as exc:
            self._record_event(event, pcm)
            self.error(exc.message, exc.code, exc.param, event_id)
            return
        self._record_event(event, pcm)
        try:
            if pcm is not None:
                self.on_append(pcm)
            else:
                handler(event)
        except ProtocolError as exc:
            self.error(exc.message, exc.code, exc.param, event_id)

    def _decode_audio(self, event: dict) -> bytes:
        audio = _require(event, "audio", str)
        try:
            pcm = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise ProtocolError("Invalid 'audio': expected base64-encoded PCM16 audio.", "invalid_value", "audio") from None
        if len(pcm) % 2:
            raise ProtocolError("Invalid 'audio': PCM16 audio must have an even number of bytes.", "invalid_value", "audio")
        return pcm

    def _record_event(self, event: dict, pcm: bytes | None = None) -> None:
        config, registry = self.emu.config, self.emu.registry
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
        update = _require(event, "session", dict)
        validate_session(update)
        update = {k: v for k, v in update.items() if k not in ("id", "object")}
        with self.emu.registry.changing(self.record) as rec:
            rec.config = {**rec.config, **update}
        if "turn_detection" in update:
            self.configure_vad(update["turn_detection"])
        self.emit("session.updated", session=self.record.config)

    def configure_vad(self, td: dict | None) -> None:
        if td is None:
            self.vad = None
        else:
            defaults = VadParams()
            params = VadParams(
                threshold=td.get("threshold", defaults.threshold),
                prefix_padding_ms=td.get("prefix_padding_ms", defaults.prefix_padding_ms),
                silence_duration_ms=td.get("silence_duration_ms", defaults.silence_duration_ms),
            )
            self.vad = EnergyVad(params)
            self.prefix_samples = int(params.prefix_padding_ms) * SAMPLES_PER_MS
        self.speech = None
        self.vad_pos = max(self.vad_pos, self.floor)

    @property
    def end(self) -> int:
        return self.buf_start + len(self.buf) // 2

    def on_append(self, pcm: bytes) -> None:
        self.buf += pcm
        if self.vad is None:
            return
        while self.vad_pos + FRAME_SAMPLES <= self.end:
            offset = (self.vad_pos - self.buf_start) * 2
            frame = memoryview(self.buf[offset:offset + FRAME_SAMPLES * 2]).cast("h")
            decision = self.vad.frame(frame, self.vad_pos)
            self.vad_pos += FRAME_SAMPLES
            if decision is not None:
                self.on_speech_start(decision.sample) if decision.kind == "start" else self.on_speech_stop(decision.sample)
        if self.speech is None:  # between turns only the prefix window can still become part of a turn
            self._discard_before(max(self.floor, self.vad_pos - self.prefix_samples))

    def _discard_before(self, sample: int) -> None:
        if sample > self.buf_start:
            del self.buf[:(sample - self.buf_start) * 2]
            self.buf_start = sample

    def on_speech_start(self, onset: int) -> None:
        start = max(self.floor, onset - self.prefix_samples)
        item_id = new_id("item")
        self.speech = (start, item_id, onset)
        self.emit("input_audio_buffer.speech_started", audio_start_ms=start // SAMPLES_PER_MS, item_id=item_id)
        td = self.record.config.get("turn_detection") or {}
        if self.active is not None and td.get("interrupt_response", True) is not False:
            self.cancel_response("turn_detected")

    def on_speech_stop(self, stop: int) -> None:
        start, item_id, onset = self.speech
        self.speech = None
        self.emit("input_audio_buffer.speech_stopped", audio_end_ms=stop // SAMPLES_PER_MS, item_id=item_id)
        self.commit(start, stop, item_id, stop - self.vad.silence_samples - onset)
        td = self.record.config.get("turn_detection") or {}
        if td.get("create_response", True) is not False and self.active is None:
            self.start_response()

    def commit(self, start: int, stop: int, item_id: str, speech_samples: int) -> None:
        pcm = bytes(self.buf[(start - self.buf_start) * 2:(stop - self.buf_start) * 2])
        self._discard_before(stop)
        self.floor = self.vad_pos = max(self.vad_pos, stop)
        previous = next(reversed(self.items), None)
        self.emit("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)
        item = {"id": item_id, "object": "realtime.item", "type": "message", "status": "completed", "role": "user",
                "content": [{"type": "input_audio", "transcript": None}]}
        self.items[item_id] = {"item": item, "audio_bytes": len(pcm)}
        self.emit("conversation.item.created", previous_item_id=previous, item=item)
        self.last_utterance = pcm
        self.reply_to = ("audio", pcm)
        if self.record.config.get("input_audio_transcription"):
            # No ASR here: an honest, deterministic description of what was heard instead.
            transcript = f"({speech_samples / SAMPLE_RATE:.1f} s of speech)"
            item["content"][0]["transcript"] = transcript
            self.emit("conversation.item.input_audio_transcription.completed", item_id=item_id, content_index=0,
                      transcript=transcript)

    def on_commit(self, event: dict) -> None:
        have_ms = (self.end - self.floor) // SAMPLES_PER_MS
        if have_ms < MIN_COMMIT_MS:
            raise ProtocolError(
                f"Error committing input audio buffer: buffer too small. Expected at least {MIN_COMMIT_MS}ms of "
                f"audio, but buffer only has {have_ms:.2f}ms of audio.", "input_audio_buffer_commit_empty")
        start, item_id, _ = self.speech or (self.floor, new_id("item"), None)
        self.speech = None
        if self.vad:
            self.vad.reset()
        self.vad_pos = self.end
        self.commit(start, self.end, item_id, self.end - start)

    def on_clear(self, event: dict) -> None:
        self._discard_before(self.end)
        self.floor = self.vad_pos = self.end
        self.speech = None
        if self.vad:
            self.vad.reset()
        self.emit("input_audio_buffer.cleared")

    # ---- responses --------------------------------------------------------------------------------

    def start_response(self) -> None:
        kind, subject = self.reply_to
        if kind != "tool":
            calls = self.emu.function_calls_for(self, subject if kind == "text" else None)
            if calls:
                self._call_functions(calls)
                return
        if kind == "text":
            pcm, transcript = _text_tone(str(subject)), f"You wrote: {subject}"
        elif kind == "tool":
            pcm = _text_tone(" ".join(subject))
            transcript = "The tool answered: " + "; ".join(subject)
        elif subject:
            pcm = subject
            seconds = len(pcm) / (1000 * BYTES_PER_MS)
            transcript = f"Echoing your {seconds:.1f} seconds of speech back to you."
        else:
            pcm, transcript = _tone(), "Nothing was said yet, so here is a short test tone."
        self.reply_to = ("audio", self.last_utterance)
        response_id, item_id = new_id("resp"), new_id("item")
        record = {"id": response_id, "item_id": item_id, "status": "in_progress", "audio_bytes_sent": 0,
                  "cancel_reason": None}
        with self.emu.registry.changing(self.record) as rec:
            rec.responses.append(record)
        response = self.active = Response(response_id, item_id, record, transcript)
        self.items[item_id] = {"item": self._assistant_item(response, "in_progress"), "audio_bytes": 0}
        # The preamble goes out synchronously so a cancellation arriving at once still follows it.
        self.emit("response.created", response={"object": "realtime.response", "id": response_id,
                                                "status": "in_progress", "status_details": None, "output": []})
        self.emit("response.output_item.added", response_id=response_id, output_index=0,
                  item=self._assistant_item(response, "in_progress"))
        self.emit("response.content_part.added", response_id=response_id, item_id=item_id, output_index=0,
                  content_index=0, part={"type": "audio", "transcript": ""})
        response.task = self.loop.create_task(self._stream(response, pcm))

    def _assistant_item(self, response: Response, status: str) -> dict:
        content = [{"type": "audio", "transcript": "".join(response.sent_text)}] if status != "in_progress" else []
        return {"id": response.item_id, "object": "realtime.item", "type": "message", "status": status,
                "role": "assistant", "content": content}

    async def _stream(self, response: Response, pcm: bytes) -> None:
        ids = {"response_id": response.id, "item_id": response.item_id, "output_index": 0, "content_index": 0}
        chunks = [pcm[i:i + DELTA_BYTES] for i in range(0, len(pcm), DELTA_BYTES)]
        words = response.transcript.split(" ")
        fragments = [w + " " for w in words[:-1]] + words[-1:]
        started = self.loop.time()
        for index, chunk in enumerate(chunks):
            pace = self.emu.config.pace
            if index and pace:
                await asyncio.sleep(max(0.0, started + index * 0.1 * pace - self.loop.time()))
            self.emit("response.audio.delta", delta=base64.b64encode(chunk).decode("ascii"), **ids)
            self.items[response.item_id]["audio_bytes"] += len(chunk)
            with self.emu.registry.changing(self.record):
                response.record["audio_bytes_sent"] += len(chunk)
            # Spread the transcript over the audio, as the service interleaves them.
            while len(response.sent_text) * len(chunks) < (index + 1) * len(fragments):
                fragment = fragments[len(response.sent_text)]
                response.sent_text.append(fragment)
                self.emit("response.audio_transcript.delta", delta=fragment, **ids)
        self.emit("response.audio.done", **ids)
        self.emit("response.audio_transcript.done", transcript=response.transcript, **ids)
        self.emit("response.content_part.done", **ids, part={"type": "audio", "transcript": response.transcript})
        self._finish(response, "completed", None)

    def _finish(self, response: Response, status: str, reason: str | None) -> None:
        self.active = None
        item = self._assistant_item(response, "completed" if status == "completed" else "incomplete")
        self.items[response.item_id]["item"] = item
        self.emit("response.output_item.done", response_id=response.id, output_index=0, item=item)
        details = None if reason is None else {"type": "cancelled", "reason": reason}
        self.emit("response.done", response={"object": "realtime.response", "id": response.id, "status": status,
                                             "status_details": details, "output": [item]})
        with self.emu.registry.changing(self.record):
            response.record.update(status=status, cancel_reason=reason)

    def cancel_response(self, reason: str) -> None:
        response = self.active
        response.task.cancel()  # suspended at an await, so it can emit nothing more
        self._finish(response, "cancelled", reason)

    def _call_functions(self, calls: list[dict]) -> None:
        """A response whose output is function calls, in the service's event order; it completes at once
        (the arguments are known), and the client answers with function_call_output items + response.create."""
        response_id = new_id("resp")
        record = {"id": response_id, "item_id": None, "status": "in_progress", "audio_bytes_sent": 0,
                  "cancel_reason": None, "function_calls": [c["name"] for c in calls]}
        with self.emu.registry.changing(self.record) as rec:
            rec.responses.append(record)
        self.emit("response.created", response={"object": "realtime.response", "id": response_id,
                                                "status": "in_progress", "status_details": None, "output": []})
        output = []
        for index, call in enumerate(calls):
            item_id, call_id = new_id("item"), new_id("call")
            item = {"id": item_id, "object": "realtime.item", "type": "function_call", "status": "in_progress",
                    "name": call["name"], "call_id": call_id, "arguments": ""}
            ids = {"response_id": response_id, "item_id": item_id, "output_index": index, "call_id": call_id}
            self.emit("response.output_item.added", response_id=response_id, output_index=index, item=item)
            arguments = call["arguments"]
            for offset in range(0, len(arguments), 16):  # streamed in pieces, as the model writes them
                self.emit("response.function_call_arguments.delta", delta=arguments[offset:offset + 16], **ids)
            self.emit("response.function_call_arguments.done", name=call["name"], arguments=arguments, **ids)
            item = {**item, "status": "completed", "arguments": arguments}
            self.items[item_id] = {"item": item, "audio_bytes": 0}
            self.emit("response.output_item.done", response_id=response_id, output_index=index, item=item)
            output.append(item)
        self.emit("response.done", response={"object": "realtime.response", "id": response_id,
                                             "status": "completed", "status_details": None, "output": output})
        with self.emu.registry.changing(self.record):
            record.update(status="completed")

    def on_response_create(self, event: dict) -> None:
        if self.active is not None:
            raise ProtocolError(
                f"Conversation already has an active response in progress: {self.active.id}. Wait until the "
                "response is finished before creating a new one.", "conversation_already_has_active_response")
        self.start_response()

    def on_response_cancel(self, event: dict) -> None:
        # Like the service: a response_id names the response to cancel, which may have ended already.
        wanted = event.get("response_id")
        if self.active is None or (wanted is not None and wanted != self.active.id):
            raise ProtocolError("Cancellation failed: no active response found", "response_cancel_not_active")
        self.cancel_response("client_cancelled")

    # ---- conversation items ------------------------------------------------------------------------

    def _known_item(self, event: dict) -> dict:
        item_id = _require(event, "item_id", str)
        if item_id not in self.items:
            raise ProtocolError(f"Item with item_id '{item_id}' not found.", "item_not_found", "item_id")
        return self.items[item_id]

    def on_truncate(self, event: dict) -> None:
        entry = self._known_item(event)
        content_index = _require(event, "content_index", int)
        audio_end_ms = _require(event, "audio_end_ms", int)
        item = entry["item"]
        if item.get("role") != "assistant" or content_index != 0:
            raise ProtocolError("Only the audio content of an assistant message can be truncated.",
                                "invalid_value", "content_index" if content_index else "item_id")
        if audio_end_ms < 0:
            raise ProtocolError("Invalid 'audio_end_ms': expected a value >= 0.", "invalid_value", "audio_end_ms")
        have_ms = entry["audio_bytes"] // BYTES_PER_MS
        if audio_end_ms > have_ms:
            raise ProtocolError(f"Audio content of {have_ms}ms is already shorter than {audio_end_ms}ms",
                                "invalid_value", "audio_end_ms")
        entry["audio_bytes"] = audio_end_ms * BYTES_PER_MS
        truncation = {"item_id": item["id"], "content_index": content_index, "audio_end_ms": audio_end_ms}
        with self.emu.registry.changing(self.record) as rec:
            rec.truncations.append(truncation)
        self.emit("conversation.item.truncated", **truncation)

    def on_item_create(self, event: dict) -> None:
        item = _require(event, "item", dict)
        if item.get("type") not in ("message", "function_call", "function_call_output"):
            raise ProtocolError("Invalid 'item.type': supported values are message, function_call, "
                                "function_call_output.", "invalid_value", "item.type")
        if item.get("type") == "message" and item.get("role") not in ("user", "assistant", "system"):
            raise ProtocolError("Invalid 'item.role': supported values are user, assistant, system.",
                                "invalid_value", "item.role")
        item_id = item.get("id") or new_id("item")
        if item_id in self.items:
            raise ProtocolError(f"Item with item_id '{item_id}' already exists.", "duplicate_item_id", "item.id")
        previous = event.get("previous_item_id", next(reversed(self.items), None))
        if previous is not None and previous not in self.items:
            raise ProtocolError(f"Previous item with item_id '{previous}' not found.", "item_not_found",
                                "previous_item_id")
        if item["type"] == "function_call_output":
            call_id = _require(item, "call_id", str)
            _require(item, "output", str)
            if not any(e["item"].get("type") == "function_call" and e["item"].get("call_id") == call_id
                       for e in self.items.values()):
                raise ProtocolError(f"No function call with call_id '{call_id}' found.", "invalid_value",
                                    "item.call_id")
        item = {**item, "id": item_id, "object": "realtime.item", "status": "completed"}
        self.items[item_id] = {"item": item, "audio_bytes": 0}
        with self.emu.registry.changing(self.record) as rec:
            if len(rec.items_received) < self.emu.config.record_max_events:
                rec.items_received.append(item)
        if item["type"] == "function_call_output":
            outputs = self.reply_to[1] if self.reply_to[0] == "tool" else []
            self.reply_to = ("tool", [*outputs, item["output"]])
        elif item.get("role") == "user":
            texts = [c.get("text") for c in item.get("content") or [] if isinstance(c, dict)
                     and c.get("type") == "input_text" and isinstance(c.get("text"), str)]
            if texts:
                self.reply_to = ("text", " ".join(texts))
        self.emit("conversation.item.created", previous_item_id=previous, item=item)

    def on_item_delete(self, event: dict) -> None:
        item_id = self._known_item(event)["item"]["id"]
        del self.items[item_id]
        self.emit("conversation.item.deleted", item_id=item_id)

    def on_item_retrieve(self, event: dict) -> None:
        self.emit("conversation.item.retrieved", item=self._known_item(event)["item"])


def _text_tone(text: str) -> bytes:
    low, high = TEXT_REPLY_MS
    return _tone(max(low, min(high, TEXT_REPLY_MS_PER_WORD * len(text.split()))))


def _tone(ms: int = 600, hz: int = 440, dbfs: float = -20.0) -> bytes:
    amplitude = 32767 * 10 ** (dbfs / 20)
    count = ms * SAMPLES_PER_MS
    return struct.pack(f"<{count}h", *(int(amplitude * math.sin(2 * math.pi * hz * n / SAMPLE_RATE))
                                        for n in range(count)))
