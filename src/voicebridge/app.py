"""The Flask application factory: the page, health, and the per-tab WebSocket at /ws."""

from __future__ import annotations

import logging
import os

from flask import Flask, jsonify, render_template, request
from flask_sock import Sock

from . import __version__, telemetry
from .bridge import Bridge
from .credentials import build_provider
from .runtime import SOCK_SERVER_OPTIONS, LoopThread, serve_tab
from .settings import Settings
from .upstream import Connector

log = logging.getLogger("voicebridge.app")


def start_bridge(settings: Settings) -> Bridge:
    """Start the event loop, the built-in emulator when no endpoint is configured, and the bridge."""
    runtime = LoopThread().start()
    emulator = None
    if settings.use_emulator:
        from .emulator import Emulator, EmulatorConfig

        emulator = Emulator(EmulatorConfig())
        endpoint = emulator.start(host="127.0.0.1", port=settings.emulator_port)
        provider = build_provider(settings, emulator_key="emulator")
        log.warning(
            "event=startup.emulator endpoint=%s note=AZURE_VOICE_LIVE_ENDPOINT is not set: "
            "using the built-in Voice Live emulator (it echoes what you say)",
            endpoint,
        )
    else:
        endpoint = settings.endpoint
        provider = build_provider(settings)
    log.info("event=startup.credentials source=%r", provider.source)
    return Bridge(settings, runtime, Connector(settings, provider, endpoint), emulator)


def create_app(settings: Settings | None = None, bridge: Bridge | None = None) -> Flask:
    settings = settings or Settings.from_env(os.environ)
    # Here, in the serving process: exporters run background threads, which do not survive a fork.
    log.info("event=startup.telemetry mode=%s", telemetry.configure(settings))
    bridge = bridge or start_bridge(settings)
    app = Flask(__name__)
    telemetry.instrument_app(app)
    app.config["SOCK_SERVER_OPTIONS"] = SOCK_SERVER_OPTIONS
    app.extensions["voicebridge"] = bridge
    sock = Sock(app)

    def info() -> dict[str, object]:
        return {
            "emulator": bridge.uses_emulator,
            "model": settings.model,
            "voice": settings.voice,
            "version": __version__,
        }

    @app.get("/")
    def index():
        return render_template("index.html", **info())

    @app.get("/api/info")
    def api_info():
        return jsonify(info())

    @app.get("/healthz")
    def healthz():
        # Never touches Azure: the platform polls this often.
        if bridge.draining:
            return jsonify(status="draining"), 503
        return jsonify(status="ok", sessions=len(bridge.sessions), emulator=bridge.uses_emulator)

    @app.before_request
    def no_websocket_compression():
        # The loop's frame parser speaks plain WebSocket (base64 audio barely compresses anyway, and
        # deflate would cost zlib time per frame): without the offer, the handshake does not negotiate it.
        if request.path == "/ws":
            request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)

    @sock.route("/ws")
    def tab(ws):
        serve_tab(bridge.runtime, ws, bridge.attach)

    return app
