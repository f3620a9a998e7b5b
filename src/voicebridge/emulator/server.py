"""The emulator's HTTP/WebSocket server: the Voice Live endpoint plus a small control surface.

It runs on aiohttp either in a daemon thread with its own event loop (`start`, for the bridge and
tests) or inside an existing loop (`serve`, for the CLI). Session state lives in the loop; the thread-
safe `Registry` is what other threads read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hmac
import json
import logging
import math
import threading
import time
from collections.abc import Callable

from aiohttp import web

from ..protocol import BYTES_PER_MS
from .calls import CallScript
from .quota import QuotaMeter, retry_after_header
from .records import EmulatorConfig, Registry, SessionRecord, new_id
from .session import EmulatedSession, default_session
from .vad import sum_of_squares

log = logging.getLogger("voicebridge.emulator")

REALTIME_PATH = "/voice-live/realtime"
MAX_CLIENT_MESSAGE = 16 * 1024 * 1024
ENVELOPE_MS = 20


class Emulator:
    def __init__(self, config: EmulatorConfig | None = None):
        self.config = config or EmulatorConfig()
        self.registry = Registry()
        self.port: int | None = None
        self._live: dict[str, EmulatedSession] = {}  # touched only on the loop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._stopping = False
        self.calls = CallScript()
        self.quota = QuotaMeter()  # the resource's connections and tokens in the window (quota.py)

    # ---- lifecycle ---------------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(REALTIME_PATH, self._realtime)
        app.router.add_get("/healthz", self._http_health)
        app.router.add_get("/emulator/sessions", self._http_sessions)
        app.router.add_post("/emulator/faults", self._http_faults)
        app.router.add_post("/emulator/inject", functools.partial(_http_inject, self))
        app.router.add_post("/emulator/warning", functools.partial(_http_warning, self))
        app.router.add_post("/emulator/drop", functools.partial(_http_drop, self))
        self.calls.add_routes(app)  # POST /emulator/function-call, /emulator/mcp-call
        return app

    async def _bind(self, host: str, port: int) -> str:
        self._loop = asyncio.get_running_loop()
        self._runner = web.AppRunner(self._build_app(), handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return f"http://{host}:{self.port}"

    async def _shutdown(self) -> None:
        self._stopping = True
        await asyncio.gather(*(s.ws.close(code=1001, message=b"emulator stopping") for s in list(self._live.values())),
                             return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    async def serve(self, host: str = "127.0.0.1", port: int = 8765) -> None:
        """Serve until cancelled (the CLI's way of running)."""
        url = await self._bind(host, port)
        log.info("Voice Live emulator listening on %s (use it as AZURE_VOICE_LIVE_ENDPOINT)", url)
        try:
            await asyncio.Event().wait()
        finally:
            await self._shutdown()

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Run in a daemon thread with its own loop; returns the base URL once it accepts connections."""
        loop = asyncio.new_event_loop()
        bound: dict = {}
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                bound["url"] = loop.run_until_complete(self._bind(host, port))
            except BaseException as exc:  # handed to the caller below
                bound["error"] = exc
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.close()

        self._thread = threading.Thread(target=run, name="voicelive-emulator", daemon=True)
        self._thread.start()
        ready.wait()
        if "error" in bound:
            raise bound["error"]
        return bound["url"]

    def stop(self) -> None:
        if self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = self._loop = None

    # ---- API for tests and the bridge (any thread) -----------------------------------------------

    def sessions(self) -> list[SessionRecord]:
        """Snapshot of every session so far; treat the records as read-only."""
        return self.registry.snapshot()

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Wait, without polling, until `predicate()` holds; it is re-checked on every state change."""
        return self.registry.wait_until(predicate, timeout)

    def update_config(self, **fields) -> EmulatorConfig:
        """Change fault knobs; drop_after_s applies to connections opened afterwards, the rest at once."""
        self.config = self.config.updated(**fields)
        return self.config

    def inject_error(self, code: str = "server_error", message: str = "The server had an error.",
                     session_id: str | None = None, error_type: str | None = None) -> int:
        """Send an `error` event to one or all open sessions; returns how many got it."""
        kind = error_type or ("server_error" if code == "server_error" else "invalid_request_error")
        return self._on_loop(lambda s: s.error(message, code, type_=kind), session_id)

    def send_warning(self, message: str, code: str | None = None, param: str | None = None,
                     session_id: str | None = None) -> int:
        """Send a `warning` event to one or all open sessions; returns how many got it."""
        return self._on_loop(lambda s: s.warn(message, code, param), session_id)

    def function_calls_for(self, record: SessionRecord, typed_text: str | None) -> list[dict] | None:
        return self.calls.next_for(record, typed_text, self.config)

    def drop(self, session_id: str | None = None) -> int:
        """Abruptly drop one or all connections (no close frame); returns how many."""
        return self._on_loop(EmulatedSession.drop, session_id)

    def _on_loop(self, action: Callable[[EmulatedSession], None], session_id: str | None) -> int:
        def apply() -> int:
            targets = [s for sid, s in self._live.items() if session_id in (None, sid)]
            for session in targets:
                action(session)
            return len(targets)

        if self._loop is None:
            return 0
        try:
            if asyncio.get_running_loop() is self._loop:
                return apply()
        except RuntimeError:
            pass

        async def run() -> int:
            return apply()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=5)

    # ---- the Voice Live endpoint -------------------------------------------------------------------

    async def _realtime(self, request: web.Request) -> web.StreamResponse:
        config = self.config
        credential = _credential(request)
        if (refused := _handshake_refusal(credential, config, self.quota)) is not None:
            return refused
        agent = _agent(request.query)
        ws = web.WebSocketResponse(max_msg_size=MAX_CLIENT_MESSAGE, timeout=2.0, compress=False)
        if not ws.can_prepare(request).ok:
            return web.json_response({"error": {"code": "400", "message": "Expected a WebSocket upgrade."}},
                                     status=400)
        await ws.prepare(request)
        session_id = new_id("sess")
        model = request.query.get("model")
        expires_at = math.ceil(time.time() + config.session_max_s)  # unix seconds, as the service's
        record = SessionRecord(id=session_id, config=default_session(session_id, model, expires_at, agent),
                               model=model, credential=credential[0], expires_at=expires_at)
        self.registry.add(record)
        session = self._live[session_id] = EmulatedSession(self, ws, request.transport, record=record)
        try:
            await session.run()
        finally:
            del self._live[session_id]
            with self.registry.changing(record):
                record.open = False
                record.closed_by_client = not (session.dropped or self._stopping)
            self.registry.closed(record, keep=self.config.record_max_sessions)
        return ws

    # ---- control surface ---------------------------------------------------------------------------

    async def _http_health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _http_sessions(self, request: web.Request) -> web.Response:
        # Straight from the records, without the copies snapshot() caches: asking costs the answer's
        # size, not another copy of every session's audio.
        registry = self.registry
        parts = []
        with registry.cond:
            for rec in registry.live_records():
                data = {f.name: getattr(rec, f.name) for f in dataclasses.fields(rec) if f.name != "audio_received"}
                with registry.audio_of(rec) as audio:  # a view must be released before the audio grows again
                    data["audio_received"] = {"bytes": len(audio), "rms_20ms": _envelope(audio)}
                parts.append(json.dumps(data))
        return web.Response(text="[" + ",".join(parts) + "]", content_type="application/json")

    async def _http_faults(self, request: web.Request) -> web.Response:
        try:
            config = self.update_config(**await _json_body(request))
        except (TypeError, ValueError) as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        return web.json_response(dataclasses.asdict(config))


async def _http_inject(emu: Emulator, request: web.Request) -> web.Response:
    body = await _json_body(request)
    count = emu.inject_error(code=str(body.get("code", "server_error")),
                             message=str(body.get("message", "The server had an error.")),
                             session_id=body.get("session_id"), error_type=body.get("type"))
    return web.json_response({"sessions": count})


async def _http_warning(emu: Emulator, request: web.Request) -> web.Response:
    body = await _json_body(request)
    count = emu.send_warning(str(body.get("message", "Warning.")), code=body.get("code"),
                             param=body.get("param"), session_id=body.get("session_id"))
    return web.json_response({"sessions": count})


async def _http_drop(emu: Emulator, request: web.Request) -> web.Response:
    body = await _json_body(request)
    return web.json_response({"dropped": emu.drop(body.get("session_id"))})


def _agent(query) -> dict | None:
    """Agent mode from the handshake's query (the SDK's agent_name, project_name, agent_version,
    conversation_id): the session reports the agent, and the conversation it continues or starts."""
    name, project = query.get("agent-name"), query.get("agent-project-name")
    if name is None and project is None:
        return None
    if not name or not project:
        refusal = _refused(400, "Agent mode needs both 'agent-name' and 'agent-project-name'.")
        raise web.HTTPBadRequest(text=refusal.text, content_type="application/json")
    version = query.get("agent-version")
    return {"type": "agent", "name": name,
            "agent_id": f"{name}:{version}" if version else name,
            "thread_id": query.get("conversation-id") or new_id("conv")}


def _handshake_refusal(
    credential: tuple[str, str] | None, config: EmulatorConfig, quota: QuotaMeter
) -> web.Response | None:
    """What the service answers a handshake it does not take: 401 for a bad credential, then 429 with
    Retry-After when the resource's new connections in the window are spent (quota.py)."""
    accepted = credential is not None and not config.reject_auth and (
        config.required_key is None or hmac.compare_digest(credential[1], config.required_key))
    if not accepted:
        return _refused(401, "Access denied due to invalid subscription key or wrong API endpoint. Make sure "
                        "to provide a valid key for an active subscription and use a correct regional API "
                        "endpoint for your resource.")
    if (wait := quota.connect(config.connects_per_window, config.quota_window_s)) is not None:
        return _refused(429, "Requests to the Voice Live API have exceeded the rate limit of your current "
                        "pricing tier. Please retry after the time in the Retry-After header.",
                        {"Retry-After": retry_after_header(wait)})
    return None


def _refused(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """A handshake refused over HTTP, in the service's shape; logged, as no session line will tell of it.
    429: the resource's connections per window are spent (quota.py), Retry-After says when one is free."""
    log.info("event=emulator.handshake_refused status=%d message=%r", status, message)
    return web.json_response({"error": {"code": str(status), "message": message}}, status=status, headers=headers)


def _credential(request: web.Request) -> tuple[str, str] | None:
    if key := request.headers.get("api-key"):
        return "api-key", key
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        return "bearer", token
    return None


async def _json_body(request: web.Request) -> dict:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="body must be JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return body


def _envelope(pcm: bytes | memoryview) -> list[float]:
    """RMS per 20 ms as a fraction of full scale: enough to see speech and silence without the bytes."""
    window = ENVELOPE_MS * BYTES_PER_MS
    out = []
    for offset in range(0, len(pcm) - window + 1, window):
        samples = memoryview(pcm)[offset:offset + window].cast("h")
        out.append(round(math.sqrt(sum_of_squares(samples) / len(samples)) / 32768, 5))
    return out
