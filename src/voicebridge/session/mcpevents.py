"""The Voice Live events that agent mode and MCP servers follow, next to events.py's own handling of them.

UpstreamEvents runs these after its own handler for the same event type: the agent conversation a
session names, MCP calls and their progress (mcpcalls.py), approval requests (approvals.py), and a
barge-in denying what waits for an answer.
"""

from __future__ import annotations

from collections.abc import Callable

from .approvals import Approvals
from .mcpcalls import McpCalls

Handler = Callable[[dict], None]


def agent_conversation(event: dict) -> str | None:
    """The agent conversation an agent session names (AgentConfig.thread_id), if any."""
    session = event.get("session") if isinstance(event.get("session"), dict) else {}
    agent = session.get("agent") if isinstance(session.get("agent"), dict) else {}
    conversation = agent.get("thread_id") or agent.get("conversation_id") or session.get("conversation_id")
    return conversation if isinstance(conversation, str) and 0 < len(conversation) <= 256 else None


class SideEvents:
    """Handlers UpstreamEvents runs after its own, by event type; none by default."""

    def __init__(self, table: dict[str, Handler] | None = None, continues: Callable[[object], bool] | None = None):
        self._table = table or {}
        self._continues = continues

    def handle(self, event: dict) -> None:
        handler = self._table.get(event.get("type"))  # type: ignore[arg-type]
        if handler is not None:
            handler(event)

    def continues(self, response_id: object) -> bool:
        """The reply to this response follows in the next one (it made MCP calls): the turn goes on."""
        return self._continues is not None and self._continues(response_id)


def side_events(approvals: Approvals, mcp: McpCalls, on_conversation: Callable[[str], None]) -> SideEvents:
    return SideEvents(handlers(approvals, mcp, on_conversation), mcp.asked)


def handlers(approvals: Approvals, mcp: McpCalls, on_conversation: Callable[[str], None]) -> dict[str, Handler]:
    def session(event: dict) -> None:
        conversation = agent_conversation(event)
        if conversation is not None:
            on_conversation(conversation)

    def item_added(event: dict) -> None:
        mcp.announced(event.get("item"), event.get("response_id"))
        approvals.requested(event.get("item"))

    def item_done(event: dict) -> None:
        mcp.item_done(event.get("item"), event.get("response_id"))
        approvals.requested(event.get("item"))

    def item_created(event: dict) -> None:
        mcp.announced(event.get("item"))
        approvals.requested(event.get("item"))

    def response_done(event: dict) -> None:
        response = event.get("response") if isinstance(event.get("response"), dict) else {}
        if mcp.asked(response.get("id")):
            mcp.response_done(response, interrupted=response.get("status") == "cancelled")

    return {
        "session.created": session,
        "session.updated": session,
        "input_audio_buffer.speech_started": lambda event: approvals.interrupted(),  # a barge-in denies
        "response.output_item.added": item_added,
        "response.output_item.done": item_done,
        "conversation.item.created": item_created,
        "response.mcp_call.in_progress": mcp.in_progress,
        "response.mcp_call.completed": mcp.completed,
        "response.mcp_call.failed": mcp.failed,
        "response.done": response_done,
    }
