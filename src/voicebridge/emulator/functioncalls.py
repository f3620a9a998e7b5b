"""A response whose output is function calls (calls.py decides when): a mixin of responses.Responder.

The service's event order: `response.created` → per call `response.output_item.added` (a
`function_call` item) → `conversation.item.created` → the argument deltas → `.done` →
`response.output_item.done` → one `response.done` listing the calls. The response stays active for
`function_call_done_ms` after its last call (the service takes time there too: the model goes on after
writing a call), then completes; a cancellation meanwhile ends it cancelled, its calls still in the
conversation. The client answers with function_call_output items and a response.create; the record
notes how many client events had arrived by its `response.done` (`done_at_event`), so a test can see
an output added while the asking response was still in progress.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .records import new_id
from .spoken import speak_interim
from .tones import text_tone

Response = Any  # responses.Response (that module builds on this one)


class FunctionCallResponses:
    def _call_functions(self, calls: list[dict]) -> None:
        """A response whose output is function calls, in the service's event order."""
        context = self._usage.context(self._record.config.get("instructions"), self._items)
        response_id = new_id("resp")
        record = {"id": response_id, "item_id": None, "status": "in_progress", "audio_bytes_sent": 0,
                  "cancel_reason": None, "function_calls": [c["name"] for c in calls]}
        with self._host.registry.changing(self._record) as rec:
            rec.responses.append(record)
        response = self.active = self._response_type(response_id, "", record, "", context=context,
                                                     finisher=self._finish_calls)
        response.sent_text = [c["arguments"] for c in calls]  # the output text the usage counts
        self._emit("response.created", response={"object": "realtime.response", "id": response_id,
                                                 "status": "in_progress", "status_details": None, "output": []})
        output = []
        for index, call in enumerate(calls):
            item_id, call_id = new_id("item"), new_id("call")
            item = {"id": item_id, "object": "realtime.item", "type": "function_call", "status": "in_progress",
                    "name": call["name"], "call_id": call_id, "arguments": ""}
            ids = {"response_id": response_id, "item_id": item_id, "output_index": index, "call_id": call_id}
            previous = self._conversation.last_id()
            self._items[item_id] = {"item": item, "audio_bytes": 0}
            self._emit("response.output_item.added", response_id=response_id, output_index=index, item=item)
            # Before the argument deltas, as the service does: clients (the SDK's samples among them) act on it.
            self._emit("conversation.item.created", previous_item_id=previous, item=item)
            arguments = call["arguments"]
            for offset in range(0, len(arguments), 16):  # streamed in pieces, as the model writes them
                self._emit("response.function_call_arguments.delta", delta=arguments[offset:offset + 16], **ids)
            self._emit("response.function_call_arguments.done", name=call["name"], arguments=arguments, **ids)
            item = {**item, "status": "completed", "arguments": arguments}
            self._items[item_id] = {"item": item, "audio_bytes": 0}
            self._emit("response.output_item.done", response_id=response_id, output_index=index, item=item)
            output.append(item)
        output += speak_interim(self._emit, self._items, self._record.config, response_id, len(output), text_tone)
        response.output = output
        delay = self._host.config.function_call_done_ms / 1000
        if delay:
            response.task = self._tasks.spawn(self._calls_done(response, delay), f"calls-{response_id}")
        else:
            self._end(response, "completed", None, output)

    async def _calls_done(self, response: Response, delay: float) -> None:
        await asyncio.sleep(delay)  # the service's own time between the last call and response.done
        if self.active is response and not response.cancelling:
            self._end(response, "completed", None, response.output)

    def _finish_calls(self, response: Response, status: str, reason: str | None, details: dict | None = None) -> None:
        self._end(response, status, details or {"type": "cancelled", "reason": reason}, response.output, reason)
