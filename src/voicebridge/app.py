"""The Flask application factory: the page, health, and the per-tab WebSocket at /ws."""

from __future__ import annotations

import logging
import os

from flask import Flask, jsonify, render_template, request
from flask_sock import Sock

from . import __version__, protocol
from .bridge import Bridge
from .credentials import build_provider
from .protocol import ProtocolError
from .runtime import LoopThread, TabChannel
from .settings import MAX_FRAME_BYTES, Settings
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
    bridge = bridge or start_bridge(settings)
    app = Flask(__name__)
    app.config["SOCK_SERVER_OPTIONS"] = {"max_message_size": MAX_FRAME_BYTES}
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
        # Base64 audio barely compresses, and permessage-deflate would cost zlib time on every frame of
        # every tab; without the offer in the handshake simple-websocket does not negotiate it.
        if request.path == "/ws":
            request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)

    @sock.route("/ws")
    def tab(ws):
        channel = TabChannel(ws)
        session = bridge.open_tab(channel)
        bad_frames = 0

        def on_frames(frames: list[str | bytes]) -> None:
            nonlocal bad_frames
            messages = []
            for frame in frames:
                try:
                    messages.append(protocol.parse(frame))
                except ProtocolError as exc:
                    bad_frames += 1
                    if bad_frames == 1:
                        log.info("event=tab.bad_frame session=%s code=%s", session.id, exc.code)
                    channel.send(protocol.error(exc.code, exc.message))
            if messages:
                bridge.deliver(session, messages)

        try:
            channel.pump(on_frames)
        finally:
            bridge.tab_closed(session)
            if bad_frames:
                log.info("event=tab.bad_frames session=%s count=%d", session.id, bad_frames)

    return app
