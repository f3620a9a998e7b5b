"""Which function calls the emulator's next response makes: it has no model to decide, so it is told.

Only a response that follows a user turn (speech or typed text not yet answered), in a session that
declared function tools, can be function calls: a model cannot call a tool it was not given, nor answer a
greeting's `response.create` with one. First that applies: the oldest queued list that fits, each used
once — one queued for this session (it may name any function, to script a model naming one it was not
given) or for any session, whose functions this one declared; the `function_calls` knob (every such
response while set, when the session declared those functions); or, for typed text, a declared tool one
of whose name's words (4+ letters) the text contains ("What time is it?" → get_current_time), so a person
can watch a call in `make run` without a model.
"""

from __future__ import annotations

import threading

from aiohttp import web

from .mcp import McpScript
from .records import EmulatorConfig, SessionRecord, normalize_calls


class CallScript:
    def __init__(self) -> None:
        self._lock = threading.Lock()  # queued from any thread (tests, the control endpoint)
        self._queued: list[tuple[str | None, tuple[dict, ...]]] = []  # (session id or None, calls)
        self.mcp = McpScript()  # the MCP calls it is told to make, likewise (mcp.py)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/emulator/function-call", self.http_queue)
        app.router.add_post("/emulator/mcp-call", self.mcp.http_queue)

    def queue(self, calls: list[dict], session_id: str | None = None) -> None:
        normalized = normalize_calls(calls)
        with self._lock:
            self._queued.append((session_id, normalized))

    async def http_queue(self, request: web.Request) -> web.Response:
        """POST /emulator/function-call {"name", "arguments", "session_id"?} or {"calls": [...], "session_id"?}."""
        try:
            body = await request.json() if request.can_read_body else {}
            calls = body.get("calls", [body] if "name" in body else None)
            self.queue(calls, body.get("session_id"))
        except (ValueError, AttributeError) as exc:
            raise web.HTTPBadRequest(text=f"expected {{name, arguments}} or {{calls: [...]}}: {exc}") from None
        return web.json_response({"queued": len(calls)})

    def next_for(self, record: SessionRecord, typed_text: str | None, config: EmulatorConfig) -> list[dict] | None:
        """The calls a response to a user turn makes instead of speaking, if any (the caller knows it is one)."""
        declared = declared_functions(record.config)
        if not declared:
            return None
        with self._lock:
            for index, (target, calls) in enumerate(self._queued):
                # Calls queued for this very session may name a function it did not declare: a test scripting a
                # model that names one it was not given. Calls for any session wait for one that declared them.
                if target == record.id or target is None and {c["name"] for c in calls} <= set(declared):
                    del self._queued[index]
                    return list(calls)
        if config.function_calls and {c["name"] for c in config.function_calls} <= set(declared):
            return list(config.function_calls)
        if typed_text:
            words = _words(typed_text)
            for name in declared:
                if words & _words(name.replace("_", " ")):
                    return [{"name": name, "arguments": "{}"}]
        return None


def declared_functions(session: dict) -> list[str]:
    """Names of the function tools a session declared, in order (an MCP server is not a function)."""
    return [tool["name"] for tool in session.get("tools") or []
            if isinstance(tool, dict) and tool.get("type") == "function" and isinstance(tool.get("name"), str)]


def _words(text: str) -> set[str]:
    return {w for w in "".join(c if c.isalnum() else " " for c in text.lower()).split() if len(w) > 3}
