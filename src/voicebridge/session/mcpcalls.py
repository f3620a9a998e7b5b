"""MCP tool calls, which Voice Live makes itself: shown in the page like function calls, then answered.

The service announces an `mcp_call` item (server label, tool name), streams its arguments, and reports
`response.mcp_call.in_progress`, then `.completed` or `.failed`, by item id. The tab hears the same
`{"type":"tool"}` messages as for a function call, with the server's label as `server` and never the
arguments or the output. A response whose output is MCP calls and no reply ends like a function-calling
one; as in the SDK's MCP sample, the client then asks for the response that speaks the result, unless the
person has started a new turn meanwhile or the service already answered in the same response.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .. import protocol
from ..logs import event as log_event
from ..protocol import ToolStatus
from .connection import UpstreamLink
from .tab import TabLink

log = logging.getLogger("voicebridge.session")

MAX_TRACKED = 64


class McpCalls:
    def __init__(self, session_id: str, upstream: UpstreamLink, tab: TabLink, *, user_speaking: Callable[[], bool]):
        self._id = session_id
        self._upstream = upstream
        self._tab = tab
        self._user_speaking = user_speaking
        self._calls: dict[str, tuple[str, str]] = {}  # item id -> (server label, tool name)
        self._finished: dict[str, ToolStatus] = {}  # item id -> the status the tab was told last
        self._responses: set[object] = set()  # responses that made MCP calls

    def reset(self) -> None:
        self._calls.clear()
        self._finished.clear()
        self._responses.clear()

    def announced(self, item: object, response_id: object = None) -> None:
        """An `mcp_call` item (response.output_item.added, conversation.item.created)."""
        if not isinstance(item, dict) or item.get("type") != "mcp_call":
            return
        item_id, server, name = item.get("id"), item.get("server_label"), item.get("name")
        if isinstance(item_id, str) and isinstance(server, str) and isinstance(name, str):
            if item_id not in self._calls:
                if len(self._calls) >= MAX_TRACKED:
                    self._calls.pop(next(iter(self._calls)))  # the oldest call is long settled
                self._calls[item_id] = (server, name)
        if response_id is not None:
            self._responses.add(response_id)

    def item_done(self, item: object, response_id: object) -> None:
        """`response.output_item.done`: an MCP call's final item says whether it failed (`error`)."""
        if not isinstance(item, dict) or item.get("type") != "mcp_call":
            return
        self.announced(item, response_id)
        item_id = item.get("id")
        if isinstance(item_id, str) and item_id not in self._finished:
            self._status(item_id, ToolStatus.FAILED if item.get("error") else ToolStatus.DONE)

    def in_progress(self, event: dict) -> None:
        self._status(event.get("item_id"), ToolStatus.RUNNING)

    def completed(self, event: dict) -> None:
        self._status(event.get("item_id"), ToolStatus.DONE)

    def failed(self, event: dict) -> None:
        self._status(event.get("item_id"), ToolStatus.FAILED)

    def asked(self, response_id: object) -> bool:
        return response_id in self._responses

    def response_done(self, response: dict, interrupted: bool) -> None:
        """The response that made MCP calls is over: ask for the reply that uses their results."""
        response_id = response.get("id")
        self._responses.discard(response_id)
        output = response.get("output") if isinstance(response.get("output"), list) else []
        answered = any(isinstance(item, dict) and item.get("type") == "message" for item in output)
        conn = self._upstream.conn
        if interrupted or answered or conn is None or self._user_speaking():
            return
        self._upstream.gate.create("mcp")

    def _status(self, item_id: object, status: ToolStatus) -> None:
        if not isinstance(item_id, str) or item_id not in self._calls:
            return
        if status is ToolStatus.RUNNING and item_id in self._finished:
            return
        if status is not ToolStatus.RUNNING:
            if self._finished.get(item_id) is not None:
                return
            self._finished[item_id] = status
            if len(self._finished) > MAX_TRACKED:
                self._finished.pop(next(iter(self._finished)))
        server, name = self._calls[item_id]
        if status is not ToolStatus.RUNNING:
            log_event("mcp.call", self._id, server=server, tool=name, outcome=status)
        self._tab.send(protocol.tool(item_id, name, status, server=server))
