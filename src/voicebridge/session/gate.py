"""One active response per upstream connection, and what an upstream error means (issue 19).

Voice Live (like the Realtime API it follows) allows one active response per session: a response is
active from `response.created` until its `response.done`, also after `response.cancel`, which is
asynchronous. A `response.create` sent before that is refused with
`conversation_already_has_active_response`. So every response the bridge asks for goes through this gate:
sent at once when nothing is active, else held until the active response's `response.done` (cancelled
or not); one held request answers everything added meanwhile, so at most one is held.

Errors are matched to the event that provoked them by `event_id` when the service names it, and by code
or parameter otherwise (`event_id` is only there "if applicable"). Only the expected refusals are benign:
a cancel that found nothing to cancel, a create that met an active response (it is sent again after that
response). Every other error is reported, whatever sent the event; a refused truncate is logged, not shown.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from .ids import internal_id

log = logging.getLogger("voicebridge.session")

ACTIVE_RESPONSE = "conversation_already_has_active_response"
CANCEL_NOT_ACTIVE = "response_cancel_not_active"
# (kind of the event we sent, code) pairs that are expected and change nothing for the person.
BENIGN = frozenset((("cancel", CANCEL_NOT_ACTIVE), ("create", ACTIVE_RESPONSE), ("line", ACTIVE_RESPONSE)))
TRUNCATE_PARAMS = frozenset(("audio_end_ms", "content_index", "item_id"))  # what our truncate alone names
# [SDK] ResponseCreateParams.cancel_previous "Defaults to true": said explicitly, so a create that meets a
# response the service started itself (server VAD) is refused (and retried, or dropped for a line) rather
# than cancelling the answer to what the person just said.
CREATE_PARAMS = {"cancel_previous": False}
SENT_REMEMBERED = 64  # event ids kept for matching errors; the service answers within moments


@dataclass(frozen=True, slots=True)
class Verdict:
    """What an error event means: which of our events it refers to (if known) and whether it is benign."""

    kind: str | None  # cancel, create, truncate, text, tool, replay, session_update, or None (unknown)
    code: str
    benign: bool


class ResponseGate:
    def __init__(self, session_id: str, send: Callable[[dict, str], None]):
        self._id = session_id
        self._send = send  # UpstreamLink.send_soon: in order with every other side send
        self.active: str | None = None  # the response upstream holds active (created, not done)
        self._requested: str | None = None  # event id of a sent create whose response has not been created
        self._held: str | None = None  # why a create is waiting for the active response's done
        self._sent: OrderedDict[str, str] = OrderedDict()  # event id -> kind, for matching errors

    def reset(self) -> None:
        """A new upstream connection: nothing is active there."""
        self.active = self._requested = self._held = None
        self._sent.clear()

    @property
    def busy(self) -> bool:
        return self.active is not None or self._requested is not None

    def sent(self, event: dict, kind: str) -> dict:
        """Note an event we send (its id will name it in an error); returns it."""
        event_id = event.setdefault("event_id", internal_id(kind))
        self._sent[event_id] = kind
        while len(self._sent) > SENT_REMEMBERED:
            self._sent.popitem(last=False)
        return event

    def create(self, reason: str) -> None:
        """Ask for a response: now if nothing is active, else once the active one is done."""
        if self.busy:
            if self._held is None:
                log.info("event=response.held session=%s reason=%s active=%s", self._id, reason, self.active)
            self._held = reason
            return
        self._send_create(reason)

    def say(self, response: dict | None, kind: str) -> bool:
        """A line the agent says on its own (session/initiative.py: greeting, filler, re-prompt), with its
        own `response` parameters. Sent only while nothing is active or asked for, and never held: by the
        time the active response is done it would be said at the wrong moment. Returns whether it went."""
        if self.busy:
            return False
        event = {"type": "response.create", "event_id": internal_id(kind),
                 "response": {**(response or {}), **CREATE_PARAMS}}
        self._requested = self.sent(event, "line")["event_id"]
        self._send(event, f"line-{kind}")
        return True

    def cancel_held(self) -> None:
        """The held request is answered otherwise (the user's own turn will get the answer)."""
        self._held = None

    def _send_create(self, reason: str) -> None:
        event = self.sent({"type": "response.create", "event_id": internal_id(f"{reason}-reply"),
                           "response": dict(CREATE_PARAMS)}, "create")
        self._requested = event["event_id"]
        self._send(event, f"create-{reason}")

    def created(self, response_id: object) -> None:
        """`response.created`: ours, or one the service made itself (server VAD after speech)."""
        ours = self._requested is not None
        self._requested = None
        self.active = response_id if isinstance(response_id, str) else "?"
        if not ours and self._held is not None:
            # A response the service started by itself answers everything in the conversation so far,
            # the held request's items included: asking again would answer twice.
            log.info("event=response.held_answered session=%s reason=%s", self._id, self._held)
            self._held = None

    def done(self, response_id: object) -> None:
        """`response.done`: the active response is over; a held request goes now."""
        if self.active is None or response_id == self.active or self.active == "?":
            self.active = None
        if self._held is not None and not self.busy:
            reason, self._held = self._held, None
            self._send_create(reason)

    def judge(self, error: dict) -> Verdict:
        """Which of our events an error event refers to, and whether it is one of the expected refusals."""
        code = str(error.get("code") or error.get("type") or "unknown")
        source = error.get("event_id")
        kind = self._sent.get(source) if isinstance(source, str) else None
        if kind is None and not source:
            # No event_id: only the code can say (two codes name an event kind on their own), or the
            # parameter (only a truncate carries these).
            kind = {CANCEL_NOT_ACTIVE: "cancel", ACTIVE_RESPONSE: "create"}.get(code)
            if kind is None and error.get("param") in TRUNCATE_PARAMS:
                kind = "truncate"
            if kind == "create" and self._requested is not None and self._sent.get(self._requested) == "line":
                kind = "line"  # the create in flight is a line of the agent's own
        if kind == "line":
            # Refused, whatever the reason: no response will come of it. It is not said (its moment has
            # passed); an expected race (ACTIVE_RESPONSE) is benign, anything else is reported.
            self._requested = None
        elif kind == "create" and code == ACTIVE_RESPONSE:
            # Another response got there first (server VAD, or a race with a cancel): ask again after it.
            self._requested = None
            if self._held is None:
                self._held = "retry"
        return Verdict(kind, code, (kind, code) in BENIGN)
