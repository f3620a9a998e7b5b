"""A reply that ended without being given: what `response.done` says, in words a person understands.

`response.done` carries `status` completed, cancelled, failed or incomplete. Cancelled is a barge-in
(or the bridge's own cancel) and needs no words. Failed carries `status_details.error` (throttling:
`rate_limit_exceeded`); incomplete carries `status_details.reason` (`content_filter`, which Voice Live
cannot switch off, or `max_output_tokens`). Either way the person got no reply, or (max_output_tokens)
only the start of one, so the tab gets `error` code `reply_failed` and the conversation goes on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..protocol import ErrorCode
from ..telemetry import SessionTelemetry
from .tab import TabStatus

log = logging.getLogger("voicebridge.session")

MESSAGES = {
    "rate_limit_exceeded": "Voice Live is busy right now and could not answer. Please say that again in a moment.",
    "content_filter": "The reply was stopped by the content filter. Try putting it another way.",
    "max_output_tokens": "The reply was cut short: it reached the longest reply allowed.",
}
FAILED = "Voice Live could not give that reply ({reason}). Please try again."


@dataclass(frozen=True, slots=True)
class ReplyOutcome:
    status: str  # failed or incomplete
    reason: str  # the error code or the incomplete reason; telemetry counts by it
    code: str | None  # the service's error code, when it gave one
    message: str


def failed_reply(response: dict) -> ReplyOutcome | None:
    status = response.get("status")
    if status not in ("failed", "incomplete"):
        return None
    details = response.get("status_details") if isinstance(response.get("status_details"), dict) else {}
    code = None
    if status == "failed":
        error = details.get("error") if isinstance(details.get("error"), dict) else {}
        code = error.get("code") or error.get("type")
        reason = str(code or details.get("reason") or "failed")
    else:
        reason = str(details.get("reason") or "incomplete")
    return ReplyOutcome(str(status), reason, str(code) if code else None,
                        MESSAGES.get(reason, FAILED.format(reason=reason)))


def report_failed(failure: ReplyOutcome, session_id: str, status: TabStatus, telemetry: SessionTelemetry) -> None:
    """The tab hears `reply_failed` (the session goes on); telemetry counts it by reason."""
    telemetry.reply_failed(failure.reason)
    log.warning("event=reply.failed session=%s status=%s reason=%s", session_id, failure.status, failure.reason)
    status.error(ErrorCode.REPLY_FAILED, failure.message, reason=failure.reason,
                 **({"upstream_code": failure.code} if failure.code else {}))
