"""The emulator's MCP client: what Voice Live does with a configured MCP server, over streamable HTTP.

The Model Context Protocol's streamable HTTP transport (spec 2025-06-18): every JSON-RPC message is a
POST to the server's one endpoint, accepting `application/json` and `text/event-stream`; the answer is
a JSON body or a server-sent-events stream carrying it. `initialize` may hand out an `Mcp-Session-Id`,
which every later request carries; the `notifications/initialized` notification completes the
handshake. Each operation here is a short session of its own (initialize, the request, DELETE), as the
emulator has no long-lived server connection to keep. Written on aiohttp (already a dependency) rather
than the `mcp` SDK, which the tests use for the real server this client talks to.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

PROTOCOL_VERSION = "2025-06-18"
MAX_BODY_BYTES = 1024 * 1024
CLIENT_INFO = {"name": "voicebridge-emulator", "version": "1"}


class McpError(Exception):
    """The server could not be reached, or answered with an error; the message says which."""


class McpSession:
    def __init__(self, http: aiohttp.ClientSession, url: str, headers: dict[str, str]):
        self._http = http
        self._url = url
        self._headers = {**headers, "Accept": "application/json, text/event-stream",
                         "Content-Type": "application/json"}
        self._ids = iter(range(1, 1_000_000))

    async def open(self) -> None:
        result = await self.request("initialize", {
            "protocolVersion": PROTOCOL_VERSION, "capabilities": {}, "clientInfo": CLIENT_INFO,
        })
        version = result.get("protocolVersion") if isinstance(result, dict) else None
        self._headers["MCP-Protocol-Version"] = version if isinstance(version, str) else PROTOCOL_VERSION
        await self._post({"jsonrpc": "2.0", "method": "notifications/initialized"}, None)

    async def close(self) -> None:
        if "Mcp-Session-Id" in self._headers:
            try:
                async with self._http.delete(self._url, headers=self._headers):
                    pass
            except aiohttp.ClientError:
                pass  # the server forgets idle sessions on its own

    async def request(self, method: str, params: dict) -> Any:
        request_id = next(self._ids)
        message = await self._post({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params},
                                   request_id)
        if "error" in message:
            error = message["error"] if isinstance(message["error"], dict) else {}
            raise McpError(f"{method}: {error.get('message', 'error')} (code {error.get('code')})")
        return message.get("result")

    async def _post(self, body: dict, request_id: int | None) -> dict:
        try:
            async with self._http.post(self._url, json=body, headers=self._headers) as response:
                session_id = response.headers.get("Mcp-Session-Id")
                if session_id and "Mcp-Session-Id" not in self._headers:
                    self._headers["Mcp-Session-Id"] = session_id
                if request_id is None:
                    if response.status >= 400:
                        raise McpError(f"{body['method']}: HTTP {response.status}")
                    return {}
                if response.status >= 400:
                    raise McpError(f"{body['method']}: HTTP {response.status}")
                raw = await response.content.read(MAX_BODY_BYTES + 1)
                if len(raw) > MAX_BODY_BYTES:
                    raise McpError(f"{body['method']}: the answer is larger than {MAX_BODY_BYTES} bytes")
                kind = response.headers.get("Content-Type", "")
        except aiohttp.ClientError as exc:
            raise McpError(f"cannot reach {self._url}: {exc}") from None
        text = raw.decode("utf-8", errors="replace")
        messages = _events(text) if kind.startswith("text/event-stream") else [_json(text)]
        for message in messages:
            if isinstance(message, dict) and message.get("id") == request_id:
                return message
        raise McpError(f"{body['method']}: no answer in the server's response")


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise McpError("the server's answer is not JSON") from None


def _events(text: str) -> list[Any]:
    """The JSON messages of a server-sent-events body (one per event, its `data:` lines joined)."""
    messages, data = [], []
    for line in text.replace("\r\n", "\n").split("\n") + [""]:
        if line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
        elif not line and data:
            messages.append(_json("\n".join(data)))
            data = []
    return messages


async def _session(url: str, headers: dict[str, str], timeout_s: float, work) -> Any:
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        session = McpSession(http, url, headers)
        try:
            await session.open()
            return await work(session)
        except TimeoutError:
            raise McpError(f"{url} did not answer within {timeout_s:g} s") from None
        finally:
            await session.close()


async def list_tools(url: str, headers: dict[str, str], timeout_s: float = 10.0) -> list[dict]:
    """The server's tools, as MCPTool shapes: name, description, input_schema, annotations."""
    async def work(session: McpSession) -> list[dict]:
        tools: list[dict] = []
        cursor = None
        for _page in range(20):
            result = await session.request("tools/list", {"cursor": cursor} if cursor else {})
            for tool in (result or {}).get("tools") or []:
                if isinstance(tool, dict) and isinstance(tool.get("name"), str):
                    tools.append({"name": tool["name"], "description": tool.get("description"),
                                  "input_schema": tool.get("inputSchema") or {"type": "object"},
                                  "annotations": tool.get("annotations")})
            cursor = (result or {}).get("nextCursor")
            if not cursor:
                break
        return tools

    return await _session(url, headers, timeout_s, work)


async def call_tool(url: str, headers: dict[str, str], name: str, arguments: dict,
                    timeout_s: float = 30.0) -> tuple[str | None, str | None]:
    """(output, error): the text of the tool's result, or why it failed (a tool error is an error too)."""
    async def work(session: McpSession) -> tuple[str | None, str | None]:
        result = await session.request("tools/call", {"name": name, "arguments": arguments}) or {}
        parts = [c.get("text", "") for c in result.get("content") or [] if isinstance(c, dict) and c.get("type") == "text"]
        text = "\n".join(parts)
        if result.get("structuredContent") is not None and not text:
            text = json.dumps(result["structuredContent"])
        return (None, text or "the tool reported an error") if result.get("isError") else (text, None)

    try:
        return await _session(url, headers, timeout_s, work)
    except McpError as exc:
        return None, str(exc)
