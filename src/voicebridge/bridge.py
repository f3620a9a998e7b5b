"""Every session of this process: admission, the tab registry, drain and shutdown.

A session (session/) relays one tab's audio both ways, turns upstream events into tab states and
transcripts, and implements barge-in; it knows the process only through what `attach` hands it: how to
open an upstream connection, whether a new session is admitted, and whom to tell when its tab is gone.
Everything here runs on the bridge's event loop, except the blocking entry points `drain` and
`shutdown`, which reach it through the loop thread (runtime.py).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass

from .balance import UserBoard
from .credentials import VaultSecrets
from .endpoints import EndpointPool
from .handoff import Handoff
from .identity import UserKey
from .logs import event
from .protocol import CloseCode, ErrorCode
from .resume import ResumeTokens
from .runtime import LoopThread, TabConnection
from .session import BridgeSession, Refusal, SessionHost, SessionOptions
from .session.initiative import InitiativeOptions
from .session.limits import Limits
from .session.supervisor import Lifecycle
from .settings import Settings, tool_filler_by_service
from .tasks import TaskOwner
from .tools import Toolbox
from .upstream import McpDeclarations, session_config

log = logging.getLogger("voicebridge.session")

# How long a session whose tab is gone may take to close its upstream and end its tasks.
SESSION_CLOSE_S = 5.0


@dataclass(frozen=True, slots=True)
class Siblings:
    """This worker's place among sibling worker processes (server.py makes it in each worker after the
    fork): its slot, the instance-wide per-user counts, and the door a sibling hands it tabs through."""

    slot: int
    users: UserBoard | None
    handoff: Handoff


class Bridge:
    """Every session of this process, the event loop they run on, and how to reach Voice Live."""

    def __init__(
        self,
        settings: Settings,
        runtime: LoopThread,
        connector: EndpointPool,
        *,
        emulator: object | None = None,
        siblings: Siblings | None = None,
    ):
        self.settings = settings
        self.runtime = runtime
        self.connector = connector
        self.emulator = emulator
        self.toolbox = Toolbox.load(settings.tools, settings.tool_timeout_s)
        self.mcp = None
        servers = settings.mcp_config.servers
        if servers:
            vault = any(s.header_secrets for s in servers)
            self.mcp = McpDeclarations(servers, VaultSecrets(settings) if vault else None)
        options = SessionOptions(
            session_config=session_config(settings, self.toolbox.definitions()),
            connect_timeout_s=settings.connect_timeout_s,
            reconnect_window_s=settings.reconnect_window_s,
            record_transcripts=settings.telemetry_transcripts,
            history_items=settings.history_items,
            toolbox=self.toolbox,
            limits=Limits(
                settings.max_session_s, settings.idle_s, settings.max_audio_rate, max_tokens=settings.max_session_tokens
            ),
            initiative=InitiativeOptions(
                greeting=settings.greeting,
                tool_filler_ms=settings.tool_filler_ms,
                tool_filler=settings.tool_filler,
                filler_by_service=tool_filler_by_service(settings),
                reprompt_s=settings.reprompt_s,
                reprompt=settings.reprompt,
                idle_s=settings.idle_s,
            ),
            model=settings.model,
            mcp_entries=self.mcp.entries if self.mcp is not None else None,
            approval_s=settings.mcp_config.approval_s,
            approval_arguments=settings.mcp_config.show_arguments,
        )
        # With sibling workers: the instance-wide per-user counts, this worker's row in them, the handoff.
        self.siblings = siblings
        self.user_board = siblings.users if siblings is not None else None
        self.slot = siblings.slot if siblings is not None else -1
        self.resumes = ResumeTokens(settings.resume_window_s, slot=self.slot)
        self._host = SessionHost(
            open_upstream=connector.open,
            admit=self.admit,
            forget=self.forget,
            options=options,
            resumes=self.resumes,
            hand_over=self.hand_over,
            ended=self.publish_user,
            tokens_used=connector.tokens_used,
        )
        self.sessions: dict[str, BridgeSession] = {}
        self.draining = False
        # A session whose tab is gone may still be closing its upstream: each is seen to its end here.
        self._closing = TaskOwner("closing")

    @property
    def uses_emulator(self) -> bool:
        return self.emulator is not None

    def upstream_sessions(self) -> int:
        """Open upstream sessions, parked ones (waiting for their tab to resume) included."""
        return sum(1 for s in self.sessions.values() if not s.no_upstream.is_set())

    def user_sessions(self, user: UserKey) -> int:
        """Upstream sessions open for this user, parked ones included (each is billed until it closes);
        one already told to close (its tab gone, or its parking given up) no longer counts."""
        return sum(1 for s in self.sessions.values() if s.user == user and _holds_upstream(s))

    def admit(self, session: BridgeSession) -> Refusal | None:
        """Whether this process takes one more upstream session, for this session's user, now."""
        if self.draining:
            return Refusal(
                ErrorCode.SERVER_DRAINING,
                "The server is restarting; reconnecting will reach a fresh instance.",
                close=CloseCode.SERVICE_RESTART,
                close_reason="service restart",
            )
        if self.upstream_sessions() >= self.settings.max_sessions:
            return Refusal(ErrorCode.TOO_MANY_SESSIONS, "The server is at capacity; please try again in a moment.")
        user = session.user
        limit = self.settings.max_sessions_per_user if user.signed_in else self.settings.max_sessions_per_address
        board = self.user_board
        here = self.user_sessions(user)
        elsewhere = board.elsewhere(self.slot, _bucket(board, user)) if board is not None else 0
        if limit and here + elsewhere >= limit:
            event("session.refused", session.id, reason="too_many_sessions_for_user", user=user.hashed)
            who = "You already have" if user.signed_in else "Your network address already has"
            return Refusal(
                ErrorCode.TOO_MANY_SESSIONS_FOR_USER,
                f"{who} {limit} session{'s' if limit != 1 else ''} open here; stop one (or close its tab) "
                "before starting another.",
                stopped=True,
            )
        if board is not None:
            self._publish(board, _bucket(board, user), extra=1)  # this one is about to start
        return None

    def publish_user(self, session: BridgeSession) -> None:
        """This worker's open sessions of the session's user, for the siblings' per-user limit."""
        board = self.user_board
        if board is not None:
            self._publish(board, _bucket(board, session.user))

    def _publish(self, board: UserBoard, bucket: int, extra: int = 0) -> None:
        # The whole bucket: users whose keys share it count together (their sum is what siblings read).
        # One pass over the sessions (a start or an end, never per chunk), the buckets remembered.
        count = sum(1 for s in self.sessions.values() if _holds_upstream(s) and _bucket(board, s.user) == bucket)
        board.publish(self.slot, bucket, count + extra)

    def attach(self, channel: TabConnection, user: UserKey | None = None) -> BridgeSession:
        """A tab's socket arrived on the loop (runtime.adopt, or a sibling's handoff: front.Front.take_handed);
        `user` is whom it counts for."""
        session = BridgeSession(channel, self._host, user)
        self.sessions[session.id] = session
        self.connector.publish_tabs(len(self.sessions))  # the instance's tabs, for a drain's reconnect hint
        event("tab.open", session.id, user=session.user.hashed)
        return session

    def hand_over(self, channel: TabConnection, slot: int, frames: list[str], user: UserKey) -> bool:
        """Give a tab to the sibling worker in `slot` (handoff.py): its session lives there."""
        if self.siblings is None:
            return False
        handoff = self.siblings.handoff
        message = {"frames": frames, "user": [user.kind, user.value, user.name]}
        return channel.hand_over(lambda sock: handoff.send(slot, sock, message))

    def forget(self, session: BridgeSession) -> None:
        self.resumes.revoke(session)
        self.publish_user(session)  # a tab that is gone no longer counts, whenever its upstream closes
        if self.sessions.pop(session.id, None) is not None:
            self.connector.publish_tabs(len(self.sessions))
            event("tab.closed", session.id)
            self._closing.spawn(session.close(SESSION_CLOSE_S), f"close-{session.id}")

    def drain(self, timeout: float) -> bool:
        """Stop taking sessions, tell every tab to reconnect elsewhere, close every upstream. Blocking."""
        return self.runtime.run(self._drain(timeout), timeout=timeout + 1)

    async def _drain(self, timeout: float) -> bool:
        self.draining = True
        sessions = list(self.sessions.values())
        log.info("event=drain.start sessions=%d", len(sessions))
        within = self.connector.reconnect_within_s(len(sessions))  # the quota's time for every tab (issue 23)
        for session in sessions:
            session.drain(within)
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*(s.no_upstream.wait() for s in sessions))
            done = True
        except TimeoutError:
            done = False
        log.info("event=drain.done clean=%s", done)
        return done

    def shutdown(self, timeout: float = 2.0) -> None:
        if self.runtime.loop.is_running():
            try:
                self.runtime.run(self._close_all(timeout), timeout=timeout + 1)
            except Exception as exc:
                log.warning("event=shutdown.incomplete detail=%s", exc)
        self.runtime.stop()
        self.toolbox.close()
        stop = getattr(self.emulator, "stop", None)
        if stop is not None:
            stop()

    async def _close_all(self, timeout: float) -> None:
        try:
            await asyncio.gather(*(s.close(timeout) for s in list(self.sessions.values())))
            if not await self._closing.join(timeout):
                await self._closing.close(timeout)
        finally:
            await self.connector.close()
            if self.mcp is not None:
                await self.mcp.close()


def _holds_upstream(session: BridgeSession) -> bool:
    """Counts toward its user's sessions: an upstream open (parked included) and not told to close."""
    return not session.no_upstream.is_set() and session.supervisor.lifecycle is not Lifecycle.CLOSED


def _bucket(board: UserBoard, user: UserKey) -> int:
    return _bucket_of(board, user.kind, user.value)


@functools.lru_cache(maxsize=4096)
def _bucket_of(board: UserBoard, kind: str, value: str) -> int:
    return board.bucket(f"{kind}\0{value}")
