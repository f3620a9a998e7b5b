"""What one run may cost (issue 13): its length, its idle time, and how fast its audio goes up.

Every Voice Live minute is billed, and a script can stream audio much faster than a microphone. A run
gets a `RunLimits` at its start: the time limit (with a warning a minute before) and the idle limit are
loop timers, cancelled when the run ends, so nothing outlives it; the audio rate is a token bucket
consulted for every uplink chunk. Per-user admission is the bridge's (Bridge.admit): it needs every
session of the process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from .. import protocol
from ..protocol import BYTES_PER_MS, ErrorCode
from ..telemetry import SessionTelemetry
from .tab import TabLink, TabStatus

# The session time limit is announced this long before it ends the session.
WARN_BEFORE_S = 60.0
# Uplink audio: a bucket of this many seconds of audio, refilled at this many seconds of audio per second.
AUDIO_ALLOWANCE_S = 2.0
AUDIO_RATE = 1.5
# The token limit is announced once this share of it is used.
WARN_AT_TOKENS = 0.8
_BYTES_PER_S = BYTES_PER_MS * 1000


@dataclass(frozen=True, slots=True)
class Limits:
    max_session_s: float = 0.0  # 0: no time limit
    idle_s: float = 0.0  # 0: no idle limit
    audio_rate: float = AUDIO_RATE  # 0: any rate
    audio_allowance_s: float = AUDIO_ALLOWANCE_S
    max_tokens: int = 0  # 0: no token limit (the tokens response.done's usage bills, across reconnects)


def _duration(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:g} minutes"
    return "1 minute" if seconds == 60 else f"{seconds:g} seconds"


class RunLimits:
    """One run's clocks. Loop-thread only; `cancel` is idempotent."""

    def __init__(self, limits: Limits, tab: TabLink, status: TabStatus, *, telemetry: SessionTelemetry):
        self._limits = limits
        self._tab = tab
        self._status = status
        self._telemetry = telemetry
        self._timers: list[asyncio.TimerHandle] = []
        self._idle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._end: Callable[[str], None] = lambda reason: None
        self._last_activity = 0.0
        self._tokens = limits.audio_allowance_s
        self._refilled: float | None = None
        self._told_rate = False
        self._tokens_used = 0
        self._told_tokens = False
        self._started = 0.0
        self.ended_by: ErrorCode | None = None

    def start(self, end: Callable[[str], None]) -> None:
        """The run began: `end(reason)` stops it when a limit is reached."""
        loop = self._loop = asyncio.get_running_loop()
        self._end = end
        now = self._last_activity = self._started = loop.time()
        limit = self._limits.max_session_s
        if limit > 0:
            warn_in = max(0.0, limit - WARN_BEFORE_S)
            self._timers.append(loop.call_at(now + warn_in, self._warn, limit - warn_in))
            self._timers.append(loop.call_at(now + limit, self._reached, ErrorCode.SESSION_TIME_LIMIT, (
                f"The session reached its time limit of {_duration(limit)}; press Start session to begin a new one."
            )))
        if self._limits.idle_s > 0:
            self._idle = loop.call_at(now + self._limits.idle_s, self._idle_check)

    def cancel(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def activity(self) -> None:
        """Speech started, or a typed text: the idle clock starts again (the timer re-arms when it fires)."""
        if self._loop is not None:
            self._last_activity = self._loop.time()

    def audio_allowed(self, nbytes: int) -> bool:
        """Whether this chunk fits the uplink's rate; the first one that does not is reported to the tab."""
        rate = self._limits.audio_rate
        if rate <= 0 or self._loop is None:
            return True
        now = self._loop.time()
        if self._refilled is not None:
            self._tokens = min(self._limits.audio_allowance_s, self._tokens + (now - self._refilled) * rate)
        self._refilled = now
        seconds = nbytes / _BYTES_PER_S
        if seconds <= self._tokens:
            self._tokens -= seconds
            return True
        if not self._told_rate:
            self._told_rate = True
            self._telemetry.limit(ErrorCode.AUDIO_RATE)
            self._status.error(ErrorCode.AUDIO_RATE, (
                f"Audio is arriving faster than real time (over {rate:g} s of audio per second); "
                "the excess is not sent to the voice service."
            ))
        return False

    def tokens(self, count: int) -> None:
        """A reply was billed `count` tokens: past the limit the run ends, with a warning once WARN_AT_TOKENS
        of it is used or the next such reply would reach it, giving the time left at the run's pace so far
        (each reply re-reads the conversation, so later replies cost more: the estimate errs on the late
        side, like the warning of the time limit)."""
        limit = self._limits.max_tokens
        if limit <= 0 or self._loop is None or self.ended_by is not None:
            return
        self._tokens_used += count
        if self._tokens_used >= limit:
            self._reached(ErrorCode.SESSION_TOKEN_LIMIT, (
                f"The session used its budget of {limit:,} tokens; press Start session to begin a new one."
            ))
        elif not self._told_tokens and (
                self._tokens_used >= WARN_AT_TOKENS * limit or self._tokens_used + count >= limit):
            # Near the budget, or the next reply (which re-reads at least this one's context) would spend it.
            self._told_tokens = True
            elapsed = max(1.0, self._loop.time() - self._started)
            seconds = max(1, round((limit - self._tokens_used) / (self._tokens_used / elapsed)))
            self._tab.send(protocol.warning(
                ErrorCode.SESSION_TOKEN_LIMIT,
                f"The session has used {self._tokens_used * 100 // limit}% of its token budget; "
                f"at this pace it ends in about {_duration(seconds)}.",
                seconds,
            ))

    # --- timers ------------------------------------------------------------------------------------

    def _warn(self, seconds: float) -> None:
        self._tab.send(protocol.warning(
            ErrorCode.SESSION_TIME_LIMIT,
            f"The session ends in {_duration(round(seconds))} (time limit).",
            round(seconds),
        ))

    def _idle_check(self) -> None:
        assert self._loop is not None
        due = self._last_activity + self._limits.idle_s
        if self._loop.time() < due:
            self._idle = self._loop.call_at(due, self._idle_check)
            return
        self._idle = None
        self._reached(ErrorCode.IDLE_TIMEOUT, (
            f"Nothing was said or typed for {_duration(self._limits.idle_s)}, so the session was ended; "
            "press Start session to begin a new one."
        ))

    def _reached(self, code: ErrorCode, message: str) -> None:
        self.cancel()
        self.ended_by = code
        self._telemetry.limit(code)
        self._status.error(code, message)
        self._end(code.value)
