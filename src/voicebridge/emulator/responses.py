"""The responses of one emulated session: an echo of the user's last utterance, streamed like the service's."""

from __future__ import annotations

import asyncio
import base64
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from ..protocol import BYTES_PER_MS, SAMPLE_RATE
from ..tasks import TaskOwner
from .conversation import Conversation
from .quota import usage
from .records import EmulatorHost, SessionRecord, new_id
from .validation import RequestError

DELTA_BYTES = 100 * BYTES_PER_MS  # 100 ms of PCM16 24 kHz mono
SAMPLES_PER_MS = SAMPLE_RATE // 1000
# Typed turns and tool results have no audio to echo: the reply is a tone this long per word, within bounds.
TEXT_REPLY_MS_PER_WORD, TEXT_REPLY_MS = 150, (600, 3000)

Emit = Callable[..., None]


@dataclass(slots=True)
class Response:
    id: str
    item_id: str
    record: dict
    transcript: str
    sent_text: list[str] = field(default_factory=list)
    task: asyncio.Task | None = None


class Responder:
    def __init__(self, emit: Emit, host: EmulatorHost, record: SessionRecord, conversation: Conversation,
                 tasks: TaskOwner):
        self._emit = emit
        self._host = host
        self._record = record
        self._conversation = conversation
        self._items = conversation.items
        self._tasks = tasks
        self.active: Response | None = None

    def start(self) -> None:
        """A response to the latest user input (Conversation.reply_to): function calls, if the emulator was
        told to make them, else a spoken reply."""
        kind, subject = self._conversation.reply_to
        self._conversation.answered()
        config = self._host.config
        if not self._host.quota.tokens_left(config.tokens_per_window, config.quota_window_s):
            self._rate_limited()
            return
        if kind != "tool":
            calls = self._host.function_calls_for(self._record, subject if kind == "text" else None)
            if calls:
                self._call_functions(calls)
                return
        if kind == "text":
            pcm, transcript = _text_tone(str(subject)), f"You wrote: {subject}"
        elif kind == "tool":
            pcm, transcript = _text_tone(" ".join(subject)), "The tool answered: " + "; ".join(subject)
        elif subject:
            pcm = subject
            seconds = len(pcm) / (1000 * BYTES_PER_MS)
            transcript = f"Echoing your {seconds:.1f} seconds of speech back to you."
        else:
            pcm, transcript = _tone(), "Nothing was said yet, so here is a short test tone."
        response_id, item_id = new_id("resp"), new_id("item")
        record = {"id": response_id, "item_id": item_id, "status": "in_progress", "audio_bytes_sent": 0,
                  "cancel_reason": None}
        with self._host.registry.changing(self._record) as rec:
            rec.responses.append(record)
        response = self.active = Response(response_id, item_id, record, transcript)
        self._items[item_id] = {"item": self._assistant_item(response, "in_progress"), "audio_bytes": 0}
        # The preamble goes out synchronously so a cancellation arriving at once still follows it.
        self._emit("response.created", response={"object": "realtime.response", "id": response_id,
                                                 "status": "in_progress", "status_details": None, "output": []})
        self._emit("response.output_item.added", response_id=response_id, output_index=0,
                   item=self._assistant_item(response, "in_progress"))
        self._emit("response.content_part.added", response_id=response_id, item_id=item_id, output_index=0,
                   content_index=0, part={"type": "audio", "transcript": ""})
        response.task = self._tasks.spawn(self._stream(response, pcm), f"response-{response_id}")

    def _assistant_item(self, response: Response, status: str) -> dict:
        content = [{"type": "audio", "transcript": "".join(response.sent_text)}] if status != "in_progress" else []
        return {"id": response.item_id, "object": "realtime.item", "type": "message", "status": status,
                "role": "assistant", "content": content}

    async def _stream(self, response: Response, pcm: bytes) -> None:
        loop = asyncio.get_running_loop()
        ids = {"response_id": response.id, "item_id": response.item_id, "output_index": 0, "content_index": 0}
        chunks = [pcm[i:i + DELTA_BYTES] for i in range(0, len(pcm), DELTA_BYTES)]
        words = response.transcript.split(" ")
        fragments = [w + " " for w in words[:-1]] + words[-1:]
        started = loop.time()
        for index, chunk in enumerate(chunks):
            pace = self._host.config.pace
            if index and pace:
                await asyncio.sleep(max(0.0, started + index * 0.1 * pace - loop.time()))
            self._emit("response.audio.delta", delta=base64.b64encode(chunk).decode("ascii"), **ids)
            self._items[response.item_id]["audio_bytes"] += len(chunk)
            with self._host.registry.changing(self._record):
                response.record["audio_bytes_sent"] += len(chunk)
            # Spread the transcript over the audio, as the service interleaves them.
            while len(response.sent_text) * len(chunks) < (index + 1) * len(fragments):
                fragment = fragments[len(response.sent_text)]
                response.sent_text.append(fragment)
                self._emit("response.audio_transcript.delta", delta=fragment, **ids)
        self._emit("response.audio.done", **ids)
        self._emit("response.audio_transcript.done", transcript=response.transcript, **ids)
        self._emit("response.content_part.done", **ids, part={"type": "audio", "transcript": response.transcript})
        self._finish(response, "completed", None)

    def _finish(self, response: Response, status: str, reason: str | None) -> None:
        self.active = None
        item = self._assistant_item(response, "completed" if status == "completed" else "incomplete")
        self._items[response.item_id]["item"] = item
        self._emit("response.output_item.done", response_id=response.id, output_index=0, item=item)
        details = None if reason is None else {"type": "cancelled", "reason": reason}
        billed = usage(self._items, response.item_id)
        self._host.quota.spend(billed["total_tokens"], self._host.config.quota_window_s)
        self._emit("response.done", response={"object": "realtime.response", "id": response.id, "status": status,
                                              "status_details": details, "output": [item], "usage": billed})
        with self._host.registry.changing(self._record):
            response.record.update(status=status, cancel_reason=reason)

    def _rate_limited(self) -> None:
        """The resource spent its tokens for the window: the reply fails at once, as the service's does."""
        response_id = new_id("resp")
        with self._host.registry.changing(self._record) as rec:
            rec.responses.append({"id": response_id, "item_id": None, "status": "failed", "audio_bytes_sent": 0,
                                  "cancel_reason": "rate_limit_exceeded"})
        self._emit("response.created", response={"object": "realtime.response", "id": response_id,
                                                 "status": "in_progress", "status_details": None, "output": []})
        error = {"type": "rate_limit_error", "code": "rate_limit_exceeded",
                 "message": "The resource's tokens-per-minute quota is spent; retry after a while."}
        self._emit("response.done", response={"object": "realtime.response", "id": response_id, "status": "failed",
                                              "status_details": {"type": "failed", "error": error}, "output": [],
                                              "usage": usage({}, None)})

    def cancel(self, reason: str) -> None:
        response = self.active
        response.task.cancel()  # suspended at an await, so it can emit nothing more
        self._finish(response, "cancelled", reason)

    def on_create(self, event: dict) -> None:
        if self.active is not None:
            raise RequestError(
                f"Conversation already has an active response in progress: {self.active.id}. Wait until the "
                "response is finished before creating a new one.", "conversation_already_has_active_response")
        self.start()

    def _call_functions(self, calls: list[dict]) -> None:
        """A response whose output is function calls, in the service's event order; it completes at once
        (the arguments are known), and the client answers with function_call_output items + response.create."""
        response_id = new_id("resp")
        record = {"id": response_id, "item_id": None, "status": "in_progress", "audio_bytes_sent": 0,
                  "cancel_reason": None, "function_calls": [c["name"] for c in calls]}
        with self._host.registry.changing(self._record) as rec:
            rec.responses.append(record)
        self._emit("response.created", response={"object": "realtime.response", "id": response_id,
                                                 "status": "in_progress", "status_details": None, "output": []})
        output = []
        for index, call in enumerate(calls):
            item_id, call_id = new_id("item"), new_id("call")
            item = {"id": item_id, "object": "realtime.item", "type": "function_call", "status": "in_progress",
                    "name": call["name"], "call_id": call_id, "arguments": ""}
            ids = {"response_id": response_id, "item_id": item_id, "output_index": index, "call_id": call_id}
            self._emit("response.output_item.added", response_id=response_id, output_index=index, item=item)
            arguments = call["arguments"]
            for offset in range(0, len(arguments), 16):  # streamed in pieces, as the model writes them
                self._emit("response.function_call_arguments.delta", delta=arguments[offset:offset + 16], **ids)
            self._emit("response.function_call_arguments.done", name=call["name"], arguments=arguments, **ids)
            item = {**item, "status": "completed", "arguments": arguments}
            self._items[item_id] = {"item": item, "audio_bytes": 0}
            self._emit("response.output_item.done", response_id=response_id, output_index=index, item=item)
            output.append(item)
        self._emit("response.done", response={"object": "realtime.response", "id": response_id,
                                              "status": "completed", "status_details": None, "output": output})
        with self._host.registry.changing(self._record):
            record.update(status="completed")

    def on_cancel(self, event: dict) -> None:
        # Like the service: a response_id names the response to cancel, which may have ended already.
        wanted = event.get("response_id")
        if self.active is None or (wanted is not None and wanted != self.active.id):
            raise RequestError("Cancellation failed: no active response found", "response_cancel_not_active")
        self.cancel("client_cancelled")

    def connection_closed(self) -> None:
        """The client is gone: the response in flight ends cancelled, without events nobody would read."""
        if self.active:
            self.active.task.cancel()
            with self._host.registry.changing(self._record):
                self.active.record.update(status="cancelled", cancel_reason="connection_closed")


def _text_tone(text: str) -> bytes:
    low, high = TEXT_REPLY_MS
    return _tone(max(low, min(high, TEXT_REPLY_MS_PER_WORD * len(text.split()))))


def _tone(ms: int = 600, hz: int = 440, dbfs: float = -20.0) -> bytes:
    amplitude = 32767 * 10 ** (dbfs / 20)
    count = ms * SAMPLES_PER_MS
    return struct.pack(f"<{count}h", *(int(amplitude * math.sin(2 * math.pi * hz * n / SAMPLE_RATE))
                                        for n in range(count)))
