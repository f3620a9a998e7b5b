"""Telemetry hooks: the bridge reports lifecycle facts here, never per audio chunk.

Instruments are created through the OpenTelemetry API. Without a configured provider they are
no-ops, so the bridge always calls them; `configure()` decides where they go (Application Insights
through azure-monitor-opentelemetry, the console, or nowhere).

Metric names are a stable contract: the Application Insights workbook in infra/ queries them.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics, trace

from . import __version__
from .settings import Settings

METER_NAME = "voicebridge"
# Health probes arrive every few seconds per instance; tracing them would drown the real requests.
UNTRACED_URLS = "healthz"

# name -> (kind, unit, description); the workbook test reads this table.
METRICS: dict[str, tuple[str, str, str]] = {
    "voicebridge.sessions.active": ("updown", "{session}", "Browser sessions with an upstream Voice Live session"),
    "voicebridge.session.duration": ("histogram", "s", "How long a session lasted"),
    # Time, by user (hashed, identity.UserKey.hashed): what the limits count. Voice Live bills tokens
    # (voicebridge.tokens), not seconds.
    "voicebridge.session.seconds": ("histogram", "s", "Seconds an upstream Voice Live session was open, by user (hashed)"),
    "voicebridge.limit.hits": ("counter", "{hit}", "Sessions refused or ended by a limit, and audio-rate hits, by code"),
    "voicebridge.turn.latency": ("histogram", "ms", "User speech stopped -> first assistant audio delta relayed"),
    "voicebridge.barge_in.count": ("counter", "{barge_in}", "User interruptions of assistant audio"),
    "voicebridge.barge_in.clear_delay": ("histogram", "ms", "speech_started received -> audio.clear sent to the tab"),
    "voicebridge.upstream.connect_time": ("histogram", "ms", "Voice Live handshake + session.updated"),
    "voicebridge.upstream.reconnects": ("counter", "{reconnect}", "Upstream reconnect attempts"),
    "voicebridge.upstream.failures": ("counter", "{failure}", "Upstream failures by reason"),
    "voicebridge.errors": ("counter", "{error}", "Errors sent to tabs, by code"),
    "voicebridge.playback.latency": ("histogram", "ms", "Browser-reported first delta received -> first sample played"),
    "voicebridge.tool.duration": ("histogram", "ms", "One function call of the agent, by tool name and outcome"),
    # What Voice Live bills: response.done's usage, by kind (TOKEN_KINDS) and model.
    "voicebridge.tokens": ("counter", "{token}", "Tokens Voice Live reported in response.done usage, by kind and model"),
    "voicebridge.reply.failures": ("counter", "{reply}", "Replies that ended failed or incomplete, by reason"),
    "voicebridge.upstream.warnings": ("counter", "{warning}", "Warning events Voice Live sent, by code"),
}
# The kinds of voicebridge.tokens: input_cached is part of input_text + input_audio (the cached share,
# billed at the lower cached rate), not in addition to them.
TOKEN_KINDS = ("input_text", "input_audio", "input_cached", "output_text", "output_audio")


def token_counts(usage: object) -> dict[str, int]:
    """response.done's usage as {kind: tokens}; {} when it carries none (or an unexpected shape)."""
    if not isinstance(usage, dict):
        return {}
    given = usage.get("input_token_details")
    inputs = given if isinstance(given, dict) else {}
    given = usage.get("output_token_details")
    outputs = given if isinstance(given, dict) else {}
    raw = {
        "input_text": inputs.get("text_tokens"),
        "input_audio": inputs.get("audio_tokens"),
        "input_cached": inputs.get("cached_tokens"),
        "output_text": outputs.get("text_tokens"),
        "output_audio": outputs.get("audio_tokens"),
    }
    return {k: int(v) for k, v in raw.items() if isinstance(v, int | float) and not isinstance(v, bool) and v > 0}


def billed_tokens(counts: dict[str, int]) -> int:
    """The tokens a reply spends of the quota: its input and output (the cached share is inside the input)."""
    return sum(tokens for kind, tokens in counts.items() if kind != "input_cached")


_mode: str | None = None


def configure(settings: Settings) -> str:
    """Install where spans, metrics and logs go, once per process; returns the mode for the startup log.

    Call it in the process that serves (the gunicorn worker): exporters run background threads,
    which do not survive a fork.
    """
    global _mode, _instruments
    if _mode is None:
        console = settings.telemetry == "console"
        if settings.telemetry == "none":
            _mode = "off"
        elif settings.appinsights_connection_string:
            _configure_azure_monitor(settings.appinsights_connection_string, console)
            _mode = "azure-monitor+console" if console else "azure-monitor"
        elif console:
            _configure_console()
            _mode = "console"
        else:
            _mode = "off"
        _instruments = None  # re-create them on the providers just installed
    return _mode


def instrument_app(app: Any) -> None:
    """Trace incoming requests (the page, /api/info, each /ws connection) when telemetry is on."""
    if _mode in (None, "off") and _tracer_provider is None:
        return
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    FlaskInstrumentor.instrument_app(
        app, excluded_urls=UNTRACED_URLS, tracer_provider=_tracer_provider, meter_provider=_meter_provider
    )


def _resource() -> Any:
    from opentelemetry.sdk.resources import Resource

    # service.name becomes cloud_RoleName in Application Insights. Each worker process exports its own
    # metrics (sessions it holds, its turns): a per-process instance id keeps their series apart.
    instance = f"{socket.gethostname()}:{os.getpid()}"
    return Resource.create(
        {"service.name": "voicebridge", "service.version": __version__, "service.instance.id": instance}
    )


def _console_parts() -> tuple[Any, Any]:
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    return BatchSpanProcessor(ConsoleSpanExporter()), PeriodicExportingMetricReader(ConsoleMetricExporter())


def _configure_azure_monitor(connection_string: str, console: bool) -> None:
    from azure.monitor.opentelemetry import configure_azure_monitor

    spans, reader = _console_parts() if console else (None, None)
    configure_azure_monitor(
        connection_string=connection_string,
        # Logs of the "voicebridge" logger tree go to App Insights, stamped with the active trace.
        logger_name="voicebridge",
        resource=_resource(),
        # A session makes a handful of spans, so keep them all: the distro's default rate-limited sampler
        # drops the first traces after start. OTEL_TRACES_SAMPLER (e.g. a fixed percentage) still wins.
        sampling_ratio=1.0,
        # app.py bound flask.Flask at import, before the distro could patch it: instrument_app() does it instead.
        instrumentation_options={"flask": {"enabled": False}},
        span_processors=[spans] if spans else [],
        metric_readers=[reader] if reader else [],
    )


def _configure_console() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    spans, reader = _console_parts()
    tracer_provider = TracerProvider(resource=_resource())
    tracer_provider.add_span_processor(spans)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader], resource=_resource()))


class _Instruments:
    def __init__(self) -> None:
        meter = metrics.get_meter(METER_NAME, meter_provider=_meter_provider)
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
        self.session_seconds = made["voicebridge.session.seconds"]
        self.limit_hits = made["voicebridge.limit.hits"]
        self.turn_latency = made["voicebridge.turn.latency"]
        self.barge_ins = made["voicebridge.barge_in.count"]
        self.clear_delay = made["voicebridge.barge_in.clear_delay"]
        self.connect_time = made["voicebridge.upstream.connect_time"]
        self.reconnects = made["voicebridge.upstream.reconnects"]
        self.failures = made["voicebridge.upstream.failures"]
        self.errors = made["voicebridge.errors"]
        self.playback_latency = made["voicebridge.playback.latency"]
        self.tool_duration = made["voicebridge.tool.duration"]
        self.tokens = made["voicebridge.tokens"]
        self.reply_failures = made["voicebridge.reply.failures"]
        self.upstream_warnings = made["voicebridge.upstream.warnings"]


_instruments: _Instruments | None = None
_meter_provider: Any = None
_tracer_provider: Any = None


def instruments() -> _Instruments:
    # Created lazily so a provider configured at startup (or by a test) is the one that records.
    global _instruments
    if _instruments is None:
        _instruments = _Instruments()
    return _instruments


def reset_instruments(meter_provider: Any = None, tracer_provider: Any = None) -> None:
    """Forget cached instruments. Tests pass their own (in-memory) providers, since OpenTelemetry lets a
    process set its global providers only once; without arguments the global ones are used."""
    global _instruments, _meter_provider, _tracer_provider
    _instruments = None
    _meter_provider = meter_provider
    _tracer_provider = tracer_provider


def tracer() -> trace.Tracer:
    return trace.get_tracer(METER_NAME, tracer_provider=_tracer_provider)


@dataclass
class SessionTelemetry:
    """Per-session hooks called from the bridge's event loop."""

    session_id: str
    record_transcripts: bool = False
    user: str = ""  # the user's pseudonym (UserKey.hashed): never the principal id or the address itself
    model: str = ""
    tokens: dict[str, int] = field(default_factory=dict)  # this session's usage so far, by kind
    _started: float = field(default_factory=time.monotonic)
    _span: trace.Span | None = None
    _turn_span: trace.Span | None = None
    _turn_started: float | None = None
    _active: bool = False

    def started(self) -> None:
        self._span = tracer().start_span("voicebridge.session", attributes={"voicebridge.session_id": self.session_id})
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

    def limit(self, code: str) -> None:
        instruments().limit_hits.add(1, {"code": str(code)})

    def turn_started(self) -> None:
        """User speech stopped: the turn's latency clock starts."""
        self._end_turn("superseded")
        self._turn_started = time.monotonic()
        ctx = trace.set_span_in_context(self._span) if self._span is not None else None
        self._turn_span = tracer().start_span(
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

    def usage(self, usage: object) -> dict[str, int]:
        """One response.done's usage: counted by kind, and added to the session's totals."""
        counts = token_counts(usage)
        for kind, tokens in counts.items():
            instruments().tokens.add(tokens, {"kind": kind, "model": self.model or "unknown"})
            self.tokens[kind] = self.tokens.get(kind, 0) + tokens
        return counts

    def reply_failed(self, reason: str) -> None:
        instruments().reply_failures.add(1, {"reason": reason})
        span = self._turn_span or self._span
        if span is not None:
            span.add_event("reply_failed", {"reason": reason})

    def upstream_warning(self, code: str) -> None:
        instruments().upstream_warnings.add(1, {"code": code})
        if self._span is not None:
            self._span.add_event("upstream.warning", {"code": code})

    def playback_latency(self, ms: float) -> None:
        instruments().playback_latency.record(ms)

    @contextmanager
    def tool_call(self, name: str) -> Iterator[ToolSpan]:
        """A span per function call (child of the session's), and its duration by name and outcome.
        Arguments and results stay out: they may be personal."""
        ctx = trace.set_span_in_context(self._span) if self._span is not None else None
        span = tracer().start_span("voicebridge.tool", context=ctx, attributes={
            "voicebridge.session_id": self.session_id, "voicebridge.tool.name": name})
        call = ToolSpan(name, span)
        try:
            yield call
        finally:
            if call.reason is None:
                call.outcome("cancelled", None)
            span.end()

    def ended(self, reason: str) -> None:
        self._end_turn("session_ended")
        if self._active:
            instruments().active.add(-1)
            seconds = time.monotonic() - self._started
            instruments().duration.record(seconds)
            instruments().session_seconds.record(seconds, {"user": self.user or "unknown"})
            self._active = False
        if self._span is not None:
            self._span.set_attribute("voicebridge.end_reason", reason)
            for kind in TOKEN_KINDS:
                self._span.set_attribute(f"voicebridge.tokens.{kind}", self.tokens.get(kind, 0))
            self._span.end()
            self._span = None

    def _end_turn(self, status: str) -> None:
        if self._turn_span is not None:
            self._turn_span.set_attribute("voicebridge.turn_status", status)
            self._turn_span.end()
            self._turn_span = None
        self._turn_started = None


class ToolSpan:
    def __init__(self, name: str, span: trace.Span):
        self._name = name
        self._span = span
        self.reason: str | None = None

    def outcome(self, reason: str, duration_ms: float | None) -> None:
        self.reason = reason
        self._span.set_attribute("voicebridge.tool.outcome", reason)
        if duration_ms is not None:
            self._span.set_attribute("voicebridge.tool.duration_ms", duration_ms)
            instruments().tool_duration.record(duration_ms, {"name": self._name, "outcome": reason})
