"""telemetry.configure() in each mode, each in a fresh process (telemetry_child.py): OpenTelemetry lets a
process install its global providers only once, which is also what configure() promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
INGESTION = "https://westeurope-5.in.applicationinsights.azure.com/"
IKEY = "00000000-0000-0000-0000-000000000001"
CONNECTION_STRING = f"InstrumentationKey={IKEY};IngestionEndpoint={INGESTION}"


def run_child(**env: str) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "VOICE_LIVE_", "VOICEBRIDGE_", "APPLICATIONINSIGHTS_", "OTEL_"))}
    paths = [str(HERE.parent.parent / "src"), str(HERE.parent), base.get("PYTHONPATH", "")]
    child_env = {
        **base,
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        # Never dial a real service: the app points at a closed local port and makes no upstream call here.
        "AZURE_VOICE_LIVE_ENDPOINT": "http://127.0.0.1:9",
        "AZURE_VOICE_LIVE_API_KEY": "test-key",
        # Statsbeat reports the SDK's own usage to Microsoft; it is not what these tests are about.
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
        **env,
    }
    done = subprocess.run(
        [sys.executable, str(HERE / "telemetry_child.py")], env=child_env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def line(out: str, tag: str) -> str:
    return next(text for text in out.splitlines() if text.startswith(tag + " ")).split(" ", 1)[1]


@pytest.mark.parametrize("transcripts", ["false", "true"])
def test_console_prints_spans_and_metrics(transcripts):
    out = run_child(VOICEBRIDGE_TELEMETRY="console", VOICEBRIDGE_TELEMETRY_TRANSCRIPTS=transcripts)
    assert line(out, "MODE") == "console"
    for name in ("voicebridge.session", "voicebridge.turn", "GET /api/info", "voicebridge.sessions.active", "voicebridge.turn.latency"):
        assert f'"name": "{name}"' in out
    assert '"voicebridge.session_id": "child-session"' in out
    assert '"http.route": "/healthz"' not in out, "health probes are not traced"
    assert ("secret words" in out) is (transcripts == "true")


@pytest.mark.parametrize(
    "env",
    [{}, {"VOICEBRIDGE_TELEMETRY": "none", "APPLICATIONINSIGHTS_CONNECTION_STRING": CONNECTION_STRING}],
    ids=["unset", "none-overrides-connection-string"],
)
def test_off_installs_nothing(env):
    out = run_child(**env)
    assert line(out, "MODE") == "off"
    assert line(out, "PROVIDERS") == "ProxyTracerProvider _ProxyMeterProvider"
    assert "voicebridge.session" not in out and "INGEST" not in out


@pytest.mark.parametrize("console", ["", "console"])
def test_azure_monitor_exports_to_the_connection_strings_endpoint(console):
    out = run_child(APPLICATIONINSIGHTS_CONNECTION_STRING=CONNECTION_STRING, VOICEBRIDGE_TELEMETRY=console)
    assert line(out, "MODE") == ("azure-monitor+console" if console else "azure-monitor")
    printed = "\n".join(text for text in out.splitlines() if not text.startswith("INGEST "))
    assert ('"name": "voicebridge.session"' in printed) is bool(console), "console output only when asked for"
    posts = [text.split(" ", 2) for text in out.splitlines() if text.startswith("INGEST ")]
    track = INGESTION + "/v2.1/track"
    items = [item for _, url, body in posts if url == track for item in json.loads(body)]
    assert items and all(item["iKey"] == IKEY for item in items)

    def data(kind: str) -> list[dict]:
        return [i["data"]["baseData"] for i in items if i["name"] == f"Microsoft.ApplicationInsights.{kind}"]

    assert [r["name"] for r in data("Request")] == ["GET /api/info"], "incoming requests traced, /healthz not"
    spans = {d["name"]: d["properties"] for d in data("RemoteDependency") if d["name"].startswith("voicebridge.")}
    assert spans["voicebridge.session"]["voicebridge.session_id"] == "child-session"
    assert spans["voicebridge.turn"]["voicebridge.turn_status"] == "completed"
    metrics = {m["name"] for d in data("Metric") for m in d["metrics"]}
    assert {"voicebridge.sessions.active", "voicebridge.session.duration", "voicebridge.turn.latency"} <= metrics
    messages = [d for d in data("Message") if d["properties"].get("logger_name", "").startswith("voicebridge")]
    assert any(m["message"].startswith("event=startup.upstream") for m in messages), "app logs reach App Insights"
    assert "secret words" not in out and "test-key" not in out
