"""The responses of one emulated session: an echo of the user's last utterance, streamed like the service's."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from dataclasses import dataclass, field

from ..protocol import BYTES_PER_MS
from ..tasks import TaskOwner
from .conversation import Conversation
from .functioncalls import FunctionCallResponses
from .mcp import McpServers
from .mcpresponses import McpResponses
from .records import EmulatorHost, SessionRecord, new_id
from .spoken import WordStamps, pre_generated_text
from .tones import text_tone as _text_tone
from .tones import tone as _tone
from .usage import OUTPUT_AUDIO_TOKENS_PER_S, Usage, audio_tokens, text_tokens
from .validation import RequestError

DELTA_BYTES = 100 * BYTES_PER_MS  # 100 ms of PCM16 24 kHz mono
# Typed turns and tool results have no audio to echo: the reply is a tone this long per word, within bounds.

Emit = Callable[..., None]


@dataclass(slots=True)
class Response:
    id: str
    item_id: str
    record: dict
    transcript: str
    part: str = "audio"  # "text" in a text-only session
    sent_text: list[str] = field(default_factory=list)
    task: asyncio.Task | None = None
    cancelling: bool = False
    context: tuple[int, int] = (0, 0)  # (text, audio) tokens of the conversation this response re-read
    audio_bytes: int = 0
    finisher: Callable[..., None] | None = None  # how a cancellation ends it (an MCP call's is not a message)
    output: list = field(default_factory=list)  # the output items of a response that is not one message
    audio_index: int = 0  # the content index of the audio part (1 with the reply_text_part knob)


class Responder(FunctionCallResponses, McpResponses):
    def __init__(self, emit: Emit, host: EmulatorHost, record: SessionRecord, *, conversation: Conversation,
                 tasks: TaskOwner, mcp: McpServers | None = None):
        self._emit = self.emit = emit
        self._host = host
        self._record = record
        self._conversation = conversation
        self._items = conversation.items
        self._tasks = tasks
        self.active: Response | None = None
        self._usage = Usage(spend=lambda tokens: host.quota.spend(tokens, host.config.quota_window_s))
        self._start_after = False  # a turn ended while the active response was still being cancelled
        self._init_mcp(mcp, Response)

    def start_when_free(self) -> None:
        """The VAD committed a turn: reply now, or once the response being cancelled is done."""
        if self.active is None:
            self.start()
        elif self.active.cancelling:
            self._start_after = True

    def start(self, said: str | None = None) -> None:
        """A response to the latest input (Conversation.reply_to): function calls, if the emulator was told
        to make them and this answers a user turn, else a reply spoken, or written in a text-only session;
        or `said` (a pre-generated message), which answers nothing. Beyond the resource's tokens for the
        window (quota.py) it fails, as the reply_outcome `failed` does."""
        kind, subject, user_turn = self._conversation.next_reply(said)
        config = self._host.config
        throttled = not self._host.quota.tokens_left(config.tokens_per_window, config.quota_window_s)
        if user_turn and not throttled:
            if self._mcp_turn(subject if kind == "text" else None):
                return
            calls = self._host.function_calls_for(self._record, subject if kind == "text" else None)
            if calls:
                self._call_functions(calls)
                return
        if kind in ("said", "text"):
            pcm, transcript = _text_tone(str(subject)), str(subject) if kind == "said" else f"You wrote: {subject}"
        elif kind == "tool":
            pcm, transcript = _text_tone(" ".join(subject)), "The tool answered: " + "; ".join(subject)
        elif subject:
            pcm = subject
            seconds = len(pcm) / (1000 * BYTES_PER_MS)
            transcript = f"Echoing {seconds:.1f} s of audio back to you: your speech and the pauses around it."
        else:
            pcm, transcript = _tone(), "Nothing was said yet, so here is a short test tone."
        outcome = "failed" if throttled else config.reply_outcome
        context = self._usage.context(self._record.config.get("instructions"), self._items)
        # Text only: a session without the audio modality, or the text_only reply outcome.
        text_only = outcome == "text_only" or "audio" not in (self._record.config.get("modalities") or ("text", "audio"))
        response_id, item_id = new_id("resp"), new_id("item")
        record = {"id": response_id, "item_id": item_id, "status": "in_progress", "audio_bytes_sent": 0,
                  "cancel_reason": None, "outcome": outcome}
        with self._host.registry.changing(self._record) as rec:
            rec.responses.append(record)
        response = self.active = Response(response_id, item_id, record, transcript,
                                          part="text" if text_only else "audio", context=context)
        # The preamble goes out synchronously so a cancellation arriving at once still follows it; the order
        # is the API reference's: the item is added to the response, then created in the conversation.
        self._emit("response.created", response={"object": "realtime.response", "id": response_id,
                                                 "status": "in_progress", "status_details": None, "output": []})
        if outcome == "failed":
            # Throttled before any output, as the service reports it: response.done status failed.
            self._end(response, "failed", {"type": "failed", "error": {
                "type": "rate_limit_exceeded", "code": "rate_limit_exceeded",
                "message": "Rate limit reached for the model's tokens per minute. Try again shortly."}}, [])
            return
        previous = self._conversation.last_id()
        item = self._assistant_item(response, "in_progress")
        if not text_only and self._host.config.reply_text_part:
            response.audio_index = 1
        self._items[item_id] = {"item": item, "audio_bytes": 0, "audio_index": response.audio_index}
        self._emit("response.output_item.added", response_id=response_id, output_index=0, item=item)
        self._emit("conversation.item.created", previous_item_id=previous, item=item)
        if response.audio_index:
            _text_part(self, response)
        empty = {"type": "text", "text": ""} if text_only else {"type": "audio", "transcript": ""}
        self._emit("response.content_part.added", response_id=response_id, item_id=item_id, output_index=0,
                   content_index=response.audio_index, part=empty)
        if text_only:
            response.task = self._tasks.spawn(_stream_text(self, self._host, response), f"response-{response_id}")
        elif outcome == "content_filter":
            # Output stopped by the content filter (Voice Live cannot switch it off): no audio, incomplete.
            self.finish(response, "incomplete", None, {"type": "incomplete", "reason": "content_filter"})
        else:
            response.task = self._tasks.spawn(self._stream(response, pcm), f"response-{response_id}")

    def _assistant_item(self, response: Response, status: str) -> dict:
        said = "".join(response.sent_text)
        content = [] if status == "in_progress" else [
            {"type": "text", "text": said} if response.part == "text" else {"type": "audio", "transcript": said}]
        if content and response.audio_index:
            content.insert(0, {"type": "text", "text": response.transcript})
        return {"id": response.item_id, "object": "realtime.item", "type": "message", "status": status,
                "role": "assistant", "content": content}

    async def _stream(self, response: Response, pcm: bytes) -> None:
        loop = asyncio.get_running_loop()
        ids = {"response_id": response.id, "item_id": response.item_id, "output_index": 0,
               "content_index": response.audio_index}
        chunks = [pcm[i:i + DELTA_BYTES] for i in range(0, len(pcm), DELTA_BYTES)]
        words = response.transcript.split(" ")
        fragments = [w + " " for w in words[:-1]] + words[-1:]
        stamps = WordStamps(self._emit, self._record.config, response.transcript,
                            audio_ms=len(pcm) // BYTES_PER_MS, ids=ids)
        started = loop.time()
        limit = self._record.config.get("max_response_output_tokens")
        for index, chunk in enumerate(chunks):
            if isinstance(limit, int) and _output_tokens(response, index, chunk, fragments, len(chunks)) > limit:
                _end_at_limit(self, response, ids)
                return
            pace = self._host.config.pace
            if index and pace:
                await asyncio.sleep(max(0.0, started + index * 0.1 * pace - loop.time()))
            self._emit("response.audio.delta", delta=base64.b64encode(chunk).decode("ascii"), **ids)
            self._items[response.item_id]["audio_bytes"] += len(chunk)
            response.audio_bytes += len(chunk)
            with self._host.registry.changing(self._record):
                response.record["audio_bytes_sent"] += len(chunk)
            # Spread the transcript over the audio, as the service interleaves them.
            while len(response.sent_text) * len(chunks) < (index + 1) * len(fragments):
                fragment = fragments[len(response.sent_text)]
                response.sent_text.append(fragment)
                self._emit("response.audio_transcript.delta", delta=fragment, **ids)
            stamps.upto((index + 1) * 100)
        stamps.done()
        self._emit("response.audio.done", **ids)
        self._emit("response.audio_transcript.done", transcript=response.transcript, **ids)
        self._emit("response.content_part.done", **ids, part={"type": "audio", "transcript": response.transcript})
        self.finish(response, "completed", None)

    def finish(self, response: Response, status: str, reason: str | None, details: dict | None = None) -> None:
        item = self._assistant_item(response, "completed" if status == "completed" else "incomplete")
        self._items[response.item_id]["item"] = item
        self._emit("response.output_item.done", response_id=response.id, output_index=0, item=item)
        if details is None and reason is not None:
            details = {"type": "cancelled", "reason": reason}
        self._end(response, status, details, [item], reason)

    def _end(self, response: Response, status: str, details: dict | None, output: list, reason: str | None = None,
             ) -> None:
        self.active = None
        # A failed (throttled) response ran no model: nothing re-read, nothing billed.
        usage = (Usage.failed() if status == "failed"
                 else self._usage.report(response.context, response.audio_bytes, "".join(response.sent_text)))
        self._emit("response.done", response={"object": "realtime.response", "id": response.id, "status": status,
                                              "status_details": details, "output": output, "usage": usage})
        with self._host.registry.changing(self._record) as rec:
            # How many client events had arrived by this response.done: those recorded before it were sent
            # while the response was still in progress.
            response.record.update(status=status, cancel_reason=reason, usage=usage,
                                   done_at_event=len(rec.events_received))
        if not self._run_approved() and self._start_after:
            self._start_after = False
            self.start()

    def cancel(self, reason: str) -> None:
        """Cancellation is asynchronous on the service: the response stays active (a response.create is
        refused) until its response.done, which follows after cancel_latency_ms."""
        response = self.active
        if response is None or response.cancelling:
            return
        response.cancelling = True
        if response.task is not None:
            response.task.cancel()  # suspended at an await, so it can emit nothing more
        loop = asyncio.get_running_loop()
        loop.call_later(self._host.config.cancel_latency_ms / 1000, self._cancelled, response, reason)

    def _cancelled(self, response: Response, reason: str) -> None:
        if self.active is response:
            (response.finisher or self.finish)(response, "cancelled", reason)

    def on_create(self, event: dict) -> None:
        params = event.get("response")
        if isinstance(params, dict) and not isinstance(params.get("cancel_previous", False), bool):
            raise RequestError("Invalid 'response.cancel_previous': expected a boolean.", "invalid_type",
                               "response.cancel_previous")
        # [NOTES] a create while a response is active is refused; cancel_previous (the SDK says it defaults
        # to true) is not modelled: true is refused too, which is never kinder than the service.
        if self.active is not None:
            raise RequestError(
                f"Conversation already has an active response in progress: {self.active.id}. Wait until the "
                "response is finished before creating a new one.", "conversation_already_has_active_response")
        self.start(pre_generated_text(event.get("response")))

    def on_cancel(self, event: dict) -> None:
        # Like the service: a response_id names the response to cancel, which may have ended already.
        wanted = event.get("response_id")
        if self.active is None or self.active.cancelling or (wanted is not None and wanted != self.active.id):
            raise RequestError("Cancellation failed: no active response found", "response_cancel_not_active")
        self.cancel("client_cancelled")

    def connection_closed(self) -> None:
        """The client is gone: the response in flight ends cancelled, without events nobody would read."""
        if self.active:
            if self.active.task is not None:
                self.active.task.cancel()
            with self._host.registry.changing(self._record):
                self.active.record.update(status="cancelled", cancel_reason="connection_closed")


async def _stream_text(responder: Responder, host: EmulatorHost, response: Response) -> None:
    """A reply in text only: response.text.* and no audio at all."""
    ids = {"response_id": response.id, "item_id": response.item_id, "output_index": 0, "content_index": 0}
    words = response.transcript.split(" ")
    for index, word in enumerate(words):
        if index and host.config.pace:
            await asyncio.sleep(0.05 * host.config.pace)
        fragment = word if index == len(words) - 1 else word + " "
        response.sent_text.append(fragment)
        responder.emit("response.text.delta", delta=fragment, **ids)
    responder.emit("response.text.done", text=response.transcript, **ids)
    responder.emit("response.content_part.done", **ids, part={"type": "text", "text": response.transcript})
    responder.finish(response, "completed", None)


def _text_part(responder: Responder, response: Response) -> None:
    """The reply_text_part knob: the reply's words as a text part (content_index 0) before its audio part,
    as an item's content may hold ([SDK] ResponseTextContentPart, ResponseAudioContentPart)."""
    ids = {"response_id": response.id, "item_id": response.item_id, "output_index": 0, "content_index": 0}
    responder.emit("response.content_part.added", **ids, part={"type": "text", "text": ""})
    responder.emit("response.text.delta", delta=response.transcript, **ids)
    responder.emit("response.text.done", text=response.transcript, **ids)
    responder.emit("response.content_part.done", **ids, part={"type": "text", "text": response.transcript})


def _output_tokens(response: Response, index: int, chunk: bytes, fragments: list[str], chunks: int) -> int:
    """The reply's output tokens once chunk `index` and the words streamed with it are out (usage.py's model)."""
    words = -(-(index + 1) * len(fragments) // chunks)
    return (audio_tokens(response.audio_bytes + len(chunk), OUTPUT_AUDIO_TOKENS_PER_S)
            + text_tokens("".join(fragments[:words])))


def _end_at_limit(responder: Responder, response: Response, ids: dict) -> None:
    """The reply reached the session's max_response_output_tokens: what was streamed is all of it, and the
    response ends incomplete ([SDK] ResponseIncompleteDetails reason max_output_tokens)."""
    said = "".join(response.sent_text)
    responder.emit("response.audio.done", **ids)
    responder.emit("response.audio_transcript.done", transcript=said, **ids)
    responder.emit("response.content_part.done", **ids, part={"type": "audio", "transcript": said})
    responder.finish(response, "incomplete", None, {"type": "incomplete", "reason": "max_output_tokens"})
