"""The session's side of the tab's socket: what it tells the tab, and the tab-visible state."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Protocol

from .. import protocol
from ..logs import event
from ..protocol import ErrorCode, State, WarningCode
from ..telemetry import SessionTelemetry
from .machine import StateMachine

log = logging.getLogger("voicebridge.session")


class TabChannel(Protocol):
    """The tab's socket as the session uses it (runtime.TabConnection); loop-thread only."""

    def send(self, text: str) -> None: ...

    def close(self, code: int = 1000, reason: str = "") -> None: ...


class TabLink:
    """Frames to one tab. Once the tab is closed (by either side) nothing more is sent: a session's
    cleanup runs after the close frame, and telling a closed tab anything must never fail it."""

    def __init__(self, channel: TabChannel, session_id: str):
        self._channel = channel
        self._session_id = session_id
        self.open = True

    def send(self, text: str) -> None:
        if not self.open:
            return
        try:
            self._channel.send(text)
        except Exception as exc:  # the socket is closing under us: the tab is gone for this session
            self.open = False
            log.info("event=tab.send_refused session=%s detail=%s", self._session_id, exc)

    def close(self, code: int, reason: str) -> None:
        if self.open:
            self.open = False
            self._channel.close(code, reason)

    def gone(self) -> None:
        self.open = False

    @property
    def channel(self) -> TabChannel:
        return self._channel

    def repoint(self, channel: TabChannel) -> None:
        """A resumed session's frames go to its new socket; a socket it leaves behind (one that went
        quiet without closing) is closed, so one conversation never talks to two sockets."""
        old, self._channel = self._channel, channel
        if self.open:
            try:
                old.close(1000, "resumed on another connection")
            except Exception as exc:
                log.info("event=tab.close_failed session=%s detail=%s", self._session_id, exc)
        self.open = True


class TabStatus:
    """One run's tab-visible state machine, its error reports, and telling the tab about both."""

    def __init__(
        self,
        session_id: str,
        tab: TabLink,
        telemetry: SessionTelemetry,
        *,
        on_change: Callable[[State], None] = lambda state: None,
    ):
        self._session_id = session_id
        self._tab = tab
        self._telemetry = telemetry
        self.machine = StateMachine()
        self.on_change = on_change  # every new state (the run's initiative times silences by it)

    @property
    def state(self) -> State:
        return self.machine.state

    def show(self, new: State | None) -> None:
        if new is not None:
            self._tab.send(protocol.state(new))
            self.on_change(new)

    def error(self, code: ErrorCode, message: str, **extra: object) -> None:
        self._telemetry.error(code)
        self._tab.send(protocol.error(code, message, **extra))

    def waiting(self, seconds: float) -> None:
        """The connection waits its turn in the service's quota (pacer.py): the tab stays connecting."""
        if seconds >= 1.0:
            n = math.ceil(seconds)
            self._tab.send(protocol.warning(
                WarningCode.UPSTREAM_BUSY,
                f"Every line to the voice service is busy; waiting for a free one (about {n} s).",
                n,
            ))

    def fail(self, code: ErrorCode, message: str, **extra: object) -> None:
        event("session.error", self._session_id, code=code)
        self.error(code, message, **extra)
        self.show(self.machine.failed())
