"""A real conversation produces the documented metrics and spans: the real app in-process on a real
port, the real SDK, the real emulator, a tab over a real WebSocket. Telemetry goes to in-memory
providers handed to telemetry.reset_instruments(), since a process may set its global providers once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider

from support.audio import silence, speech
from support.inprocess import serving
from support.tab import Tab
from voicebridge import telemetry
from voicebridge.app import create_app
from voicebridge.settings import Settings


class EndedSpans(SpanProcessor):
    """Collects finished spans and lets a test wait for one instead of sleeping."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []
        self._cond = threading.Condition()

    def on_end(self, span: ReadableSpan) -> None:
        with self._cond:
            self.spans.append(span)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[list[ReadableSpan]], bool], timeout: float = 15.0) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: predicate(self.spans), timeout), [s.name for s in self.spans]

    def named(self, name: str) -> list[ReadableSpan]:
        with self._cond:
            return [s for s in self.spans if s.name == name]


@dataclass
class Observed:
    url: str
    spans: EndedSpans
    reader: InMemoryMetricReader
    bridge: Any

    def points(self, name: str) -> list:
        data = self.reader.get_metrics_data()
        return [
            point
            for resource in (data.resource_metrics if data else [])
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]

    def session_spans(self, session_id: str) -> list[ReadableSpan]:
        return [s for s in self.spans.spans if s.attributes.get("voicebridge.session_id") == session_id]


@pytest.fixture
def observed(emulator) -> Iterator[Observed]:
    spans, reader = EndedSpans(), InMemoryMetricReader()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(spans)
    telemetry.reset_instruments(meter_provider=MeterProvider(metric_readers=[reader]), tracer_provider=tracer_provider)
    # max_audio_rate=0: speech is streamed faster than real time (the emulator VAD runs in audio time).
    settings = Settings(endpoint=f"http://127.0.0.1:{emulator.port}", api_key="test-key", reconnect_window_s=5.0,
                        max_audio_rate=0)
    app = create_app(settings)
    telemetry.instrument_app(app)
    try:
        with serving(app) as url:
            yield Observed(url, spans, reader, app.extensions["voicebridge"])
    finally:
        telemetry.reset_instruments()


def converse(observed: Observed, speech_ms: int, barge_in: bool = False) -> str:
    """One session with one utterance, optionally talked over once its reply is playing; returns its id.

    The barge-in comes first because speech right after a finished reply can still count as one: the
    bridge allows for audio the tab may still be playing.
    """
    before, turns = len(observed.spans.named("voicebridge.session")), len(observed.spans.named("voicebridge.turn"))
    tab = Tab(observed.url)
    try:
        tab.start()
        tab.wait_state("ready")
        mark = tab.mark()
        tab.speak(silence(200) + speech(speech_ms, seed=speech_ms) + silence(900))
        if barge_in:
            first = tab.wait_for(lambda m: m["type"] == "audio", 20, mark)
            tab.wait_for(lambda m: len(tab.audio(first["item_id"])) >= 300 * 48, 10, mark)
            mark = tab.mark()
            tab.speak(speech(600, seed=99) + silence(900))
            tab.wait_for(lambda m: m["type"] == "audio.clear", 5, mark)
        tab.wait_state("ready", 20, mark)
        # The tab is ready when the reply's audio is done; the turn ends a little later, at response.done.
        observed.spans.wait_for(lambda spans: sum(s.name == "voicebridge.turn" for s in spans) >= turns + 1 + barge_in)
        tab.stop()
        tab.wait_state("stopped")
    finally:
        tab.close()
    observed.spans.wait_for(lambda spans: sum(s.name == "voicebridge.session" for s in spans) > before)
    return observed.spans.named("voicebridge.session")[-1].attributes["voicebridge.session_id"]


def total(points: list) -> float:
    return sum(getattr(p, "value", 0) for p in points)


def count(points: list) -> int:
    return sum(getattr(p, "count", 0) for p in points)


def test_a_turn_and_a_barge_in_produce_the_documented_metrics_and_spans(observed):
    session_id = converse(observed, 1500, barge_in=True)

    assert total(observed.points("voicebridge.sessions.active")) == 0, "the session is counted out again"
    assert count(observed.points("voicebridge.session.duration")) == 1
    assert count(observed.points("voicebridge.turn.latency")) == 2, "the interrupted reply and the one after it"
    assert total(observed.points("voicebridge.barge_in.count")) == 1
    assert count(observed.points("voicebridge.barge_in.clear_delay")) == 1
    connects = observed.points("voicebridge.upstream.connect_time")
    assert count(connects) == 1 and dict(connects[0].attributes) == {"reconnect": False}
    assert observed.points("voicebridge.errors") == []

    mine = observed.session_spans(session_id)
    (session,) = [s for s in mine if s.name == "voicebridge.session"]
    turns = [s for s in mine if s.name == "voicebridge.turn"]
    assert len(mine) == 1 + len(turns) and len(turns) == 2
    assert all(t.parent.span_id == session.context.span_id for t in turns)
    assert [t.attributes["voicebridge.turn_status"] for t in turns] == ["cancelled", "completed"]
    assert [e.name for t in turns for e in t.events] == ["barge_in"], "no transcript text unless turned on"
    assert session.attributes["voicebridge.end_reason"] == "stopped"
    observed.spans.wait_for(lambda spans: any(s.name == "GET /ws" for s in spans))


def test_span_count_does_not_grow_with_audio_length(observed):
    short = converse(observed, 300)
    long = converse(observed, 3000)
    assert [s.name for s in observed.session_spans(short)] == ["voicebridge.turn", "voicebridge.session"]
    assert [s.name for s in observed.session_spans(long)] == ["voicebridge.turn", "voicebridge.session"]


def test_a_drain_counts_every_session_out_and_reports_clean(observed):
    """Issue 10 (8): the drain closes each tab before its session's cleanup has run; the cleanup must
    still end the session (the active-sessions metric returns to zero) and the drain report clean."""
    tabs = [Tab(observed.url), Tab(observed.url)]
    try:
        for tab in tabs:
            tab.start()
            tab.wait_state("ready")
        assert total(observed.points("voicebridge.sessions.active")) == 2
        assert observed.bridge.drain(3.0) is True
        assert [tab.wait_closed() for tab in tabs] == [1012, 1012]
    finally:
        for tab in tabs:
            tab.close()
    assert total(observed.points("voicebridge.sessions.active")) == 0
    ended = [s.attributes["voicebridge.end_reason"] for s in observed.spans.named("voicebridge.session")]
    assert ended == ["stopped", "stopped"]


def test_the_tokens_of_every_reply_are_counted_by_kind_and_per_session(observed, emulator):
    """Issue 19 finding 8: Voice Live bills tokens; every response.done's usage is counted
    (voicebridge.tokens by kind and model) and the session span carries the session's totals."""
    session_id = converse(observed, 1500)
    (record,) = [r for r in emulator.sessions() if r.responses and r.responses[-1].get("usage")][-1:]
    usage = record.responses[-1]["usage"]
    points = observed.points("voicebridge.tokens")
    by_kind = {p.attributes["kind"]: p.value for p in points}
    assert {p.attributes["model"] for p in points} == {"gpt-realtime"}
    assert by_kind["input_audio"] == usage["input_token_details"]["audio_tokens"] > 0
    assert by_kind["output_audio"] == usage["output_token_details"]["audio_tokens"] > 0
    assert by_kind["output_text"] == usage["output_token_details"]["text_tokens"] > 0
    assert by_kind["input_text"] == usage["input_token_details"]["text_tokens"] > 0
    (session,) = [s for s in observed.session_spans(session_id) if s.name == "voicebridge.session"]
    assert session.attributes["voicebridge.tokens.output_audio"] == usage["output_token_details"]["audio_tokens"]
    assert session.attributes["voicebridge.tokens.input_cached"] == 0  # the first reply has nothing cached
