"""A real MCP server for the tests: the `mcp` SDK's FastMCP over streamable HTTP on 127.0.0.1.

Its tools record every call they get, so a test can tell a call that really reached the server from one
that was only reported; `require_header` makes it refuse requests without that header value (as a server
behind a token would).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import uvicorn
from mcp.server.fastmcp import FastMCP

from support.apps import free_port


@dataclass
class McpServerProcess:
    url: str
    calls: list[tuple[str, dict]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None

    def called(self) -> list[tuple[str, dict]]:
        with self.lock:
            return list(self.calls)

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)


def start(require_header: tuple[str, str] | None = None) -> McpServerProcess:
    port = free_port()
    server = FastMCP("voicebridge-test", host="127.0.0.1", port=port, log_level="WARNING")
    handle = McpServerProcess(url=f"http://127.0.0.1:{port}/mcp")

    @server.tool()
    def lookup_order(order_id: str) -> str:
        """Where an order is."""
        with handle.lock:
            handle.calls.append(("lookup_order", {"order_id": order_id}))
        return f"Order {order_id} has shipped."

    @server.tool()
    def delete_order(order_id: str) -> str:
        """Delete an order (needs approval)."""
        with handle.lock:
            handle.calls.append(("delete_order", {"order_id": order_id}))
        return f"Order {order_id} is deleted."

    @server.tool()
    def secret_tool() -> str:
        """A tool the configuration does not allow."""
        with handle.lock:
            handle.calls.append(("secret_tool", {}))
        return "nobody should see this"

    app = server.streamable_http_app()
    if require_header is not None:
        name, value = require_header
        inner = app

        async def guarded(scope, receive, send):
            if scope["type"] == "http":
                headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
                if headers.get(name.lower()) != value:
                    await send({"type": "http.response.start", "status": 401, "headers": []})
                    await send({"type": "http.response.body", "body": b"unauthorized"})
                    return
            await inner(scope, receive, send)

        app = guarded  # type: ignore[assignment]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    handle.server = uvicorn.Server(config)
    handle.thread = threading.Thread(target=handle.server.run, name="mcp-server", daemon=True)
    handle.thread.start()
    deadline = time.monotonic() + 20
    while not handle.server.started:
        if time.monotonic() > deadline or not handle.thread.is_alive():
            raise RuntimeError("the test MCP server did not start")
        handle.thread.join(0.02)  # waits on the server's thread itself, which also notices an early exit
    return handle
