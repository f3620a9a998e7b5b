"""The MCP part of an emulated session's responses (mcp.py plays the servers): a response that asks for
approval, the answer to it, and a response that makes the call to the real server.

A mixin of responses.Responder, whose state it shares (the active response, the conversation's items,
the usage report): the service's MCP responses are responses like the others, one active at a time.
"""

from __future__ import annotations

from typing import Any

from .mcp import McpCall, McpServers
from .records import new_id

Response = Any  # responses.Response (that module builds on this one)


class McpResponses:
    def _init_mcp(self, mcp: McpServers | None, response_type: type) -> None:
        self._mcp = mcp
        self._response_type = response_type  # responses.Response
        self._asked: dict[str, McpCall] = {}  # approval request id -> the call it asks for
        self._approved: list[tuple[McpCall, str]] = []  # approved while a response was active: run after it

    def _mcp_turn(self, typed_text: str | None) -> bool:
        """This response to a user turn is an MCP call (approval request first, if needed)?"""
        if self._mcp is None:
            return False
        call = self._host.calls.mcp.next_for(self._record, self._mcp.listed(), typed_text)
        if call is not None:
            self._use_mcp(call)
        return call is not None

    def _run_approved(self) -> bool:
        """A response ended: a call approved meanwhile runs now."""
        if not self._approved:
            return False
        self._run_mcp(*self._approved.pop(0))
        return True

    def _use_mcp(self, call: McpCall) -> None:
        assert self._mcp is not None
        if not self._mcp.needs_approval(call.server, call.name):
            self._run_mcp(call, None)
            return
        # A response whose output is the approval request; the call waits for mcp_approval_response.
        response_id, item_id = new_id("resp"), new_id("mcpr")
        record = {"id": response_id, "item_id": item_id, "status": "in_progress", "audio_bytes_sent": 0,
                  "cancel_reason": None, "mcp_approval_request": f"{call.server}/{call.name}"}
        with self._host.registry.changing(self._record) as rec:
            rec.responses.append(record)
        context = self._usage.context(self._record.config.get("instructions"), self._items)
        self._emit("response.created", response={"object": "realtime.response", "id": response_id,
                                                 "status": "in_progress", "status_details": None, "output": []})
        item = {"id": item_id, "object": "realtime.item", "type": "mcp_approval_request",
                "server_label": call.server, "name": call.name, "arguments": call.arguments}
        previous = self._conversation.last_id()
        self._items[item_id] = {"item": item, "audio_bytes": 0}
        self._asked[item_id] = call
        self._emit("response.output_item.added", response_id=response_id, output_index=0, item=item)
        self._emit("conversation.item.created", previous_item_id=previous, item=item)
        self._emit("response.output_item.done", response_id=response_id, output_index=0, item=item)
        usage = self._usage.report(context, 0, call.arguments)
        self._emit("response.done", response={"object": "realtime.response", "id": response_id,
                                              "status": "completed", "status_details": None, "output": [item],
                                              "usage": usage})
        with self._host.registry.changing(self._record):
            record.update(status="completed", usage=usage)

    def approval_answered(self, item: dict) -> None:
        """An mcp_approval_response: approved, the service makes the call in a response of its own."""
        call = self._asked.pop(item["approval_request_id"], None)
        if call is None or not item["approve"]:
            return
        if self.active is None:
            self._run_mcp(call, item["approval_request_id"])
        else:
            self._approved.append((call, item["approval_request_id"]))

    def _run_mcp(self, call: McpCall, approval_id: str | None) -> None:
        response_id, item_id = new_id("resp"), new_id("mcp")
        record = {"id": response_id, "item_id": item_id, "status": "in_progress", "audio_bytes_sent": 0,
                  "cancel_reason": None, "mcp_call": f"{call.server}/{call.name}"}
        with self._host.registry.changing(self._record) as rec:
            rec.responses.append(record)
        context = self._usage.context(self._record.config.get("instructions"), self._items)
        response = self.active = self._response_type(response_id, item_id, record, "", context=context,
                                                     finisher=self._finish_mcp)
        item = {"id": item_id, "object": "realtime.item", "type": "mcp_call", "status": "in_progress",
                "server_label": call.server, "name": call.name, "arguments": "", "approval_request_id": approval_id,
                "output": None, "error": None}
        previous = self._conversation.last_id()
        self._items[item_id] = {"item": item, "audio_bytes": 0}
        ids = {"response_id": response_id, "item_id": item_id, "output_index": 0}
        self._emit("response.created", response={"object": "realtime.response", "id": response_id,
                                                 "status": "in_progress", "status_details": None, "output": []})
        self._emit("response.output_item.added", response_id=response_id, output_index=0, item=item)
        self._emit("conversation.item.created", previous_item_id=previous, item=item)
        for offset in range(0, len(call.arguments), 16):
            self._emit("response.mcp_call_arguments.delta", delta=call.arguments[offset:offset + 16], **ids)
        self._emit("response.mcp_call_arguments.done", arguments=call.arguments, **ids)
        self._items[item_id]["item"] = {**item, "arguments": call.arguments}
        self._emit("response.mcp_call.in_progress", item_id=item_id, output_index=0)
        response.task = self._tasks.spawn(self._mcp_call(response, call), f"mcp-call-{response_id}")

    async def _mcp_call(self, response: Response, call: McpCall) -> None:
        assert self._mcp is not None
        output, error = await self._mcp.call(call)
        if self.active is not response or response.cancelling:
            return
        self._emit("response.mcp_call.failed" if error else "response.mcp_call.completed",
                   item_id=response.item_id, output_index=0)
        item = {**self._items[response.item_id]["item"], "status": "failed" if error else "completed",
                "output": output, "error": {"type": "mcp_error", "message": error} if error else None}
        self._items[response.item_id]["item"] = item
        # The reply that follows (the client's response.create) speaks the result.
        self._conversation.reply_to = ("tool", [output if output is not None else f"the tool failed: {error}"])
        self._emit("response.output_item.done", response_id=response.id, output_index=0, item=item)
        self._end(response, "completed", None, [item])

    def _finish_mcp(self, response: Response, status: str, reason: str | None, details: dict | None = None) -> None:
        item = {**self._items[response.item_id]["item"], "status": "incomplete"}
        self._items[response.item_id]["item"] = item
        self._emit("response.output_item.done", response_id=response.id, output_index=0, item=item)
        self._end(response, status, details or {"type": "cancelled", "reason": reason}, [item], reason)

