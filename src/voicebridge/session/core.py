"""One browser tab's session: its frames in, its lifecycle, and what it owns.

The tab's socket (runtime.TabConnection) calls `on_frame` and `on_closed`; `Bridge` calls `start`,
`stop`, `drain` and `close`. Everything runs on the bridge's event loop.

Resume (issue 12): a socket whose first word is `session.resume` with a valid token hands its frames
to the parked session that token names (`_target`), whose TabLink is re-pointed at this socket. A frame
or a close from a socket the session has moved on from is ignored.
"""

from __future__ import annotations

import asyncio
import logging
import secrets

from .. import protocol
from ..identity import UserKey
from ..logs import event
from ..protocol import Approval, Audio, ErrorCode, Playback, ProtocolError, Resume, Start, Stop, Text
from ..tasks import TaskOwner
from .host import SessionHost
from .run import Run
from .stats import SessionStats
from .supervisor import Lifecycle, Supervisor
from .tab import TabChannel, TabLink

log = logging.getLogger("voicebridge.session")

# After the run has ended, what is left (a truncate waiting for a report) needs no longer than this.
TASKS_END_S = 1.0


class BridgeSession:
    def __init__(self, channel: TabChannel, host: SessionHost, user: UserKey | None = None):
        self.id = secrets.token_hex(6)
        self.user = user or UserKey("address", "unknown")  # whom per-user limits count this session for
        self._channel = channel  # this object's own socket
        self._target: BridgeSession = self  # whose conversation this socket carries (another's after a resume)
        self.tab = TabLink(channel, self.id)
        self.tasks = TaskOwner(f"session-{self.id}")
        self.stats = SessionStats()
        self._host = host
        self._told: set[ErrorCode] = set()  # notices a tab gets once, not once per frame

        def new_run() -> Run:
            options = host.options
            return Run(
                session_id=self.id,
                tab=self.tab,
                tasks=self.tasks,
                stats=self.stats,
                record_transcripts=options.record_transcripts,
                history_items=options.history_items,
                on_ready=self._ready,
                toolbox=options.toolbox,
                limits=options.limits,
                user=self.user.hashed,
                initiative=options.initiative,
                model=options.model,
                approval_s=options.approval_s,
                approval_arguments=options.approval_arguments,
                tokens_used=host.tokens_used,
            )

        self.supervisor = Supervisor(
            session_id=self.id,
            tab=self.tab,
            tasks=self.tasks,
            host=host,
            new_run=new_run,
            stats=self.stats,
            run_ended=self._run_ended,
            owner=self,
        )

    @property
    def no_upstream(self) -> asyncio.Event:
        """Set while this tab has no upstream session open (after a resume: the session it carries)."""
        return self._target.supervisor.no_upstream

    @property
    def run(self) -> Run:
        return self.supervisor.run

    # --- the tab's socket (runtime.TabHandler) ---------------------------------------------------

    def on_frame(self, frame: str | bytes) -> None:
        self._target.handle(self._channel, frame)

    def on_closed(self) -> None:
        target = self._target
        if target is not self:
            self._host.forget(self)
        target.channel_closed(self._channel)

    def handle(self, channel: TabChannel, frame: str | bytes) -> None:
        if channel is not self.tab.channel:
            return  # a socket this conversation has moved on from
        try:
            message = protocol.parse(frame)
        except ProtocolError as exc:
            self.stats.bad_frames += 1
            if self.stats.bad_frames == 1:
                log.info("event=tab.bad_frame session=%s code=%s", self.id, exc.code)
            self.tab.send(protocol.error(exc.code, exc.message))
            return
        if isinstance(message, Audio):
            self._audio(message)
        elif isinstance(message, Playback):
            self.run.playback(message)
        elif isinstance(message, Start):
            self.supervisor.start(message.history)
        elif isinstance(message, Stop):
            self.supervisor.stop("tab_stop")
        elif isinstance(message, Resume):
            self._resume(message.token)
        elif isinstance(message, Text):
            self._text(message)
        elif isinstance(message, Approval):
            self._approval(message)

    def channel_closed(self, channel: TabChannel) -> None:
        if channel is not self.tab.channel:
            return
        self.tab.gone()
        # Parked for a resume only when the network took the tab away; one the server cut off is done.
        refused = getattr(channel, "refused", False)
        if self.supervisor.lifecycle is Lifecycle.RUNNING and not refused and self._host.resumes.park(self):
            self.supervisor.park()
            return
        self.supervisor.tab_closed()
        self._host.forget(self)

    # --- continuity (issue 12) -------------------------------------------------------------------

    def _ready(self) -> None:
        """Ready on a fresh connection: the tab gets a token to resume this conversation with."""
        if not self.tab.open:
            return  # parked: the token the tab holds must stay the valid one
        token = self._host.resumes.issue(self)
        if token is not None:
            self.tab.send(protocol.resume_token(token))

    def _resume(self, token: str) -> None:
        if self._target is not self or self.supervisor.lifecycle is not Lifecycle.IDLE:
            self.tab.send(protocol.error(ErrorCode.BAD_MESSAGE, "session.resume must be the first message on a new connection."))
            return
        # A signed-in user's session resumes for that user only (an address may change with the network);
        # refused, the token stays valid for its owner.
        parked = self._host.resumes.claim(token, lambda s: not s.user.signed_in or s.user == self.user)
        sibling = self._host.resumes.sibling_slot(token) if parked is None else None
        if sibling is not None and self._host.hand_over(self._channel, sibling, [protocol.resume(token)], self.user):
            self.tab.gone()  # the socket lives in the sibling worker that holds the conversation now
            self._host.forget(self)
            return
        if parked is None or parked.supervisor.lifecycle not in (Lifecycle.RUNNING, Lifecycle.PARKED):
            self.tab.send(protocol.error(
                ErrorCode.RESUME_EXPIRED,
                "That session can no longer be resumed here; start a new session (send the conversation as history).",
            ))
            return
        self._target = parked
        self.tab.gone()  # this object's own link stays silent: the parked session talks on this socket now
        self._host.forget(self)
        parked.carry_on(self._channel)

    def carry_on(self, channel: TabChannel) -> None:
        """Carry on this conversation over `channel`: a fresh token, then the current state."""
        self.tab.repoint(channel)
        self.supervisor.resumed()
        event("tab.resumed", self.id)
        self._ready()
        self.tab.send(protocol.state(self.run.status.state))
        self.run.approvals.show_again()

    def _run_ended(self) -> None:
        """A run is over: there is no upstream left to resume; a session without a tab is gone for good."""
        self._host.resumes.revoke(self)
        self._host.ended(self)
        if self.supervisor.lifecycle is Lifecycle.CLOSED:
            self._host.forget(self)

    def expire(self) -> None:
        """Nobody resumed this parked session within the window: close its upstream."""
        self.supervisor.stop("resume_expired")

    def _text(self, message: Text) -> None:
        run = self.run
        if run.accepts_audio():
            run.text(message)
        else:  # unlike audio, a typed turn is deliberate: every lost one is answered
            run.status.error(ErrorCode.NOT_STARTED, "The session is not ready for typed text yet; wait for it to be ready.")

    def _approval(self, message: Approval) -> None:
        if not self.run.approvals.answer(message.id, message.approve):
            self.tab.send(protocol.error(
                ErrorCode.BAD_MESSAGE, f"No approval request {message.id[:64]!r} is waiting (it may have timed out)."
            ))

    def _audio(self, message: Audio) -> None:
        run = self.run
        if run.accepts_audio():
            run.audio(message)
            return
        self.stats.dropped_up += 1
        if self.supervisor.lifecycle is Lifecycle.IDLE and ErrorCode.NOT_STARTED not in self._told:
            self._told.add(ErrorCode.NOT_STARTED)
            run.status.error(ErrorCode.NOT_STARTED, "Audio arrived before the session was started; send session.start first.")

    # --- what the bridge asks ---------------------------------------------------------------------

    def drain(self, reconnect_within_s: int = 0) -> None:
        """The process is going away: tell the tab to reconnect elsewhere, spread over
        `reconnect_within_s` so the quota takes every tab (issue 23), end the run, close the tab."""
        self.tab.send(protocol.reconnecting(reconnect_within_s))
        self.supervisor.stop("drain")
        reason = f"service restart; reconnect within {reconnect_within_s} s" if reconnect_within_s else "service restart"
        self.tab.close(protocol.CloseCode.SERVICE_RESTART, reason)

    async def close(self, timeout: float) -> bool:
        """Stop, let the run close its upstream, then end (bounded) whatever task of this session is left."""
        self.supervisor.stop("shutdown")
        try:
            async with asyncio.timeout(timeout):
                await self.no_upstream.wait()
        except TimeoutError:
            pass
        return await self.tasks.close(TASKS_END_S)
