"""Telemetry hooks: the bridge reports lifecycle facts here, never per audio chunk.

Instruments are created through the OpenTelemetry API. Without a configured provider they are
no-ops, so the bridge always calls them; `configure()` decides where they go (Application Insights
through azure-monitor-opentelemetry, the console, or nowhere).

Metric names are a stable contract: the Application Insights workbook in infra/ queries them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from opentelemetry import metrics, trace

METER_NAME = "voicebridge"

# name -> (kind, unit, description); the workbook test reads this table.
METRICS: dict[str, tuple[str, str, str]] = {
    "voicebridge.sessions.active": ("updown", "{session}", "Browser sessions with an upstream Voice Live session"),
    "voicebridge.session.duration": ("histogram", "s", "How long a session lasted"),
    "voicebridge.turn.latency": ("histogram", "ms", "User speech stopped -> first assistant audio delta relayed"),
    "voicebridge.barge_in.count": ("counter", "{barge_in}", "User interruptions of assistant audio"),
    "voicebridge.barge_in.clear_delay": ("histogram", "ms", "speech_started received -> audio.clear sent to the tab"),
    "voicebridge.upstream.connect_time": ("histogram", "ms", "Voice Live handshake + session.updated"),
    "voicebridge.upstream.reconnects": ("counter", "{reconnect}", "Upstream reconnect attempts"),
    "voicebridge.upstream.failures": ("counter", "{failure}", "Upstream failures by reason"),
    "voicebridge.errors": ("counter", "{error}", "Errors sent to tabs, by code"),
    "voicebridge.playback.latency": ("histogram", "ms", "Browser-reported first delta received -> first sample played"),
}


class _Instruments:
    def __init__(self) -> None:
        meter = metrics.get_meter(METER_NAME)
        made = {}
        for name, (kind, unit, description) in METRICS.items():
            if kind == "updown":
                made[name] = meter.create_up_down_counter(name, unit=unit, description=description)
            elif kind == "counter":
                made[name] = meter.create_counter(name, unit=unit, description=description)
            else:
                made[name] = meter.create_histogram(name, unit=unit, description=description)
        self.active = made["voicebridge.sessions.active"]
        self.duration = made["voicebridge.session.duration"]
        self.turn_latency = made["voicebridge.turn.latency"]
        self.barge_ins = made["voicebridge.barge_in.count"]
        self.clear_delay = made["voicebridge.barge_in.clear_delay"]
        self.connect_time = made["voicebridge.upstream.connect_time"]
        self.reconnects = made["voicebridge.upstream.reconnects"]
        self.failures = made["voicebridge.upstream.failures"]
        self.errors = made["voicebridge.errors"]
        self.playback_latency = made["voicebridge.playback.latency"]


_instruments: _Instruments | None = None


def instruments() -> _Instruments:
    # Created lazily so a provider configured at startup (or by a test) is the one that records.
    global _instruments
    if _instruments is None:
        _instruments = _Instruments()
    return _instruments


def reset_instruments() -> None:
    """Forget cached instruments (tests install a fresh MeterProvider)."""
    global _instruments
    _instruments = None


@dataclass
class SessionTelemetry:
    """Per-session hooks called from the bridge's event loop."""

    session_id: str
    record_transcripts: bool = False
    _started: float = field(default_factory=time.monotonic)
    _span: trace.Span | None = None
    _turn_span: trace.Span | None = None
    _turn_started: float | None = None
    _active: bool = False

    def started(self) -> None:
        tracer = trace.get_tracer(METER_NAME)
        self._span = tracer.start_span("voicebridge.session", attributes={"voicebridge.session_id": self.session_id})
        instruments().active.add(1)
        self._active = True

    def connected(self, connect_ms: float, reconnect: bool = False) -> None:
        instruments().connect_time.record(connect_ms, {"reconnect": reconnect})
        if self._span is not None:
            self._span.add_event("upstream.ready", {"connect_ms": connect_ms, "reconnect": reconnect})

    def reconnecting(self, reason: str) -> None:
        instruments().reconnects.add(1, {"reason": reason})
        if self._span is not None:
            self._span.add_event("upstream.reconnecting", {"reason": reason})

    def failure(self, reason: str) -> None:
        instruments().failures.add(1, {"reason": reason})

    def error(self, code: str) -> None:
        instruments().errors.add(1, {"code": code})

    def turn_started(self) -> None:
        """User speech stopped: the turn's latency clock starts."""
        self._end_turn("superseded")
        self._turn_started = time.monotonic()
        tracer = trace.get_tracer(METER_NAME)
        ctx = trace.set_span_in_context(self._span) if self._span is not None else None
        self._turn_span = tracer.start_span(
            "voicebridge.turn", context=ctx, attributes={"voicebridge.session_id": self.session_id}
        )

    def first_audio(self) -> None:
        if self._turn_started is None:
            return
        latency_ms = (time.monotonic() - self._turn_started) * 1000.0
        instruments().turn_latency.record(latency_ms)
        if self._turn_span is not None:
            self._turn_span.set_attribute("voicebridge.turn_latency_ms", latency_ms)
        self._turn_started = None

    def transcript(self, role: str, text: str) -> None:
        if self.record_transcripts and self._turn_span is not None:
            self._turn_span.add_event("transcript", {"role": role, "text": text})

    def turn_ended(self, status: str) -> None:
        self._end_turn(status)

    def barge_in(self, clear_delay_ms: float) -> None:
        instruments().barge_ins.add(1)
        instruments().clear_delay.record(clear_delay_ms)
        span = self._turn_span or self._span
        if span is not None:
            span.add_event("barge_in", {"clear_delay_ms": clear_delay_ms})

    def playback_latency(self, ms: float) -> None:
        instruments().playback_latency.record(ms)

    def ended(self, reason: str) -> None:
        self._end_turn("session_ended")
        if self._active:
            instruments().active.add(-1)
            instruments().duration.record(time.monotonic() - self._started)
            self._active = False
        if self._span is not None:
            self._span.set_attribute("voicebridge.end_reason", reason)
            self._span.end()
            self._span = None

    def _end_turn(self, status: str) -> None:
        if self._turn_span is not None:
            self._turn_span.set_attribute("voicebridge.turn_status", status)
            self._turn_span.end()
            self._turn_span = None
        self._turn_started = None
