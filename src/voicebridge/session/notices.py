"""What Voice Live tells a session besides errors: `warning` and `rate_limits.updated` (issue 19).

A `warning` ([SDK] ServerEventWarning: "informational and the session will continue normally") is logged
at WARNING with its code, param and message, counted (`voicebridge.upstream.warnings` by code, and in the
session's `session.closed` line), and changes nothing else. `rate_limits.updated` (the Realtime API's
event Voice Live follows: "emitted at the beginning of a Response", `rate_limits: [{name: tokens |
requests, limit, remaining, reset_seconds}]`) comes with every reply, so it is not logged each time: the
last figures per name are kept on the session's stats (its `session.closed` line carries them), the first
report is logged at INFO, every report at DEBUG, and tokens running out (remaining 0) once at WARNING,
until they are available again.
"""

from __future__ import annotations

import logging
import re

from ..telemetry import SessionTelemetry
from .stats import SessionStats

log = logging.getLogger("voicebridge.session")

MAX_NAMES = 4  # the service names two (tokens, requests); a few more are kept, never an unbounded set
_NAME = re.compile(r"[a-z][a-z_]{0,31}")
_MESSAGE_CHARS = 300


def _number(value: object) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0 else None


class ServiceNotices:
    def __init__(self, session_id: str, stats: SessionStats, telemetry: SessionTelemetry):
        self._id = session_id
        self._stats = stats
        self._telemetry = telemetry
        self._reported = False  # the first rate_limits.updated was logged at INFO
        self._exhausted = False  # tokens at 0 was logged, and they have not come back since

    def warning(self, event: dict) -> None:
        details = event.get("warning") if isinstance(event.get("warning"), dict) else {}
        code = details.get("code") if isinstance(details.get("code"), str) else None
        param = details.get("param") if isinstance(details.get("param"), str) else None
        message = str(details.get("message") or "")[:_MESSAGE_CHARS]
        self._stats.warnings += 1
        self._telemetry.upstream_warning(code or "unknown")
        log.warning("event=upstream.warning session=%s code=%s param=%s message=%s", self._id, code, param, message)

    def rate_limits(self, event: dict) -> None:
        limits = event.get("rate_limits")
        if not isinstance(limits, list):
            return
        kept = self._stats.rate_limits
        for limit in limits[:MAX_NAMES * 2]:
            name = limit.get("name") if isinstance(limit, dict) else None
            remaining = _number(limit.get("remaining")) if isinstance(limit, dict) else None
            if not isinstance(name, str) or not _NAME.fullmatch(name) or remaining is None:
                continue
            if name not in kept and len(kept) >= MAX_NAMES:
                continue
            kept[name] = {"remaining": remaining, "limit": _number(limit.get("limit")),
                          "reset_seconds": _number(limit.get("reset_seconds"))}
        if not kept:
            return
        summary = " ".join(f"{name}_remaining={v['remaining']} {name}_limit={v['limit']}" for name, v in kept.items())
        log.log(logging.DEBUG if self._reported else logging.INFO, "event=upstream.rate_limits session=%s %s",
                self._id, summary)
        self._reported = True
        tokens = kept.get("tokens")
        if tokens is None:
            return
        if tokens["remaining"] == 0 and not self._exhausted:
            self._exhausted = True
            log.warning("event=upstream.tokens_exhausted session=%s limit=%s reset_seconds=%s", self._id,
                        tokens["limit"], tokens["reset_seconds"])
        elif tokens["remaining"] > 0:
            self._exhausted = False
