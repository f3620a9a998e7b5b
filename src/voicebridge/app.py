"""The Flask application factory: the page, health, and the per-tab WebSocket at /ws."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
import os
from urllib.parse import urlparse

from flask import Flask, jsonify, render_template, request
from flask_sock import Sock

from . import __version__, identity, telemetry
from .bridge import Bridge, Siblings
from .credentials import build_provider
from .endpoints import EndpointPool
from .pacer import CapacityBoard, Pacer, Quota
from .runtime import SOCK_SERVER_OPTIONS, LoopThread, adopt
from .settings import Settings, spoken_voice
from .upstream import Connector
from .words import page_words

log = logging.getLogger("voicebridge.app")


def _same_origin(origin: str, host: str, scheme: str, allowed: tuple[str, ...]) -> bool:
    """The page's own origin (same scheme, host and port as this request), or one explicitly allowed."""
    parsed = urlparse(origin)
    if parsed.scheme not in ("http", "https"):
        return False
    own = parsed.scheme == scheme and parsed.netloc.lower() == host.lower()
    return own or f"{parsed.scheme}://{parsed.netloc}".lower() in allowed


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _loopback_name(host_header: str) -> bool:
    """Host names a loopback-bound server answers to: a page on another site whose name resolves to
    127.0.0.1 (DNS rebinding) sends its own name and is refused."""
    name = urlparse(f"//{host_header}").hostname or ""
    return name == "localhost" or name.endswith(".localhost") or _is_loopback(name)


def _valid_websocket_key(key: str) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


def quota(settings: Settings) -> Quota:
    return Quota(settings.upstream_connects_per_minute, settings.upstream_tokens_per_minute,
                 settings.upstream_quota_window_s)


def capacity_board(settings: Settings, slots: int = 1) -> CapacityBoard:
    """The instance's connection and token counts per endpoint (pacer.py); the server makes it before
    forking its workers, a single process makes its own."""
    return CapacityBoard(slots, max(1, len(settings.endpoints)), quota(settings))


def start_bridge(settings: Settings, *, siblings: Siblings | None = None, pacer: Pacer | None = None) -> Bridge:
    """Start the event loop, the built-in emulator when no endpoint is configured, and the bridge
    (`siblings`: this worker's place among the instance's worker processes, when there are several;
    `pacer`: this worker's share of the instance's connection quota, made by the server)."""
    runtime = LoopThread().start()
    emulator = None
    if settings.use_emulator:
        from .emulator import Emulator, EmulatorConfig

        # `make run` may serve for days: what the emulator keeps per session, and how many closed
        # sessions it remembers, stays small (enough to inspect the last few conversations). It enforces
        # the quota the pacer paces to, as the service would (docs/emulator.md).
        q = quota(settings)
        emulator = Emulator(EmulatorConfig(
            record_max_audio_s=10.0, record_max_events=1000, record_max_sessions=20,
            connects_per_window=q.connects, tokens_per_window=q.tokens, quota_window_s=q.window_s,
        ))
        endpoints = [emulator.start(host="127.0.0.1", port=settings.emulator_port)]
        providers = [build_provider(settings, emulator_key="emulator")]
        log.warning(
            "event=startup.emulator endpoint=%s note=AZURE_VOICE_LIVE_ENDPOINT is not set: "
            "using the built-in Voice Live emulator (it echoes what you say)",
            endpoints[0],
        )
    else:
        endpoints = list(settings.endpoints)
        providers = [build_provider(settings, index=i) for i in range(len(endpoints))]
    pacer = pacer or Pacer(capacity_board(settings))
    pool = EndpointPool([Connector(settings, p, e) for p, e in zip(providers, endpoints, strict=True)], pacer)
    bridge = Bridge(settings, runtime, pool, emulator=emulator, siblings=siblings)
    # One line per endpoint that says what every session will talk to, and as whom.
    for endpoint, provider in zip(endpoints, providers, strict=True):
        log.info(
            "event=startup.upstream endpoint=%s model=%s credential=%r transcription=%s voice=%s tools=%s",
            urlparse(endpoint).netloc or endpoint, settings.model, provider.source, settings.transcription,
            ":".join(spoken_voice(settings)), ",".join(bridge.toolbox.tools) or "none",
        )
    if settings.family is None:
        log.warning("event=startup.unknown_model model=%s note=not in the capability table (capabilities.py): "
                    "its options are not checked here, the service decides", settings.model)
    return bridge


def tab_user(settings: Settings) -> identity.UserKey:
    """The user key of the /ws request being served (identity.py has the trust rules)."""
    return identity.user_key(
        request.headers, request.remote_addr or "", settings.trust_easy_auth, settings.trust_forwarded
    )


def create_app(
    settings: Settings | None = None,
    bridge: Bridge | None = None,
    *,
    siblings: Siblings | None = None,
    pacer: Pacer | None = None,
) -> Flask:
    settings = settings or Settings.from_env(os.environ)
    # Here, in the serving process: exporters run background threads, which do not survive a fork.
    log.info("event=startup.telemetry mode=%s", telemetry.configure(settings))
    bridge = bridge or start_bridge(settings, siblings=siblings, pacer=pacer)
    app = Flask(__name__)
    telemetry.instrument_app(app)
    app.config["SOCK_SERVER_OPTIONS"] = SOCK_SERVER_OPTIONS
    app.extensions["voicebridge"] = bridge
    sock = Sock(app)
    words = page_words(settings.languages)

    def info() -> dict[str, object]:
        return {
            "emulator": bridge.uses_emulator,
            "model": settings.model,
            "voice": spoken_voice(settings)[1],  # the family's default when VOICE_LIVE_VOICE is unset
            "version": __version__,
            # The language the page's words are in (its `lang`; words.py): the first of VOICE_LIVE_LANGUAGES
            # when the page has a catalog for it, else English.
            "language": words.lang,
        }

    @app.get("/")
    def index():
        signed_in = identity.principal_name(request.headers, settings.trust_easy_auth)
        return render_template("index.html", signed_in=signed_in, words=words, **info())

    @app.get("/api/info")
    def api_info():
        return jsonify(info())

    @app.get("/healthz")
    def healthz():
        # Never touches Azure: the platform polls this often.
        if bridge.draining:
            return jsonify(status="draining"), 503
        # version and image_tag tell a rollout's gate which container answered; worker, which process.
        return jsonify(
            status="ok",
            sessions=len(bridge.sessions),
            emulator=bridge.uses_emulator,
            version=__version__,
            image_tag=settings.image_tag,
            worker=os.getpid(),
        )

    loopback_only = _is_loopback(settings.host)
    extra_hosts = {urlparse(o).netloc for o in settings.allowed_origins}
    # A codespace's port forward reaches this loopback-bound server from GitHub's proxy under one exact
    # name, which only that codespace's forward answers to: served, and its https page may open /ws. Still
    # safe against DNS rebinding: a rebinding page sends its own name, never this one.
    # (Codespaces' forwarder has also been seen rewriting Origin to localhost:<port>, mastodon/mastodon#26400:
    # that origin is this server's own page.)
    allowed_origins = settings.allowed_origins
    if settings.forwarded_host:
        extra_hosts.add(settings.forwarded_host)
        allowed_origins = (*allowed_origins, f"https://{settings.forwarded_host}", f"http://localhost:{settings.port}")

    @app.before_request
    def host_rule():
        # On a loopback address the server is someone's development box, often with a real key in its
        # environment: only loopback names are served there (DNS rebinding protection).
        if loopback_only and not _loopback_name(request.host) and request.host.lower() not in extra_hosts:
            log.warning("event=http.refused reason=host host=%r", request.host[:200])
            return jsonify(error="this server answers only to localhost names"), 403
        return None

    @app.before_request
    def websocket_upgrade_rules():
        if request.path != "/ws":
            return None
        # Every upstream session costs money: a page on another site must not open one in a visitor's
        # browser. Browsers always send Origin; non-browser clients (smoke, benchmarks) may omit it.
        origin = request.headers.get("Origin")
        # Behind App Service's TLS front end the page is https while this hop is http (X-Forwarded-Proto,
        # read only when the front end is trusted to set it).
        scheme = identity.request_scheme(request.headers, request.scheme, settings.trust_forwarded)
        if origin and not _same_origin(origin, request.host, scheme, allowed_origins):
            log.warning("event=tab.refused reason=cross_origin origin=%r", origin[:200])
            return jsonify(error="cross-origin WebSocket refused"), 403
        connection = {token.strip().lower() for token in request.headers.get("Connection", "").split(",")}
        if request.headers.get("Upgrade", "").lower() != "websocket" or "upgrade" not in connection:
            return jsonify(error="/ws expects a WebSocket upgrade"), 400
        if not _valid_websocket_key(request.headers.get("Sec-WebSocket-Key", "")):
            log.info("event=tab.refused reason=bad_key")
            return jsonify(error="missing or invalid Sec-WebSocket-Key"), 400
        if request.headers.get("Sec-WebSocket-Version", "").strip() != "13":
            log.info("event=tab.refused reason=bad_version")
            return jsonify(error="unsupported Sec-WebSocket-Version"), 426, {"Sec-WebSocket-Version": "13"}
        # The loop's frame parser speaks plain WebSocket (base64 audio barely compresses anyway, and
        # deflate would cost zlib time per frame): without the offer, the handshake does not negotiate it.
        request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
        return None

    @sock.route("/ws")
    def tab(ws):
        user = tab_user(settings)
        # Returns at once: the event loop serves the tab from here on.
        adopt(ws, lambda channel: bridge.attach(channel, user), bridge.runtime)

    return app
