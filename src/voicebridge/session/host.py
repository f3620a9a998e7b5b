"""All a session knows of the process that runs it: Bridge builds one `SessionHost` for every session."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from azure.ai.voicelive.aio import VoiceLiveConnection

from ..protocol import CloseCode, ErrorCode
from ..tools import Toolbox
from .initiative import InitiativeOptions
from .limits import Limits


@dataclass(frozen=True, slots=True)
class SessionOptions:
    session_config: object  # the RequestSession sent with session.update on every connection
    connect_timeout_s: float
    reconnect_window_s: float
    record_transcripts: bool = False
    history_items: int = 40  # conversation items kept to replay into a new upstream session
    toolbox: Toolbox | None = None  # the agent's function tools (VOICEBRIDGE_TOOLS)
    limits: Limits = Limits()  # each run's time, idle and audio-rate limits
    initiative: InitiativeOptions = InitiativeOptions()  # greeting, tool filler, re-prompt (issue 24)
    model: str = ""  # VOICE_LIVE_MODEL: the token counts are reported per model
    # A connection nearer than this to its expires_at is replaced between turns (issue 19, rollover.py).
    rollover_margin_s: float = 300.0
    # MCP servers' session.update entries, resolved per connection (header values are Key Vault secrets)
    mcp_entries: Callable[[], Awaitable[list[dict]]] | None = None
    approval_s: float = 30.0  # how long an MCP approval request waits for the page's answer
    approval_arguments: bool = False  # the page may show the arguments of the call it is asked about


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the process takes no new session now; sent to the tab, which is then closed if `close` says so."""

    code: ErrorCode
    message: str
    close: CloseCode | None = None
    close_reason: str = ""
    stopped: bool = False  # the tab hears state `stopped` after the error (a limit, not a passing condition)


class Resumes(Protocol):
    """The process's resume tokens (resume.ResumeTokens): which parked session a token reattaches."""

    def issue(self, session: Any) -> str | None: ...  # None: resume is off

    def park(self, session: Any) -> bool: ...  # the tab is gone: keep the session for the window?

    # single use: the session, or None (bad/used/expired, or refused by `accept`, which leaves the token valid)
    def claim(self, token: str, accept: Callable[[Any], bool] | None = None) -> Any | None: ...

    def revoke(self, session: Any) -> None: ...

    def sibling_slot(self, token: str) -> int | None: ...  # another worker process issued it


class NoResumes:
    """Resume switched off: no token is issued, a lost tab closes its upstream at once."""

    def issue(self, session: Any) -> str | None:
        return None

    def park(self, session: Any) -> bool:
        return False

    def claim(self, token: str, accept: Callable[[Any], bool] | None = None) -> Any | None:
        return None

    def revoke(self, session: Any) -> None:
        return None

    def sibling_slot(self, token: str) -> int | None:
        return None


class Opened(Protocol):
    """An upstream connection, and which endpoint of AZURE_VOICE_LIVE_ENDPOINT it spends (endpoints.Opened)."""

    conn: VoiceLiveConnection
    endpoint: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionHost:
    # (continues a live conversation?, told each expected wait in seconds, in agent mode the agent
    # conversation to continue or None) → a connection and its endpoint, after its turn in the pacer
    open_upstream: Callable[[bool, Callable[[float], None], str | None], Awaitable[Opened]]
    admit: Callable[[Any], Refusal | None]  # this session may open one more upstream now? None: yes
    forget: Callable[[Any], None]  # the session is gone for good (its tab, and any parked upstream)
    options: SessionOptions
    resumes: Resumes = NoResumes()
    # Pass the tab's socket, with frames already read from it and whom it counts for, to a sibling worker.
    hand_over: Callable[[Any, int, list[str], Any], bool] = lambda channel, slot, frames, user: False
    ended: Callable[[Any], None] = lambda session: None  # the session's upstream is closed
    tokens_used: Callable[[int, int], None] = lambda endpoint, tokens: None  # response.done's usage, per endpoint
