"""MCP servers in an emulated session, played for real: their tools listed from the server, calls made to it.

Like the service, the emulator lists each MCP server's tools once the session declares it
(`mcp_list_tools.in_progress`, the `mcp_list_tools` item, then `.completed`, or `.failed`), keeping only
`allowed_tools`. It has no model to decide when to use one, so it is told (McpScript, as CallScript is for
functions): a queued call, or typed text naming a listed tool. A call that `require_approval` says needs
approval becomes an `mcp_approval_request` item, and runs only after an `mcp_approval_response` with
`approve: true` (responses.py); the call itself goes to the real server (mcpclient.py).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from ..tasks import TaskOwner
from . import mcpclient
from .records import EmulatorHost, SessionRecord, new_id

Emit = Callable[..., None]
LIST_TIMEOUT_S = 10.0
CALL_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class McpCall:
    server: str  # the server's label
    name: str
    arguments: str  # JSON text


class McpScript:
    """MCP calls the emulator's next responses make, queued by tests or POST /emulator/mcp-call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queued: list[tuple[str | None, McpCall]] = []

    def queue(self, server: str, name: str, arguments: object = "{}", session_id: str | None = None) -> None:
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        with self._lock:
            self._queued.append((session_id, McpCall(server, name, text)))

    async def http_queue(self, request: web.Request) -> web.Response:
        """POST /emulator/mcp-call {"server", "name", "arguments"?, "session_id"?}."""
        try:
            body = await request.json()
            if not isinstance(body.get("server"), str) or not isinstance(body.get("name"), str):
                raise ValueError("server and name are required")
            self.queue(body["server"], body["name"], body.get("arguments", "{}"), body.get("session_id"))
        except (ValueError, AttributeError) as exc:
            raise web.HTTPBadRequest(text=f"expected {{server, name, arguments}}: {exc}") from None
        return web.json_response({"queued": 1})

    def next_for(self, record: SessionRecord, listed: dict[str, list[str]], typed_text: str | None) -> McpCall | None:
        """The MCP call a response to a user turn makes, if any: only a listed tool of a declared server."""
        if not listed:
            return None
        with self._lock:
            for index, (target, call) in enumerate(self._queued):
                if target in (None, record.id) and call.name in listed.get(call.server, ()):
                    del self._queued[index]
                    return call
        if typed_text:
            words = _words(typed_text)
            for server, tools in listed.items():
                for tool in tools:
                    if words & _words(tool.replace("_", " ")):
                        return McpCall(server, tool, "{}")
        return None


class McpServers:
    """The MCP servers one emulated session declared, and the tools listed from each."""

    def __init__(self, emit: Emit, host: EmulatorHost, record: SessionRecord, *, tasks: TaskOwner,
                 items: dict[str, dict], last_item: Callable[[], str | None]):
        self._emit = emit
        self._host = host
        self._record = record
        self._tasks = tasks
        self._items = items  # the conversation's items: a listing is one of them
        self._last_item = last_item
        self._entries: dict[str, dict] = {}  # label -> the session's tool entry
        self._tools: dict[str, list[str]] = {}  # label -> names listed (only once listing succeeded)

    def configured(self, tools: object) -> None:
        """session.update declared these tools: list the MCP servers that are new or changed."""
        entries = {t["server_label"]: t for t in tools or [] if isinstance(t, dict) and t.get("type") == "mcp"} \
            if isinstance(tools, list) else {}
        for label in list(self._entries):
            if label not in entries:
                del self._entries[label]
                self._tools.pop(label, None)
        for label, entry in entries.items():
            if self._entries.get(label) != entry:
                self._entries[label] = entry
                self._tools.pop(label, None)
                self._tasks.spawn(self._list(label, entry), f"mcp-list-{label}")

    def listed(self) -> dict[str, list[str]]:
        return {label: list(tools) for label, tools in self._tools.items()}

    def entry(self, label: str) -> dict | None:
        return self._entries.get(label)

    def needs_approval(self, label: str, tool: str) -> bool:
        """The entry's require_approval: "always" (also when absent, the service's default), "never", or per tool."""
        policy = (self._entries.get(label) or {}).get("require_approval")
        if policy == "never":
            return False
        if isinstance(policy, dict):
            return tool not in (policy.get("never") or [])
        return True

    def headers(self, label: str) -> dict[str, str]:
        entry = self._entries.get(label) or {}
        headers = dict(entry.get("headers") or {})
        if entry.get("authorization"):
            headers["Authorization"] = f"Bearer {entry['authorization']}"
        return headers

    async def call(self, call: McpCall) -> tuple[str | None, str | None]:
        entry = self._entries.get(call.server)
        if entry is None:
            return None, f"the session no longer declares the MCP server '{call.server}'"
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError:
            return None, "the call's arguments are not JSON"
        output, error = await mcpclient.call_tool(entry["server_url"], self.headers(call.server), call.name,
                                                  arguments if isinstance(arguments, dict) else {}, CALL_TIMEOUT_S)
        self._note(call.server, {"called": call.name, "error": error})
        return output, error

    async def _list(self, label: str, entry: dict) -> None:
        item_id = new_id("item")
        self._emit("mcp_list_tools.in_progress", item_id=item_id)
        try:
            tools = await mcpclient.list_tools(entry["server_url"], self.headers(label), LIST_TIMEOUT_S)
        except mcpclient.McpError as exc:
            self._note(label, {"error": str(exc)})
            self._emit("mcp_list_tools.failed", item_id=item_id)
            return
        allowed = entry.get("allowed_tools")
        if isinstance(allowed, list):
            tools = [t for t in tools if t["name"] in allowed]
        if self._entries.get(label) is not entry:
            return  # declared differently (or not at all) while listing: that listing runs instead
        self._tools[label] = [t["name"] for t in tools]
        self._note(label, {"tools": self._tools[label]})
        item = {"id": item_id, "object": "realtime.item", "type": "mcp_list_tools", "server_label": label,
                "tools": tools}
        previous = self._last_item()
        self._items[item_id] = {"item": item, "audio_bytes": 0}
        self._emit("conversation.item.created", previous_item_id=previous, item=item)
        self._emit("mcp_list_tools.completed", item_id=item_id)

    def _note(self, label: str, what: dict) -> None:
        with self._host.registry.changing(self._record) as rec:
            notes = rec.mcp.setdefault(label, [])
            if len(notes) < self._host.config.record_max_events:
                notes.append(what)


def _words(text: str) -> set[str]:
    return {w for w in "".join(c if c.isalnum() else " " for c in text.lower()).split() if len(w) > 3}
