"""What the emulator knows and shows: its fault knobs and a thread-safe record of every session."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol

from .quota import QuotaMeter


def new_id(prefix: str) -> str:
    """Ids of sessions, items and responses, shaped like the service's."""
    return f"{prefix}_{secrets.token_hex(10)}"


REPLY_OUTCOMES = ("completed", "failed", "content_filter", "text_only")


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    required_key: str | None = None  # only this api-key / bearer token is accepted; None = any credential
    reject_auth: bool = False  # every handshake gets HTTP 401
    drop_after_s: float | None = None  # abort each connection this long after it opened (no close frame)
    latency_ms: float = 0  # one-way delay before every server event, order preserved
    pace: float = 1.0  # seconds of wall clock per second of reply audio; 0 = as fast as possible
    # Recording bounds keep a long-running session (`make run`, benchmarks) from growing without limit.
    record_max_audio_s: float = 120.0
    record_max_events: int = 20_000
    # While set, every response to user input is these function calls ([{"name", "arguments"}, …]);
    # the response after their outputs is an ordinary reply. One-shot calls: Emulator.calls.queue.
    function_calls: tuple[dict, ...] | None = None
    # Records of closed sessions kept for inspection (oldest dropped first); open ones are always kept.
    record_max_sessions: int = 200
    # The service's behaviour, strict by default (docs/emulator.md names each rule's source).
    # A cancelled response stays active this long, until its response.done (cancellation is asynchronous).
    cancel_latency_ms: float = 50
    # A connection lasts at most this long: session.created says when (expires_at), then it is closed.
    session_max_s: float = 3600
    # How replies end: completed; failed (rate_limit_exceeded); content_filter (incomplete); text_only
    # (a text reply without audio, as replayed history can make a realtime model answer).
    reply_outcome: str = "completed"
    # False: error events carry no event_id (the reference says "if applicable").
    error_event_ids: bool = True
    # True: every transcription of user audio fails (conversation.item.input_audio_transcription.failed).
    transcription_fails: bool = False
    # Bring-your-own-model deployments: deployment name -> the model it runs, whose rules then apply.
    deployments: dict = field(default_factory=dict)
    # The resource's quota (quota.py): new connections and billed tokens per window; 0 = unlimited.
    connects_per_window: int = 0
    tokens_per_window: int = 0
    quota_window_s: float = 60.0
    # A response that calls functions stays active this long after its last call, until its response.done.
    function_call_done_ms: float = 50
    # True: a spoken reply's item has a text part (content_index 0) before its audio part (content_index 1).
    reply_text_part: bool = False
    # Set: every response.created is followed by rate_limits.updated with these
    # [{"name": "tokens"|"requests", "limit", "remaining", "reset_seconds"}].
    rate_limits: tuple[dict, ...] | None = None
    # The service's own length of an item's audio is this much shorter than the audio it streamed (on the
    # Realtime API it is: pipecat-ai/pipecat#2106), so a truncate at all that was played is refused.
    audio_short_ms: int = 0

    def __post_init__(self):
        if self.reply_outcome not in REPLY_OUTCOMES:
            raise ValueError(f"EmulatorConfig.reply_outcome must be one of {', '.join(REPLY_OUTCOMES)}")
        for name in ("error_event_ids", "transcription_fails", "reply_text_part"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"EmulatorConfig.{name} must be true or false")
        for name in ("drop_after_s", "latency_ms", "pace", "record_max_audio_s", "record_max_events",
                     "record_max_sessions", "cancel_latency_ms", "session_max_s", "function_call_done_ms",
                     "connects_per_window", "tokens_per_window", "quota_window_s", "audio_short_ms"):
            value = getattr(self, name)
            if value is None and name == "drop_after_s":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"EmulatorConfig.{name} must be a number >= 0, got {value!r}")
        if not isinstance(self.deployments, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in self.deployments.items()):
            raise ValueError("EmulatorConfig.deployments must map deployment names to model names")
        if self.session_max_s == 0:
            raise ValueError("EmulatorConfig.session_max_s must be a number > 0")
        if self.required_key is not None and not isinstance(self.required_key, str):
            raise ValueError("EmulatorConfig.required_key must be a string or None")
        if not isinstance(self.reject_auth, bool):
            raise ValueError("EmulatorConfig.reject_auth must be true or false")
        if self.function_calls is not None:
            object.__setattr__(self, "function_calls", normalize_calls(self.function_calls))
        if self.rate_limits is not None:
            object.__setattr__(self, "rate_limits", normalize_rate_limits(self.rate_limits))

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in fields(cls)}

    def updated(self, **changes) -> EmulatorConfig:
        unknown = set(changes) - self.field_names()
        if unknown:
            raise ValueError(f"unknown emulator setting(s): {', '.join(sorted(unknown))}")
        return replace(self, **changes)


def normalize_rate_limits(limits: object) -> tuple[dict, ...]:
    """[{"name", "limit", "remaining", "reset_seconds"}, …], as rate_limits.updated carries them (the
    Realtime API's RateLimits: name "tokens" or "requests", numbers >= 0)."""
    if not isinstance(limits, list | tuple) or not limits:
        raise ValueError("EmulatorConfig.rate_limits must be a non-empty list of {name, limit, remaining, reset_seconds}")
    out = []
    for limit in limits:
        if not isinstance(limit, dict) or limit.get("name") not in ("tokens", "requests"):
            raise ValueError("each rate limit needs a \"name\": tokens or requests")
        numbers = {key: limit.get(key, 0) for key in ("limit", "remaining", "reset_seconds")}
        if any(isinstance(v, bool) or not isinstance(v, int | float) or v < 0 for v in numbers.values()):
            raise ValueError("a rate limit's limit, remaining and reset_seconds must be numbers >= 0")
        out.append({"name": limit["name"], **numbers})
    return tuple(out)


def normalize_calls(calls: object) -> tuple[dict, ...]:
    """[{"name": str, "arguments": JSON text or an object}, …] → calls with JSON-text arguments."""
    if not isinstance(calls, list | tuple) or not calls:
        raise ValueError("function calls must be a non-empty list of {name, arguments}")
    out = []
    for call in calls:
        if not isinstance(call, dict) or not isinstance(call.get("name"), str) or not call["name"]:
            raise ValueError("each function call needs a \"name\"")
        arguments = call.get("arguments", "{}")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        out.append({"name": call["name"], "arguments": arguments})
    return tuple(out)


@dataclass(slots=True)
class SessionRecord:
    id: str
    open: bool = True
    closed_by_client: bool = False
    config: dict = field(default_factory=dict)
    events_received: list[dict] = field(default_factory=list)
    audio_received: bytes = b""
    truncations: list[dict] = field(default_factory=list)
    responses: list[dict] = field(default_factory=list)
    items_received: list[dict] = field(default_factory=list)  # conversation.item.create items, as stored
    mcp: dict[str, list[dict]] = field(default_factory=dict)  # per MCP server label: listings and calls made
    model: str | None = None
    credential: str = ""  # "api-key" or "bearer": which kind the client authenticated with
    events_dropped: int = 0  # client events not recorded because record_max_events was reached
    expires_at: int = 0  # unix seconds, as session.created said


class Registry:
    """All session records behind one re-entrant Condition, notified on every change.

    Re-entrant so that a `wait_until` predicate may itself call `snapshot()`.
    """

    def __init__(self):
        self.cond = threading.Condition(threading.RLock())
        self._live: list[SessionRecord] = []
        self._audio: dict[str, bytearray] = {}
        self._cache: dict[str, tuple[int, SessionRecord]] = {}
        self._versions: dict[str, int] = {}

    def add(self, record: SessionRecord) -> None:
        with self.changing(record):
            self._live.append(record)
            self._audio[record.id] = bytearray()

    @contextmanager
    def changing(self, record: SessionRecord) -> Iterator[SessionRecord]:
        with self.cond:
            yield record
            self._versions[record.id] = self._versions.get(record.id, 0) + 1
            self.cond.notify_all()

    def closed(self, record: SessionRecord, keep: int) -> None:
        """`record` has closed: keep at most `keep` closed records, dropping the oldest."""
        with self.cond:
            closed = [r for r in self._live if not r.open]
            for old in closed[: max(0, len(closed) - keep)]:
                self._live.remove(old)
                for table in (self._audio, self._cache, self._versions):
                    table.pop(old.id, None)
            self.cond.notify_all()

    def audio_of(self, record: SessionRecord) -> memoryview:
        """The record's audio without a copy; caller holds `cond`."""
        return memoryview(self._audio[record.id])

    def live_records(self) -> list[SessionRecord]:
        """The records themselves (not copies); caller holds `cond` while reading them."""
        return list(self._live)

    def add_audio(self, record: SessionRecord, pcm: bytes, limit: int) -> None:
        """Caller holds `changing(record)`."""
        audio = self._audio[record.id]
        room = limit - len(audio)
        if room > 0:
            audio += pcm[:room]

    def snapshot(self) -> list[SessionRecord]:
        """Copies, cached per record version so repeated polling of idle sessions costs nothing."""
        with self.cond:
            out = []
            for rec in self._live:
                version = self._versions[rec.id]
                cached = self._cache.get(rec.id)
                if cached is None or cached[0] != version:
                    copy = replace(
                        rec,
                        config=dict(rec.config),
                        events_received=list(rec.events_received),
                        audio_received=bytes(self._audio[rec.id]),
                        truncations=[dict(t) for t in rec.truncations],
                        responses=[dict(r) for r in rec.responses],
                        items_received=[dict(i) for i in rec.items_received],
                    )
                    cached = self._cache[rec.id] = (version, copy)
                out.append(cached[1])
            return out

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout)


class EmulatorHost(Protocol):
    """What a session needs of the emulator that runs it: the fault knobs as they are now, and the records."""

    @property
    def config(self) -> EmulatorConfig: ...

    @property
    def registry(self) -> Registry: ...

    @property
    def calls(self) -> Any:
        """What the emulator is told its responses to user input call (calls.CallScript, its `mcp`)."""

    @property
    def quota(self) -> QuotaMeter: ...

    def function_calls_for(self, record: SessionRecord, typed_text: str | None) -> list[dict] | None:
        """The calls the next response to user input makes instead of speaking, if any."""
