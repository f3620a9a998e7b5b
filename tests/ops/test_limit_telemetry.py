"""The bill in telemetry (issue 13): `voicebridge.session.seconds` per ended session by hashed user, limit
hits by code, and the principal id nowhere in clear — not in metrics, spans or logs. The real app
in-process on a real port (so its logs and in-memory telemetry providers are visible), the real SDK and
emulator, tabs over real WebSockets."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from support.inprocess import serving
from support.tab import Tab
from voicebridge import telemetry
from voicebridge.app import create_app
from voicebridge.identity import UserKey
from voicebridge.settings import Settings

PRINCIPAL = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"


@pytest.fixture
def served(emulator) -> Iterator[tuple[str, InMemoryMetricReader, InMemorySpanExporter]]:
    reader, spans = InMemoryMetricReader(), InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    telemetry.reset_instruments(meter_provider=MeterProvider(metric_readers=[reader]), tracer_provider=tracer_provider)
    settings = Settings(endpoint=f"http://127.0.0.1:{emulator.port}", api_key="test-key", trust_easy_auth=True,
                        max_sessions_per_user=1, max_audio_rate=0)
    app = create_app(settings)
    try:
        with serving(app) as url:
            yield url, reader, spans
    finally:
        telemetry.reset_instruments()


def points(reader: InMemoryMetricReader, name: str) -> list:
    data = reader.get_metrics_data()
    return [p for rm in (data.resource_metrics if data else []) for sm in rm.scope_metrics for m in sm.metrics
            if m.name == name for p in m.data.data_points]


def test_billable_seconds_by_hashed_user_and_limit_hits_never_the_principal(served, caplog):
    url, reader, spans = served
    caplog.set_level(logging.INFO, logger="voicebridge")
    signed_in = {"X-MS-CLIENT-PRINCIPAL-ID": PRINCIPAL, "X-MS-CLIENT-PRINCIPAL-NAME": "ann@example.com"}
    first, second = Tab(url, signed_in), Tab(url, signed_in)
    try:
        first.start()
        first.wait_state("ready")
        second.start()
        assert second.wait_for(lambda m: m["type"] == "error")["code"] == "too_many_sessions_for_user"
        first.stop()
        first.wait_state("stopped")
    finally:
        first.close()
        second.close()

    hashed = UserKey("principal", PRINCIPAL).hashed
    (billed,) = points(reader, "voicebridge.session.seconds")
    assert dict(billed.attributes) == {"user": hashed} and billed.count == 1 and billed.sum > 0
    hits = points(reader, "voicebridge.limit.hits")
    assert [(dict(p.attributes), p.value) for p in hits] == [({"code": "too_many_sessions_for_user"}, 1)]

    data = reader.get_metrics_data()
    exported = data.to_json() + "".join(s.to_json() for s in spans.get_finished_spans())
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert hashed in logged, "the logs name the user by the hash"
    for text in (exported, logged):
        assert PRINCIPAL not in text and "ann@example.com" not in text
