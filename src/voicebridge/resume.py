"""Resume tokens: which parked session a new socket may take over, and for how long (issue 12).

Each session that is ready holds at most one token: 32 random bytes (256 bits), opaque, single-use,
replaced by a fresh one at every resume. A token lives while its session runs; when the session's tab
vanishes without session.stop the session is parked and the token expires VOICEBRIDGE_RESUME_SECONDS
later, closing the upstream. A token names the slot of the worker process that issued it: a resume that
reaches a sibling worker of the same instance is handed to that worker with its socket (handoff.py). One
that reaches another instance, or a worker that no longer holds the session (restarted, replaced after a
hang), gets `resume_expired`, and the page starts a new session with the conversation as history
(docs/decisions/0010-resume-without-affinity.md). Loop-thread only.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger("voicebridge.session")


class Resumable(Protocol):
    id: str

    def expire(self) -> None: ...


class ResumeTokens:
    def __init__(self, window_s: float, slot: int = -1):
        self.window_s = window_s
        # This worker's slot when several run (bridge.Siblings), else -1: a token names it, so that a
        # sibling that receives the resume can hand the socket here (handoff.py).
        self.slot = slot
        self._owner: dict[str, Resumable] = {}  # token -> session
        self._token: dict[str, str] = {}  # session id -> its live token
        self._expiry: dict[str, asyncio.TimerHandle] = {}  # session id -> when its parked upstream closes

    def __len__(self) -> int:
        return len(self._owner)

    def issue(self, session: Resumable) -> str | None:
        if self.window_s <= 0:
            return None
        self._drop_token(session.id)
        token = secrets.token_urlsafe(32)
        if self.slot >= 0:
            token = f"{self.slot}.{token}"
        self._owner[token] = session
        self._token[session.id] = token
        return token

    def park(self, session: Resumable) -> bool:
        if self.window_s <= 0 or session.id not in self._token:
            return False
        self._cancel_expiry(session.id)
        self._expiry[session.id] = asyncio.get_running_loop().call_later(self.window_s, self._expire, session)
        return True

    def sibling_slot(self, token: str) -> int | None:
        """The slot of the sibling worker that issued `token`, when it is not this one."""
        head, dot, _ = token.partition(".")
        if not dot or not head.isdigit() or int(head) == self.slot or self.slot < 0:
            return None
        return int(head)

    def claim(self, token: str, accept: Callable[[Resumable], bool] | None = None) -> Resumable | None:
        """The session the token names, used up; None (and the token left alone) when `accept` refuses it."""
        session = self._owner.get(token)
        if session is None or (accept is not None and not accept(session)):
            return None
        del self._owner[token]
        del self._token[session.id]
        self._cancel_expiry(session.id)
        return session

    def revoke(self, session: Resumable) -> None:
        self._drop_token(session.id)
        self._cancel_expiry(session.id)

    def _expire(self, session: Resumable) -> None:
        self._expiry.pop(session.id, None)
        self._drop_token(session.id)
        log.info("event=session.resume_expired session=%s", session.id)
        session.expire()

    def _drop_token(self, session_id: str) -> None:
        token = self._token.pop(session_id, None)
        if token is not None:
            self._owner.pop(token, None)

    def _cancel_expiry(self, session_id: str) -> None:
        timer = self._expiry.pop(session_id, None)
        if timer is not None:
            timer.cancel()
