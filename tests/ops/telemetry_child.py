"""Run in a fresh process by test_configure.py: OpenTelemetry lets a process install its providers once.

Configures telemetry from the environment, serves the real app on a real port, makes two requests and
records one session with a turn, then exits so the exporters flush. In azure-monitor mode Application
Insights cannot be reached from here, so only the last hop is replaced: requests' HTTPAdapter.send,
under azure-core's real RequestsTransport, prints each ingestion payload to stdout and answers 200.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import sys
import threading
import urllib.request

from opentelemetry import metrics, trace
from werkzeug.serving import make_server

from voicebridge import logs, telemetry
from voicebridge.app import create_app
from voicebridge.settings import Settings


def capture_ingestion() -> None:
    import urllib3
    from requests.adapters import HTTPAdapter

    def send(self, request, **kwargs):
        body = request.body or b""
        if isinstance(body, bytes):
            body = (gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body).decode()
        items = json.loads(body) if body else []
        print("INGEST", request.url, json.dumps(items), flush=True)
        answer = json.dumps({"itemsReceived": len(items), "itemsAccepted": len(items), "errors": []}).encode()
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(answer), status=200, headers={"Content-Type": "application/json"}, preload_content=False
        )
        return HTTPAdapter().build_response(request, raw)

    HTTPAdapter.send = send


def main() -> None:
    settings = Settings.from_env(os.environ)
    if settings.appinsights_connection_string:
        capture_ingestion()
    logs.configure("INFO")
    mode = telemetry.configure(settings)
    assert telemetry.configure(settings) == mode, "configure() is once per process"
    print("MODE", mode, flush=True)
    print("PROVIDERS", type(trace.get_tracer_provider()).__name__, type(metrics.get_meter_provider()).__name__, flush=True)

    app = create_app(settings)
    telemetry.instrument_app(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    for path in ("/api/info", "/healthz"):
        with urllib.request.urlopen(base + path, timeout=5) as response:
            assert response.status == 200

    session = telemetry.SessionTelemetry("child-session", record_transcripts=settings.telemetry_transcripts)
    session.started()
    session.turn_started()
    session.first_audio()
    session.transcript("user", "secret words")
    session.turn_ended("completed")
    session.ended("tab_stop")
    server.shutdown()
    app.extensions["voicebridge"].shutdown(timeout=2.0)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
