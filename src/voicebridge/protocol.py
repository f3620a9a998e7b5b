"""The browser contract, in one place: its vocabulary, parsing what a tab sends, building what it gets.

docs/protocol.md describes the contract for people; the enums below are the same contract for code
(tests/bridge/test_contract.py keeps the two in agreement), and the page reads them from
static/js/contract.js, which is generated from this module (`python -m voicebridge.contract`).
Everything here is pure: the event loop parses each frame as the tab's socket delivers it, and builds
the frames it sends back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum, StrEnum

# PCM16 mono at 24 kHz both ways: Voice Live's pcm16 format, relayed untouched.
SAMPLE_RATE = 24_000
BYTES_PER_MS = SAMPLE_RATE * 2 // 1000
# A frame over this size closes the socket with CloseCode.MESSAGE_TOO_BIG.
MAX_FRAME_BYTES = 1024 * 1024
# A typed turn: 1 to this many characters after trimming.
MAX_TEXT_CHARS = 4000
# The conversation a session.start may carry (issue 12): items, and UTF-8 bytes of text in all.
MAX_START_HISTORY_ITEMS = 40
MAX_START_HISTORY_BYTES = 16 * 1024


class State(StrEnum):
    """What `{"type":"state"}` reports; IDLE is only ever the page's own initial state."""

    IDLE = "idle"
    CONNECTING = "connecting"
    READY = "ready"
    LISTENING = "listening"
    PROCESSING = "processing"
    SPEAKING = "speaking"
    RECONNECTING = "reconnecting"
    STOPPED = "stopped"
    ERROR = "error"


# The states in which audio flows both ways.
ACTIVE_STATES = frozenset((State.READY, State.LISTENING, State.PROCESSING, State.SPEAKING))


class ClientType(StrEnum):
    """Browser → server message types."""

    SESSION_START = "session.start"
    AUDIO = "audio"
    PLAYBACK = "playback"
    TEXT = "text"
    SESSION_STOP = "session.stop"
    SESSION_RESUME = "session.resume"
    APPROVAL = "approval"  # the person's answer to an approval request


class ServerType(StrEnum):
    """Server → browser message types."""

    STATE = "state"
    AUDIO = "audio"
    AUDIO_CLEAR = "audio.clear"
    TRANSCRIPT = "transcript"
    TOOL = "tool"
    ERROR = "error"
    SESSION = "session"
    WARNING = "warning"
    WORD = "word"
    APPROVAL = "approval"  # the assistant asks to use an MCP tool that needs the person's approval
    APPROVAL_DONE = "approval.done"  # a request is settled (answered, timed out, interrupted, ended)


class ApprovalEnd(StrEnum):
    """Why an approval request is settled (`{"type":"approval.done"}`'s `reason`)."""

    ANSWERED = "answered"
    TIMEOUT = "timeout"  # no answer within VOICEBRIDGE_APPROVAL_SECONDS: denied, and the assistant is told
    INTERRUPTED = "interrupted"  # the person spoke or typed instead: denied
    ENDED = "ended"  # the session stopped or its upstream connection ended: the call cannot happen


# An approval request's id as the tab sends it back: the service's item id.
MAX_APPROVAL_ID_CHARS = 128


class Role(StrEnum):
    """Who said a history item (session.start's `history`) or a transcript."""

    USER = "user"
    ASSISTANT = "assistant"


class ToolStatus(StrEnum):
    """What `{"type":"tool"}` reports about one function call the agent made."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ErrorCode(StrEnum):
    BAD_JSON = "bad_json"
    BAD_MESSAGE = "bad_message"
    UNKNOWN_TYPE = "unknown_type"
    BAD_AUDIO = "bad_audio"
    NOT_STARTED = "not_started"
    UPSTREAM_AUTH = "upstream_auth"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    UPSTREAM_TIMEOUT = "upstream_timeout"
    UPSTREAM_LOST = "upstream_lost"
    UPSTREAM_ERROR = "upstream_error"
    UPSTREAM_REJECTED = "upstream_rejected"
    REPLY_FAILED = "reply_failed"
    SERVER_DRAINING = "server_draining"
    TOO_MANY_SESSIONS = "too_many_sessions"
    RESUME_EXPIRED = "resume_expired"
    TOO_MANY_SESSIONS_FOR_USER = "too_many_sessions_for_user"
    SESSION_TIME_LIMIT = "session_time_limit"
    SESSION_TOKEN_LIMIT = "session_token_limit"
    IDLE_TIMEOUT = "idle_timeout"
    AUDIO_RATE = "audio_rate"
    INTERNAL = "internal"


class WarningCode(StrEnum):
    """What `{"type":"warning"}` is about: a limit that will end the session (named like its error), or a
    wait (`upstream_busy`: the session waits its turn in the voice service's quota, still connecting)."""

    SESSION_TIME_LIMIT = "session_time_limit"
    SESSION_TOKEN_LIMIT = "session_token_limit"
    UPSTREAM_BUSY = "upstream_busy"


class Outcome(StrEnum):
    """What an error means for the tab's session (the "session" column of the docs' error table)."""

    UNAFFECTED = "unaffected"
    ENDS = "ends"
    CONTINUES = "continues"
    CLOSED = "closed"
    NOT_STARTED = "not started"


ERROR_OUTCOMES: dict[ErrorCode, Outcome] = {
    ErrorCode.BAD_JSON: Outcome.UNAFFECTED,
    ErrorCode.BAD_MESSAGE: Outcome.UNAFFECTED,
    ErrorCode.UNKNOWN_TYPE: Outcome.UNAFFECTED,
    ErrorCode.BAD_AUDIO: Outcome.UNAFFECTED,
    ErrorCode.NOT_STARTED: Outcome.UNAFFECTED,
    ErrorCode.UPSTREAM_AUTH: Outcome.ENDS,
    ErrorCode.UPSTREAM_UNAVAILABLE: Outcome.ENDS,
    ErrorCode.UPSTREAM_TIMEOUT: Outcome.ENDS,
    ErrorCode.UPSTREAM_LOST: Outcome.ENDS,
    ErrorCode.UPSTREAM_ERROR: Outcome.CONTINUES,
    ErrorCode.UPSTREAM_REJECTED: Outcome.ENDS,
    ErrorCode.REPLY_FAILED: Outcome.CONTINUES,
    ErrorCode.SERVER_DRAINING: Outcome.CLOSED,
    ErrorCode.TOO_MANY_SESSIONS: Outcome.NOT_STARTED,
    ErrorCode.RESUME_EXPIRED: Outcome.NOT_STARTED,
    ErrorCode.TOO_MANY_SESSIONS_FOR_USER: Outcome.NOT_STARTED,
    ErrorCode.SESSION_TIME_LIMIT: Outcome.ENDS,
    ErrorCode.SESSION_TOKEN_LIMIT: Outcome.ENDS,
    ErrorCode.IDLE_TIMEOUT: Outcome.ENDS,
    ErrorCode.AUDIO_RATE: Outcome.CONTINUES,
    ErrorCode.INTERNAL: Outcome.ENDS,
}
# After these the server has ended (or never started) the session: a client retrying would only repeat them.
FATAL_ERRORS = frozenset(code for code, outcome in ERROR_OUTCOMES.items() if outcome in (Outcome.ENDS, Outcome.NOT_STARTED))


class CloseCode(IntEnum):
    GOING_AWAY = 1001  # the tab held a socket without a session for too long (or went silent)
    PROTOCOL_ERROR = 1002  # a frame that breaks the WebSocket protocol; the tab's upstream ends at once
    POLICY_VIOLATION = 1008  # a ping flood
    MESSAGE_TOO_BIG = 1009  # a frame over MAX_FRAME_BYTES; nothing else is affected
    SERVICE_RESTART = 1012  # the instance is draining: reconnect, the load balancer picks a healthy one


class ProtocolError(ValueError):
    """A frame the bridge cannot accept; `code` and `message` go back to the tab verbatim."""

    def __init__(self, code: ErrorCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Turn:
    """One item of the conversation a tab hands back (session.start's `history`)."""

    role: Role
    text: str


@dataclass(frozen=True, slots=True)
class Start:
    history: tuple[Turn, ...] = ()


@dataclass(frozen=True, slots=True)
class Resume:
    token: str


@dataclass(frozen=True, slots=True)
class Stop:
    pass


@dataclass(frozen=True, slots=True)
class Audio:
    data: str  # the tab's base64, forwarded upstream untouched
    nbytes: int


@dataclass(frozen=True, slots=True)
class Playback:
    item_id: str
    played_ms: int
    latency_ms: float | None = None
    cleared: bool = False  # the tab's report of what it had played when it flushed on audio.clear


@dataclass(frozen=True, slots=True)
class Text:
    text: str  # a typed turn, trimmed


@dataclass(frozen=True, slots=True)
class Approval:
    id: str  # the approval request's id
    approve: bool


ClientMessage = Start | Stop | Audio | Playback | Resume | Text | Approval

_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="

_START = Start()
_STOP = Stop()


# How the page (JSON.stringify) and most clients write an audio message: recognised without a JSON parse.
_AUDIO_HEAD = '{"type":"audio","data":"'
_AUDIO_HEAD_LEN = len(_AUDIO_HEAD)


def parse(frame: str | bytes) -> ClientMessage:
    # Hot path (50 frames per second per tab): the canonical audio message needs no JSON parse, just a
    # check that the base64 in it holds no quote or escape — then it is exactly what json.loads would give.
    if isinstance(frame, str) and frame.startswith(_AUDIO_HEAD) and frame.endswith('"}'):
        data = frame[_AUDIO_HEAD_LEN:-2]
        if '"' not in data and "\\" not in data:
            return _audio(data)
    if isinstance(frame, bytes):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "Binary frames are not supported; send JSON text frames.")
    try:
        message = json.loads(frame)
    except (ValueError, RecursionError):  # deeply nested arrays/objects exhaust the decoder's stack
        raise ProtocolError(ErrorCode.BAD_JSON, "The frame is not valid JSON.") from None
    if not isinstance(message, dict):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "A message must be a JSON object with a \"type\".")
    kind = message.get("type")
    if kind == ClientType.AUDIO:
        return _audio(message.get("data"))
    if kind == ClientType.PLAYBACK:
        return _playback(message)
    if kind == ClientType.SESSION_START:
        return _start(message.get("history")) if "history" in message else _START
    if kind == ClientType.SESSION_RESUME:
        return _resume(message.get("resume"))
    if kind == ClientType.SESSION_STOP:
        return _STOP
    if kind == ClientType.TEXT:
        return _text(message.get("text"))
    if kind == ClientType.APPROVAL:
        return _approval(message)
    if not isinstance(kind, str):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "A message must be a JSON object with a string \"type\".")
    raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"Unknown message type {kind[:64]!r}.")


def _audio(data: object) -> Audio:
    if not isinstance(data, str) or not data:
        raise ProtocolError(ErrorCode.BAD_AUDIO, "An audio message needs \"data\": base64 PCM16 audio.")
    # Validated, not decoded: the audio goes upstream as base64 anyway (hot path, 50 times a second per
    # tab). Canonical padded base64: the alphabet only, a length that is a multiple of 4, at most two
    # '=' and only at the end — what binascii.a2b_base64(strict_mode=True) accepts, at a third of its cost.
    n = len(data)
    pad = 2 if data.endswith("==") else 1 if data[-1] == "=" else 0
    if (
        n % 4
        or not data.isascii()
        or data.encode().translate(None, _BASE64_ALPHABET)
        or data.find("=", 0, n - pad) != -1
    ):
        raise ProtocolError(ErrorCode.BAD_AUDIO, "The audio data is not valid base64.")
    nbytes = n // 4 * 3 - pad
    if nbytes % 2:
        raise ProtocolError(ErrorCode.BAD_AUDIO, "The audio data is not whole 16-bit samples.")
    return Audio(data, nbytes)


def _text(text: object) -> Text:
    trimmed = text.strip() if isinstance(text, str) else ""
    if not 1 <= len(trimmed) <= MAX_TEXT_CHARS:
        raise ProtocolError(
            ErrorCode.BAD_MESSAGE, f"A text message needs \"text\": 1 to {MAX_TEXT_CHARS} characters besides spaces."
        )
    return Text(trimmed)


def _approval(message: dict) -> Approval:
    approval_id, approve = message.get("id"), message.get("approve")
    if not isinstance(approval_id, str) or not 0 < len(approval_id) <= MAX_APPROVAL_ID_CHARS:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "An approval message needs \"id\": the id of the approval request.")
    if not isinstance(approve, bool):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "An approval message needs \"approve\": true or false.")
    return Approval(approval_id, approve)


def _start(history: object) -> Start:
    if not isinstance(history, list):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "\"history\" must be a list of {\"role\", \"text\"} items.")
    if len(history) > MAX_START_HISTORY_ITEMS:
        raise ProtocolError(
            ErrorCode.BAD_MESSAGE, f"\"history\" may carry at most {MAX_START_HISTORY_ITEMS} items; send the most recent."
        )
    turns, size = [], 0
    for item in history:
        role = item.get("role") if isinstance(item, dict) else None
        text = item.get("text") if isinstance(item, dict) else None
        if role not in (Role.USER, Role.ASSISTANT) or not isinstance(text, str):
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE, "Each history item needs \"role\" (\"user\" or \"assistant\") and a string \"text\"."
            )
        try:
            size += len(text.encode("utf-8"))
        except UnicodeEncodeError:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "A history text is not valid Unicode.") from None
        if size > MAX_START_HISTORY_BYTES:
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE, f"\"history\" may carry at most {MAX_START_HISTORY_BYTES // 1024} KiB of text in all."
            )
        if text.strip():
            turns.append(Turn(Role(role), text))
    return Start(tuple(turns))


def _resume(token: object) -> Resume:
    if not isinstance(token, str) or not 0 < len(token) <= 256:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "A session.resume message needs \"resume\": the token the server sent.")
    return Resume(token)


def _playback(message: dict) -> Playback:
    item_id = message.get("item_id")
    played = message.get("played_ms")
    if not isinstance(item_id, str) or not item_id:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "A playback message needs an \"item_id\".")
    if isinstance(played, bool) or not isinstance(played, int | float) or not 0 <= played < 86_400_000:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "\"played_ms\" must be a non-negative number of milliseconds.")
    latency = message.get("latency_ms")
    if isinstance(latency, bool) or not isinstance(latency, int | float) or not 0 <= latency < 60_000:
        latency = None
    return Playback(item_id, int(played), latency, message.get("cleared") is True)


# --- server → browser ---------------------------------------------------------------------------

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def state(value: State) -> str:
    return _dumps({"type": ServerType.STATE, "state": value})


def audio(data: str, item_id: str) -> str:
    # Hot path: base64 needs no escaping, so skip the encoder unless the service sent something odd.
    if '"' in data or "\\" in data:
        return _dumps({"type": ServerType.AUDIO, "item_id": item_id, "data": data})
    return '{"type":"audio","item_id":' + _dumps(item_id) + ',"data":"' + data + '"}'


def reconnecting(within_s: int) -> str:
    """A drain's `reconnecting`: the tab should reconnect after a random delay of up to `within_s`
    seconds, so that every tab of the instance fits the voice service's connection quota (0: at once)."""
    if within_s <= 0:
        return state(State.RECONNECTING)
    return _dumps({"type": ServerType.STATE, "state": State.RECONNECTING, "reconnect_within_s": within_s})


CLEAR = _dumps({"type": ServerType.AUDIO_CLEAR})


def transcript(role: str, item_id: str, text: str, final: bool, **extra: object) -> str:
    return _dumps({"type": ServerType.TRANSCRIPT, "role": role, "item_id": item_id, "text": text, "final": final, **extra})


def resume(token: str) -> str:
    """The tab's `session.resume` (built here only to hand it to the worker that holds the session)."""
    return _dumps({"type": ClientType.SESSION_RESUME, "resume": token})


def resume_token(token: str) -> str:
    return _dumps({"type": ServerType.SESSION, "resume": token})


def error(code: ErrorCode, message: str, **extra: object) -> str:
    return _dumps({"type": ServerType.ERROR, "code": code, "message": message, **extra})


def warning(code: WarningCode | ErrorCode, message: str, seconds: int) -> str:
    """Notice of a limit ahead (`code` is the error that will end the session in `seconds`), or of a
    wait of about `seconds` (upstream_busy)."""
    return _dumps({"type": ServerType.WARNING, "code": code, "seconds": seconds, "message": message})


def word(item_id: str, text: str, start_ms: int, end_ms: int) -> str:
    """Where one spoken word sits in an assistant item's audio (Azure voices' word timestamps), so the page
    can show the word as it plays."""
    return _dumps({"type": ServerType.WORD, "item_id": item_id, "text": text, "start_ms": start_ms, "end_ms": end_ms})


def tool(call_id: str, name: str, status: ToolStatus, label: str | None = None, server: str | None = None) -> str:
    """A function call's (or, with `server`, an MCP tool call's) progress; never its arguments or result
    (they may be personal)."""
    message = {"type": ServerType.TOOL, "call_id": call_id, "name": name, "status": status}
    if label:
        message["label"] = label
    if server:
        message["server"] = server
    return _dumps(message)


def approval(approval_id: str, server: str, tool_name: str, seconds: int, arguments: str | None = None) -> str:
    """The assistant asks to use `tool_name` on `server`; `arguments` only where the operator allows it."""
    message = {
        "type": ServerType.APPROVAL, "id": approval_id, "server": server, "tool": tool_name,
        "summary": f"The assistant wants to use {tool_name} on {server}", "seconds": seconds,
    }
    if arguments is not None:
        message["arguments"] = arguments
    return _dumps(message)


def approval_done(approval_id: str, approved: bool, reason: ApprovalEnd) -> str:
    return _dumps({"type": ServerType.APPROVAL_DONE, "id": approval_id, "approved": approved, "reason": reason})
