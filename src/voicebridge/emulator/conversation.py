"""The conversation of one emulated session: its items in order, and the client events that edit them."""

from __future__ import annotations

from collections.abc import Callable

from ..protocol import BYTES_PER_MS
from .records import EmulatorHost, SessionRecord, new_id
from .validation import RequestError, require

Emit = Callable[..., None]


class Conversation:
    def __init__(self, emit: Emit, host: EmulatorHost, record: SessionRecord):
        self._emit = emit
        self._host = host
        self._record = record
        # id -> {"item", "audio_bytes", "audio_index" (where its audio part is, if not 0)}; insertion order
        # is conversation order.
        self.items: dict[str, dict] = {}
        # What the next response answers: ("audio", the last utterance), ("text", typed text) or
        # ("tool", [the outputs of function calls]).
        self.reply_to: tuple[str, object] = ("audio", b"")
        self.last_utterance = b""
        # A user turn (speech or typed text) no response has answered yet: only such a turn can be
        # answered with function calls, never a greeting's response.create or a repeat.
        self.user_turn = False
        self.turns = 0  # user turns so far (committed speech and typed messages), for the connection's log line

    def last_id(self) -> str | None:
        return next(reversed(self.items), None)

    def _known(self, event: dict) -> dict:
        item_id = require(event, "item_id", str)
        if item_id not in self.items:
            raise RequestError(f"Item with item_id '{item_id}' not found.", "item_not_found", "item_id")
        return self.items[item_id]

    def on_truncate(self, event: dict) -> None:
        entry = self._known(event)
        content_index = require(event, "content_index", int)
        audio_end_ms = require(event, "audio_end_ms", int)
        item = entry["item"]
        if item.get("role") != "assistant":
            raise RequestError("Only the audio content of an assistant message can be truncated.",
                               "invalid_value", "item_id")
        # [REF] content_index: the index of the content part to truncate, which must be the audio's (the
        # one its response.audio.delta events named; 0 unless the item has a part before its audio).
        audio_index = entry.get("audio_index", 0)
        if content_index != audio_index:
            raise RequestError(f"Invalid 'content_index': {content_index}. The audio content of item "
                               f"'{item['id']}' is at content_index {audio_index}.", "invalid_value",
                               "content_index")
        if audio_end_ms < 0:
            raise RequestError("Invalid 'audio_end_ms': expected a value >= 0.", "invalid_value", "audio_end_ms")
        have_ms = max(0, entry["audio_bytes"] // BYTES_PER_MS - int(self._host.config.audio_short_ms))
        if audio_end_ms > have_ms:
            raise RequestError(f"Audio content of {have_ms}ms is already shorter than {audio_end_ms}ms",
                               "invalid_value", "audio_end_ms")
        entry["audio_bytes"] = audio_end_ms * BYTES_PER_MS
        truncation = {"item_id": item["id"], "content_index": content_index, "audio_end_ms": audio_end_ms}
        with self._host.registry.changing(self._record) as rec:
            rec.truncations.append(truncation)
        self._emit("conversation.item.truncated", **truncation)

    def on_create(self, event: dict) -> dict:
        item = require(event, "item", dict)
        if item.get("type") not in ("message", "function_call", "function_call_output", "mcp_approval_response"):
            raise RequestError("Invalid 'item.type': supported values are message, function_call, "
                               "function_call_output, mcp_approval_response.", "invalid_value", "item.type")
        if item["type"] == "mcp_approval_response":
            self._check_approval(item)
        if item.get("type") == "message" and item.get("role") not in ("user", "assistant", "system"):
            raise RequestError("Invalid 'item.role': supported values are user, assistant, system.",
                               "invalid_value", "item.role")
        if item["type"] == "message":
            _check_content(item)
        item_id = item.get("id") or new_id("item")
        if item_id in self.items:
            raise RequestError(f"Item with item_id '{item_id}' already exists.", "duplicate_item_id", "item.id")
        previous = event.get("previous_item_id", self.last_id())
        if previous is not None and previous not in self.items:
            raise RequestError(f"Previous item with item_id '{previous}' not found.", "item_not_found",
                               "previous_item_id")
        if item["type"] == "function_call_output":
            call_id = require(item, "call_id", str)
            require(item, "output", str)
            if not any(e["item"].get("type") == "function_call" and e["item"].get("call_id") == call_id
                       for e in self.items.values()):
                raise RequestError(f"No function call with call_id '{call_id}' found.", "invalid_value",
                                   "item.call_id")
        item = {**item, "id": item_id, "object": "realtime.item", "status": "completed"}
        self.items[item_id] = {"item": item, "audio_bytes": 0}
        with self._host.registry.changing(self._record) as rec:
            if len(rec.items_received) < self._host.config.record_max_events:
                rec.items_received.append(item)
        self._note_input(item)
        self._emit("conversation.item.created", previous_item_id=previous, item=item)
        return item

    def _check_approval(self, item: dict) -> None:
        """An answer to an approval request: it must name one, once, and say yes or no."""
        request_id = require(item, "approval_request_id", str)
        if not isinstance(item.get("approve"), bool):
            raise RequestError("Invalid 'item.approve': expected a boolean.", "invalid_type", "item.approve")
        request = self.items.get(request_id, {}).get("item", {})
        if request.get("type") != "mcp_approval_request":
            raise RequestError(f"No MCP approval request with id '{request_id}' found.", "invalid_value",
                               "item.approval_request_id")
        if any(e["item"].get("type") == "mcp_approval_response" and e["item"].get("approval_request_id") == request_id
               for e in self.items.values()):
            raise RequestError(f"The MCP approval request '{request_id}' was already answered.", "invalid_value",
                               "item.approval_request_id")

    def heard(self, pcm: bytes) -> None:
        """A committed utterance: the next response echoes it."""
        self.last_utterance = pcm
        self.reply_to = ("audio", pcm)
        self.user_turn = True
        self.turns += 1

    def next_reply(self, said: str | None) -> tuple[str, object, bool]:
        """What a response answers (and from now on has answered), and whether that is a user turn;
        ("said", text) for a pre-generated message, which answers nothing: what the user said or a tool
        returned is still to be answered."""
        if said is not None:
            return "said", said, False
        (kind, subject), user_turn = self.reply_to, self.user_turn
        self.reply_to, self.user_turn = ("audio", self.last_utterance), False
        return kind, subject, user_turn

    def _note_input(self, item: dict) -> None:
        if item["type"] == "function_call_output":
            outputs = self.reply_to[1] if self.reply_to[0] == "tool" else []
            self.reply_to = ("tool", [*outputs, item["output"]])
            self.user_turn = False
        elif item.get("role") == "user":
            texts = [c.get("text") for c in item.get("content") or [] if isinstance(c, dict)
                     and c.get("type") == "input_text" and isinstance(c.get("text"), str)]
            if texts:
                self.reply_to = ("text", " ".join(texts))
                self.user_turn = True
                self.turns += 1

    def on_delete(self, event: dict) -> None:
        item_id = self._known(event)["item"]["id"]
        del self.items[item_id]
        self._emit("conversation.item.deleted", item_id=item_id)

    def on_retrieve(self, event: dict) -> None:
        self._emit("conversation.item.retrieved", item=self._known(event)["item"])


# [REF] MessageItem needs `content`; ContentPartType: input_text, input_audio, input_image, text, audio. Per
# role, as the Realtime API's item reference has it: a system message holds input_text, a user message
# input_text / input_audio / input_image, an assistant message text (an assistant's audio cannot be added).
MESSAGE_PARTS = {"system": ("input_text",), "user": ("input_text", "input_audio", "input_image"),
                 "assistant": ("text",)}
TEXT_PARTS = ("input_text", "text")


def _check_content(item: dict) -> None:
    content = item.get("content")
    if not isinstance(content, list) or not content:
        raise RequestError("Missing required parameter: 'item.content'.", "missing_required_parameter",
                           "item.content")
    allowed = MESSAGE_PARTS[item["role"]]
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in allowed:
            raise RequestError(f"Invalid 'item.content[{index}].type': a {item['role']} message holds parts of "
                               f"type {', '.join(allowed)}.", "invalid_value", f"item.content[{index}].type")
        if kind in TEXT_PARTS and not isinstance(part.get("text"), str):
            raise RequestError(f"Missing required parameter: 'item.content[{index}].text'.",
                               "missing_required_parameter", f"item.content[{index}].text")
