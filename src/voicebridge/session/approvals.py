"""Approval in the page: an MCP tool call the configuration says needs approval waits for the person talking.

Voice Live sends an `mcp_approval_request` item (its id, the server's label, the tool, the arguments)
and does not call the tool until the client answers with an `mcp_approval_response` item. The bridge
asks the tab (`{"type":"approval"}`), and answers upstream with what the page says. Every request is
settled exactly once, and the tab hears how (`{"type":"approval.done"}`):

- answered: the person allowed or denied it. After a denial the bridge asks for a response, so the
  assistant says it will not go ahead (after an approval the service makes the call by itself);
- timeout: no answer within VOICEBRIDGE_APPROVAL_SECONDS is a denial, and the assistant is told why in
  a system message before it answers;
- interrupted: the person spoke or typed instead (a barge-in): denied, and their new turn gets the answer;
- ended: the session stopped, or the upstream connection ended; the request died with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from azure.ai.voicelive.aio import VoiceLiveConnection

from .. import protocol
from ..logs import event as log_event
from ..protocol import ApprovalEnd
from .connection import UpstreamLink
from .tab import TabLink

log = logging.getLogger("voicebridge.session")

# Requests a connection may have waiting at once; more are denied at once (a model looping on a tool).
MAX_PENDING = 8
MAX_ARGUMENTS_CHARS = 1000
MAX_SEEN = 256  # request ids remembered per connection, to ask each only once


@dataclass(slots=True)
class Pending:
    server: str
    tool: str
    arguments: str | None  # only kept when the page may show them
    conn: VoiceLiveConnection
    timer: asyncio.TimerHandle | None = None


class Approvals:
    def __init__(
        self,
        session_id: str,
        upstream: UpstreamLink,
        tab: TabLink,
        *,
        timeout_s: float,
        show_arguments: bool = False,
        user_speaking: Callable[[], bool] = lambda: False,
    ):
        self._id = session_id
        self._upstream = upstream
        self._tab = tab
        self._timeout_s = timeout_s
        self._show_arguments = show_arguments
        self._user_speaking = user_speaking
        self._pending: dict[str, Pending] = {}
        self._seen: set[str] = set()  # the request arrives as a response output item and a conversation item

    @property
    def pending(self) -> list[str]:
        return list(self._pending)

    def requested(self, item: object) -> None:
        """An `mcp_approval_request` item (from response.output_item.* or conversation.item.created)."""
        if not isinstance(item, dict) or item.get("type") != "mcp_approval_request":
            return
        approval_id, server, tool = item.get("id"), item.get("server_label"), item.get("name")
        conn = self._upstream.conn
        if not isinstance(approval_id, str) or approval_id in self._seen or conn is None:
            return
        if len(approval_id) > protocol.MAX_APPROVAL_ID_CHARS or not isinstance(server, str) or not isinstance(tool, str):
            log.warning("event=approval.unusable_request session=%s", self._id)
            return
        if len(self._seen) >= MAX_SEEN:
            self._seen.clear()  # long settled: a duplicate of one arrives within moments of it
        self._seen.add(approval_id)
        arguments = item.get("arguments") if self._show_arguments else None
        pending = Pending(server, tool, arguments[:MAX_ARGUMENTS_CHARS] if isinstance(arguments, str) else None, conn)
        if len(self._pending) >= MAX_PENDING:
            log_event("approval.too_many", self._id, server=server, tool=tool)
            self._respond(approval_id, pending, False)
            return
        pending.timer = asyncio.get_running_loop().call_later(self._timeout_s, self._expire, approval_id)
        self._pending[approval_id] = pending
        log_event("approval.requested", self._id, server=server, tool=tool)
        self._send_request(approval_id, pending)

    def answer(self, approval_id: str, approve: bool) -> bool:
        """The page's answer; False when no such request is waiting (settled meanwhile, or never asked)."""
        pending = self._settle(approval_id)
        if pending is None:
            return False
        self._respond(approval_id, pending, approve, reply=not approve)
        self._tab.send(protocol.approval_done(approval_id, approve, ApprovalEnd.ANSWERED))
        log_event("approval.answered", self._id, server=pending.server, tool=pending.tool, approved=approve)
        return True

    def interrupted(self) -> None:
        """The person took the turn: what waits for them is denied; their new turn gets the answer."""
        for approval_id in list(self._pending):
            pending = self._settle(approval_id)
            assert pending is not None
            self._respond(approval_id, pending, False)
            self._tab.send(protocol.approval_done(approval_id, False, ApprovalEnd.INTERRUPTED))
            log_event("approval.interrupted", self._id, server=pending.server, tool=pending.tool)

    def ended(self) -> None:
        """The upstream connection is gone (a stop, a drop): its requests can never be answered."""
        for approval_id in list(self._pending):
            self._settle(approval_id)
            self._tab.send(protocol.approval_done(approval_id, False, ApprovalEnd.ENDED))
        self._seen.clear()

    def show_again(self) -> None:
        """A resumed tab: the requests still waiting, so the person can answer them there."""
        for approval_id, pending in self._pending.items():
            self._send_request(approval_id, pending)

    def _expire(self, approval_id: str) -> None:
        pending = self._settle(approval_id)
        if pending is None:
            return
        note = (
            f"The request to use {pending.tool} on {pending.server} was denied: the user did not answer it within "
            f"{self._timeout_s:g} seconds. Tell the user you did not use it, and offer to try again."
        )
        self._respond(approval_id, pending, False, reply=True, note=note)
        self._tab.send(protocol.approval_done(approval_id, False, ApprovalEnd.TIMEOUT))
        log_event("approval.timeout", self._id, server=pending.server, tool=pending.tool)

    def _settle(self, approval_id: str) -> Pending | None:
        pending = self._pending.pop(approval_id, None)
        if pending is not None and pending.timer is not None:
            pending.timer.cancel()
        return pending

    def _respond(self, approval_id: str, pending: Pending, approve: bool, reply: bool = False,
                 note: str | None = None) -> None:
        """The answer upstream; with `reply`, then (after `note`, a system message) a response, so the
        assistant speaks about the denial. In this order, on the connection that asked."""
        if self._upstream.conn is not pending.conn:
            return  # that connection's conversation is gone, and the request with it
        gate = self._upstream.gate
        item = {"type": "mcp_approval_response", "approval_request_id": approval_id, "approve": approve}
        events = [gate.sent({"type": "conversation.item.create", "item": item}, "approval")]
        if note is not None:
            message = {"type": "message", "role": "system", "content": [{"type": "input_text", "text": note}]}
            events.append(gate.sent({"type": "conversation.item.create", "item": message}, "approval"))
        self._upstream.send_soon_many(events, "approval")
        if reply and not self._user_speaking():
            gate.create("approval")  # through the gate: after the active response, if one is

    def _send_request(self, approval_id: str, pending: Pending) -> None:
        remaining = self._timeout_s
        if pending.timer is not None:
            remaining = max(0.0, pending.timer.when() - asyncio.get_running_loop().time())
        self._tab.send(protocol.approval(approval_id, pending.server, pending.tool, round(remaining), pending.arguments))
