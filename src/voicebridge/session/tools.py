"""Function calls the agent makes: run each tool, hand the model its output, then ask for the reply.

A response that calls functions ends with `response.done` like any other. Each call runs as an owned
task (a slow tool never holds the event loop; a stop cancels it). Its output goes back as a
`function_call_output` item once the asking response is done (as Microsoft's sample does: the service
may refuse an item added to a response still in progress), and after every output exactly one
`response.create`, through the response gate, lets the model answer with them — unless the user has
started to speak meanwhile, whose own turn then gets the answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from azure.ai.voicelive.aio import VoiceLiveConnection

from .. import protocol
from ..logs import event as log_event
from ..protocol import ToolStatus
from ..tasks import TaskOwner
from ..telemetry import SessionTelemetry
from ..tools import Toolbox
from .connection import UpstreamLink, quiet_send
from .tab import TabLink

log = logging.getLogger("voicebridge.session")


class ToolCalls:
    def __init__(
        self,
        session_id: str,
        toolbox: Toolbox,
        upstream: UpstreamLink,
        *,
        tab: TabLink,
        tasks: TaskOwner,
        telemetry: SessionTelemetry,
        user_speaking: Callable[[], bool],
        on_started: Callable[[], None] = lambda: None,
        on_all_done: Callable[[], None] = lambda: None,
    ):
        self._id = session_id
        self._toolbox = toolbox
        self._upstream = upstream
        self._tab = tab
        self._tasks = tasks
        self._telemetry = telemetry
        self._user_speaking = user_speaking
        self._on_started = on_started  # a call began (the filler's clock starts)
        self._on_all_done = on_all_done  # no call is running any more
        self._in_flight = 0  # calls of this connection whose tool has not answered yet
        self._calls: dict[object, list[asyncio.Task[dict | None]]] = {}  # asking response id -> its calls
        self._names: dict[str, str] = {}  # call id -> function name, from response.output_item.added
        self._replying = 0  # _reply tasks under way

    def reset(self) -> None:
        """A new upstream connection: the calls of the old one answer nobody (their tasks end by themselves)."""
        self._calls.clear()
        self._names.clear()
        self._in_flight = 0

    def announced(self, item: object) -> None:
        """`response.output_item.added`: a function call item names its function before its arguments
        are done (an implementation may leave the name out of arguments.done)."""
        if isinstance(item, dict) and item.get("type") == "function_call":
            call_id, name = item.get("call_id"), item.get("name")
            if isinstance(call_id, str) and isinstance(name, str) and len(self._names) < 64:
                self._names[call_id] = name

    @property
    def running(self) -> bool:
        """Calls of a response are under way (their outputs and the reply have not gone yet)."""
        return bool(self._calls) or self._replying > 0

    def asked(self, response_id: object) -> bool:
        return response_id in self._calls

    def requested(self, event: dict) -> None:
        """`response.function_call_arguments.done`: the model has written one call in full."""
        call_id, name, arguments = event.get("call_id"), event.get("name"), event.get("arguments")
        if not isinstance(name, str) and isinstance(call_id, str):
            name = self._names.get(call_id)
        if isinstance(call_id, str):
            self._names.pop(call_id, None)
        conn = self._upstream.conn
        if not isinstance(call_id, str) or not isinstance(name, str) or conn is None:
            log.warning("event=tool.unusable_call session=%s", self._id)
            return
        arguments = arguments if isinstance(arguments, str) else "{}"
        self._tab.send(protocol.tool(call_id, name, ToolStatus.RUNNING, self._label(name)))
        self._in_flight += 1
        self._on_started()
        task = self._tasks.spawn(self._call(conn, call_id, name, arguments), f"tool:{name}")
        self._calls.setdefault(event.get("response_id"), []).append(task)

    def response_done(self, response_id: object, interrupted: bool) -> None:
        calls = self._calls.pop(response_id, None)
        conn = self._upstream.conn
        if calls and conn is not None:
            self._replying += 1
            self._tasks.spawn(self._reply(conn, calls, interrupted), "tool-reply")

    async def _call(self, conn: VoiceLiveConnection, call_id: str, name: str, arguments: str) -> dict | None:
        """Run one call; returns its function_call_output item (sent once the asking response is done)."""
        started = time.monotonic()
        try:
            with self._telemetry.tool_call(name) as span:
                outcome = await self._toolbox.run(name, arguments)
                span.outcome(outcome.reason, (time.monotonic() - started) * 1000.0)
        finally:
            if self._upstream.conn is conn:
                self._in_flight = max(0, self._in_flight - 1)
                if not self._in_flight:
                    self._on_all_done()
        log_event("tool.call", self._id, tool=name, outcome=outcome.reason)
        status = ToolStatus.DONE if outcome.status == "done" else ToolStatus.FAILED
        self._tab.send(protocol.tool(call_id, name, status, self._label(name)))
        return {"type": "function_call_output", "call_id": call_id, "output": outcome.output}

    async def _reply(self, conn: VoiceLiveConnection, calls: list[asyncio.Task[dict | None]], interrupted: bool) -> None:
        try:
            await self._answer(conn, calls, interrupted)
        finally:
            self._replying -= 1

    async def _answer(self, conn: VoiceLiveConnection, calls: list[asyncio.Task[dict | None]], interrupted: bool) -> None:
        await asyncio.wait(calls)  # each call's own task reports its failure; an output is sent either way
        if self._upstream.conn is not conn:
            return  # the conversation those calls belong to is gone with its connection
        gate = self._upstream.gate
        for call in calls:
            output = None if call.cancelled() or call.exception() is not None else call.result()
            if output is not None:
                event = gate.sent({"type": "conversation.item.create", "item": output}, "tool")
                await quiet_send(conn, event)
        if interrupted or self._user_speaking():
            return
        gate.create("tool")

    def _label(self, name: str) -> str | None:
        tool = self._toolbox.tools.get(name)
        return tool.label if tool is not None else None
