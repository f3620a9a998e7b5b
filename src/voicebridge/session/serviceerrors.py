"""The service's `error` events, sorted: expected (benign), bookkeeping the person never hears, a refused
configuration (the run ends), or a problem the tab is told of. The response gate (gate.py) matches each to
what we sent, by `event_id` when the service gives one and by code otherwise."""

from __future__ import annotations

import logging

from ..protocol import ErrorCode
from ..telemetry import SessionTelemetry
from .connection import UpstreamLink
from .tab import TabStatus

log = logging.getLogger("voicebridge.session")


def service_error(
    event: dict, session_id: str, *, upstream: UpstreamLink, status: TabStatus, telemetry: SessionTelemetry
) -> bool:
    """Log and report one error event; True when it refused the session configuration (the run ends)."""
    error = event.get("error") if isinstance(event.get("error"), dict) else {}
    verdict = upstream.gate.judge(error)
    message = str(error.get("message") or "no details")
    param = error.get("param") if isinstance(error.get("param"), str) else None
    if verdict.benign:
        log.info("event=upstream.benign_error session=%s code=%s kind=%s", session_id, verdict.code, verdict.kind)
        return False
    log.warning("event=upstream.error session=%s code=%s kind=%s param=%s message=%s", session_id, verdict.code,
                verdict.kind, param, message[:300])
    extra = {"upstream_code": verdict.code, **({"param": param} if param else {})}
    if verdict.kind in ("replay", "truncate"):
        # Bookkeeping of what was said and heard: logged above (replay.py counts the item as settled);
        # nothing the person hears changes, so the tab is not told.
        return False
    if verdict.kind == "session_update" or (
            verdict.kind is None and not upstream.configured and (param or "").startswith("session.")):
        telemetry.failure(ErrorCode.UPSTREAM_REJECTED)
        status.fail(ErrorCode.UPSTREAM_REJECTED, f"Voice Live refused the session configuration: {message}", **extra)
        return True
    status.error(ErrorCode.UPSTREAM_ERROR, f"Voice Live reported a problem: {message}", **extra)
    return False
