"""The upstream connection: session configuration and opening a Voice Live connection with the SDK.

Failures are turned into `UpstreamError`s whose code and message go to the tab as they are, so a bad
key shows up as "credentials" within seconds instead of a hang.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from urllib.parse import urlparse

import aiohttp
from azure.ai.voicelive.aio import ConnectionError as VoiceLiveConnectionError
from azure.ai.voicelive.aio import VoiceLiveConnection, connect
from azure.ai.voicelive.models import (
    AudioEchoCancellation,
    AudioInputTranscriptionOptions,
    AudioNoiseReduction,
    AzureRealtimeNativeVoice,
    AzureSemanticDetection,
    AzureSemanticDetectionEn,
    AzureSemanticDetectionMultilingual,
    AzureSemanticVad,
    AzureSemanticVadEn,
    AzureSemanticVadMultilingual,
    AzureStandardVoice,
    FunctionTool,
    InputAudioFormat,
    InterimResponseTrigger,
    Modality,
    OpenAIVoice,
    OutputAudioFormat,
    RequestSession,
    ServerVad,
    StaticInterimResponseConfig,
)
from azure.core.exceptions import ClientAuthenticationError

from . import capabilities
from .credentials import CredentialError, CredentialProvider, VaultSecrets
from .mcp import McpServer
from .protocol import ErrorCode
from .settings import (
    Settings,
    end_of_utterance_model,
    spoken_voice,
    tool_filler_by_service,
    turn_detection_type,
)

log = logging.getLogger("voicebridge.upstream")


class UpstreamError(Exception):
    def __init__(self, code: ErrorCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class UpstreamBusy(UpstreamError):
    """The handshake was refused with HTTP 429: the resource's quota, not an outage (pacer.py waits it out)."""

    def __init__(self, message: str, retry_after: float | None):
        super().__init__(ErrorCode.UPSTREAM_UNAVAILABLE, message)
        self.retry_after = retry_after


_TURN_DETECTION = {
    "server_vad": ServerVad,
    "azure_semantic_vad": AzureSemanticVad,
    "azure_semantic_vad_en": AzureSemanticVadEn,
    "azure_semantic_vad_multilingual": AzureSemanticVadMultilingual,
}
# One class per model: the SDK's AzureSemanticDetection(model=...) always serializes semantic_detection_v1.
_END_OF_UTTERANCE = {
    "semantic_detection_v1": AzureSemanticDetection,
    "semantic_detection_v1_en": AzureSemanticDetectionEn,
    "semantic_detection_v1_multilingual": AzureSemanticDetectionMultilingual,
}
_VOICES = {
    capabilities.OPENAI: OpenAIVoice,
    capabilities.AZURE_STANDARD: AzureStandardVoice,
    capabilities.AZURE_REALTIME_NATIVE: AzureRealtimeNativeVoice,
}


def session_config(settings: Settings, tools: list[dict] | None = None) -> RequestSession:
    """The session.update every upstream connection of this process sends. Optional features the operator
    did not set are left out, so the service's own defaults apply to them."""
    kind, name = spoken_voice(settings)
    voice = _VOICES[kind](name=name, **(_voice_options(settings) if kind in capabilities.AZURE_VOICES else {}))
    turn_options: dict = _turn_taking(settings)
    if settings.end_of_utterance:
        turn_options["end_of_utterance_detection"] = _END_OF_UTTERANCE[end_of_utterance_model(settings)](
            **_end_of_utterance_options(settings)
        )
    for option in ("threshold", "prefix_padding_ms", "silence_duration_ms"):
        if (value := getattr(settings, f"vad_{option}")) is not None:
            turn_options[option] = value
    optional: dict = _speech_output(settings)
    if settings.noise_reduction:
        optional["input_audio_noise_reduction"] = AudioNoiseReduction(type=settings.noise_reduction)
    if settings.echo_cancellation:
        optional["input_audio_echo_cancellation"] = AudioEchoCancellation()
    if settings.temperature is not None:
        optional["temperature"] = settings.temperature
    if not settings.agent_mode:
        # An agent's instructions are its own: the service refuses a session.update that carries any.
        optional["instructions"] = settings.instructions
    if settings.max_response_tokens:
        optional["max_response_output_tokens"] = settings.max_response_tokens
    if tools:
        optional["tools"] = [FunctionTool(name=t["name"], description=t["description"], parameters=t["parameters"])
                             for t in tools]
        optional["tool_choice"] = "auto"
    return RequestSession(
        modalities=[Modality.TEXT, Modality.AUDIO],
        voice=voice,
        input_audio_format=InputAudioFormat.PCM16,
        output_audio_format=OutputAudioFormat.PCM16,
        turn_detection=_TURN_DETECTION[turn_detection_type(settings)](
            create_response=True,
            interrupt_response=True,
            **turn_options,
        ),
        input_audio_transcription=AudioInputTranscriptionOptions(
            model=settings.transcription, **_transcription_options(settings)
        ),
        **optional,
    )


KEYLESS_FIX = "Run `az login` (or give the app's identity access), or set AZURE_VOICE_LIVE_API_KEY."


def _cause(exc: BaseException) -> BaseException:
    """The innermost cause: what actually went wrong under the SDK's wrapping."""
    while exc.__cause__ is not None and exc.__cause__ is not exc:
        exc = exc.__cause__
    return exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _chain(exc: BaseException) -> list[BaseException]:
    chain = [exc]
    while chain[-1].__cause__ is not None and len(chain) < 8:
        chain.append(chain[-1].__cause__)
    return chain


def describe_failure(exc: BaseException, host: str) -> str:
    """A connect failure in words an operator can act on: DNS and TLS say what they are."""
    chain = _chain(exc)
    # aiohttp names a resolver failure ClientConnectorDNSError (3.11+) over the resolver's own error
    # (socket.gaierror, or aiodns' DNSError).
    dns = (socket.gaierror, *((aiohttp.ClientConnectorDNSError,) if hasattr(aiohttp, "ClientConnectorDNSError") else ()))
    if any(isinstance(e, dns) or type(e).__name__ == "DNSError" for e in chain):
        return (f"Could not find Voice Live at {host}: the name does not resolve (DNS). "
                "Check AZURE_VOICE_LIVE_ENDPOINT.")
    tls = (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError, ssl.SSLError)
    if any(isinstance(e, tls) for e in chain):
        return (f"The TLS handshake with {host} failed ({_first_line(_cause(exc))}): check "
                "AZURE_VOICE_LIVE_ENDPOINT and the machine's CA certificates.")
    return f"Could not connect to Voice Live at {host} ({_first_line(_cause(exc))})."


# --- the conversation's knobs (issue 24); each sent only when the operator set it ----------------------


def _voice_options(settings: Settings) -> dict:
    # Accents follow the configured languages; `locale` would force every reply into the first one.
    return {"prefer_locales": list(settings.languages)} if settings.languages else {}


def _turn_taking(settings: Settings) -> dict:
    options: dict = {}
    if turn_detection_type(settings).startswith("azure_semantic_vad"):
        if settings.languages and not turn_detection_type(settings).endswith("_en"):
            options["languages"] = list(settings.languages)
        if settings.remove_filler_words is not None:
            options["remove_filler_words"] = settings.remove_filler_words
    return options


def _end_of_utterance_options(settings: Settings) -> dict:
    options: dict = {}
    if settings.eou_threshold_level:
        options["threshold_level"] = settings.eou_threshold_level
    if settings.eou_timeout_ms is not None:
        options["timeout_ms"] = settings.eou_timeout_ms
    return options


def _transcription_options(settings: Settings) -> dict:
    """Azure Speech takes up to ten languages (the first is the primary) and a phrase list; the OpenAI
    transcription models one ISO-639-1 language and no phrase list (Voice Live API reference)."""
    options: dict = {}
    languages = settings.languages
    if settings.transcription == "azure-speech":
        if languages:
            options["language"] = ",".join(languages)
        if settings.phrase_list:
            options["phrase_list"] = list(settings.phrase_list)
    elif len(languages) == 1:
        options["language"] = languages[0].split("-")[0].lower()
    return options


def _speech_output(settings: Settings) -> dict:
    options: dict = {}
    if settings.voice_is_azure:
        # Word timings let an interrupted reply be cut at the last word the user heard (session/turns.py).
        options["output_audio_timestamp_types"] = ["word"]
    if tool_filler_by_service(settings):
        options["interim_response"] = StaticInterimResponseConfig(
            triggers=[InterimResponseTrigger.TOOL], texts=[settings.tool_filler]
        )
    return options
class McpDeclarations:
    """The `mcp` tool entries of each connection's session.update (mcp.py): a server's header values are
    Key Vault secrets, read when a session connects (cached for a while by VaultSecrets), so a rotated
    token reaches the next session and a value never sits in the settings."""

    def __init__(self, servers: tuple[McpServer, ...], secrets: VaultSecrets | None):
        self.servers = servers
        self._secrets = secrets

    async def entries(self) -> list[dict]:
        entries = []
        for server in self.servers:
            headers = {}
            for header, secret in server.header_secrets:
                assert self._secrets is not None  # settings refuse header secrets without a vault
                try:
                    headers[header] = await self._secrets.get(secret)
                except CredentialError as exc:
                    raise UpstreamError(
                        ErrorCode.UPSTREAM_AUTH, f"MCP server '{server.label}': {exc}"
                    ) from exc
            entries.append(server.definition(headers))
        return entries

    async def close(self) -> None:
        if self._secrets is not None:
            await self._secrets.close()


def with_tools(session: RequestSession, entries: list[dict]) -> RequestSession | dict:
    """`session` with `entries` added to its tools (MCP servers next to the @tool functions)."""
    if not entries:
        return session
    config = session.as_dict()
    config["tools"] = [*config.get("tools", []), *entries]
    config.setdefault("tool_choice", "auto")
    return config


def _http_status(exc: BaseException) -> int | None:
    # The SDK wraps aiohttp's WSServerHandshakeError, which carries the HTTP status.
    while exc is not None:
        status = getattr(exc, "status", None)
        if isinstance(status, int):
            return status
        exc = exc.__cause__  # type: ignore[assignment]
    return None


def retry_after(exc: BaseException) -> float | None:
    """Seconds from a refused handshake's Retry-After header (aiohttp's WSServerHandshakeError keeps the
    response headers; the SDK's ConnectionError wraps it). The HTTP-date form is not used by the service."""
    while exc is not None:
        headers = getattr(exc, "headers", None)
        if headers is not None:
            try:
                value = float(headers.get("Retry-After", ""))
            except (TypeError, ValueError):
                return None
            return value if 0 <= value <= 3600 else None
        exc = exc.__cause__  # type: ignore[assignment]
    return None


class Connector:
    """Opens one upstream connection per call; shared by every session of the process."""

    def __init__(self, settings: Settings, provider: CredentialProvider, endpoint: str):
        self._settings = settings
        self._provider = provider
        self.endpoint = endpoint
        self._host = urlparse(endpoint).netloc

    async def close(self) -> None:
        await self._provider.close()

    async def _connect(self, **kwargs: object) -> VoiceLiveConnection:
        """The SDK's connect, safe to cancel (the tab left or stopped while connecting, our timeout).

        The SDK creates an aiohttp session per connection but closes it only when the handshake fails
        with a ClientError; a cancelled connect leaks it ("Unclosed client session" at ERROR). So the
        connect runs as a task of its own: on cancellation the session is taken from the SDK's suspended
        connect (a local variable of its `__aenter__`, checked by tests/serving/test_contracts.py), the
        connect is cancelled, and the session closed."""
        opening = asyncio.ensure_future(connect(**kwargs).__aenter__())  # type: ignore[arg-type]
        try:
            return await asyncio.shield(opening)
        except BaseException:
            await _abandon(opening)
            raise

    async def open(self, conversation_id: str | None = None) -> VoiceLiveConnection:
        """A new connection; in agent mode, continuing the agent conversation `conversation_id` if given."""
        settings = self._settings
        extra: dict = {"api_version": settings.api_version} if settings.api_version else {}
        if settings.agent is not None:
            # The agent brings its own model; the SDK sends agent-name, agent-project-name, ... in the query.
            extra.update(agent_name=settings.agent.name, project_name=settings.agent.project)
            if settings.agent.version:
                extra["agent_version"] = settings.agent.version
            if conversation_id:
                extra["conversation_id"] = conversation_id
        else:
            extra["model"] = settings.model
        for attempt in (1, 2):
            try:
                credential = await self._provider.get()
            except CredentialError as exc:
                raise UpstreamError(ErrorCode.UPSTREAM_AUTH, str(exc)) from exc
            try:
                async with asyncio.timeout(settings.connect_timeout_s):
                    return await self._connect(
                        credential=credential,
                        endpoint=self.endpoint,
                        connection_options={"close_timeout": 1.5},
                        **extra,
                    )
            except ClientAuthenticationError as exc:
                # Keyless without a usable identity (no `az login`, no managed identity): the SDK asks
                # the credential for a token inside connect.
                log.warning("event=upstream.auth_failed host=%s credential=%r cause=%s: %s", self._host,
                            self._provider.source, type(exc).__name__, _first_line(exc))
                raise UpstreamError(
                    ErrorCode.UPSTREAM_AUTH,
                    f"The app could not get a Microsoft Entra ID token for Voice Live ({_first_line(exc)}). "
                    + KEYLESS_FIX,
                ) from exc
            except TimeoutError:
                log.warning("event=upstream.connect_failed host=%s cause=timeout after %ss", self._host,
                            settings.connect_timeout_s)
                raise UpstreamError(
                    ErrorCode.UPSTREAM_TIMEOUT,
                    f"Voice Live at {self._host} did not answer within {settings.connect_timeout_s:g} s.",
                ) from None
            except VoiceLiveConnectionError as exc:
                status = _http_status(exc)
                if status in (401, 403):
                    if attempt == 1 and await self._provider.on_unauthorized():
                        log.info("event=upstream.auth_retry status=%s", status)
                        continue
                    log.warning("event=upstream.auth_failed host=%s credential=%r status=%s", self._host,
                                self._provider.source, status)
                    raise UpstreamError(
                        ErrorCode.UPSTREAM_AUTH,
                        f"Voice Live rejected the app's credentials (HTTP {status}, {self._provider.source}). "
                        "Check the API key or the identity's Cognitive Services User / Azure AI User roles"
                        + (" (agent mode: Azure AI User on the agent's project)." if settings.agent_mode else "."),
                    ) from exc
                if status == 429:
                    raise UpstreamBusy(
                        f"Voice Live at {self._host} is at its connection quota (HTTP 429).", retry_after(exc)
                    ) from exc
                message = (f"Could not connect to Voice Live at {self._host} (HTTP {status})." if status
                           else describe_failure(exc, self._host))
                self._log_failure(exc, status)
                raise UpstreamError(ErrorCode.UPSTREAM_UNAVAILABLE, message) from exc
            except OSError as exc:
                self._log_failure(exc, None)
                raise UpstreamError(ErrorCode.UPSTREAM_UNAVAILABLE, describe_failure(exc, self._host)) from exc
        raise AssertionError("unreachable")

    def _log_failure(self, exc: BaseException, status: int | None) -> None:
        cause = _cause(exc)
        log.warning("event=upstream.connect_failed host=%s status=%s cause=%s: %s", self._host, status,
                    type(cause).__name__, _first_line(cause))


_APPEND_HEAD = '{"type":"input_audio_buffer.append","audio":"'


async def send_audio(conn: VoiceLiveConnection, data: str) -> None:
    """Hot path, 50 times a second per tab: the tab's base64 goes upstream in the append event the SDK
    would build, without the SDK's JSON re-encoding of it (protocol.parse validated it: plain base64,
    nothing to escape). Written straight to the SDK's aiohttp WebSocket (`_connection`, checked by
    tests/serving/test_contracts.py); failures surface as the SDK's own ConnectionError."""
    ws = getattr(conn, "_connection", None)
    if ws is None:
        await conn.send({"type": "input_audio_buffer.append", "audio": data})
        return
    try:
        await ws.send_str(_APPEND_HEAD + data + '"}')
    except (aiohttp.ClientError, RuntimeError, ConnectionError) as exc:
        raise VoiceLiveConnectionError(f"Failed to send event: {exc}") from exc


def sdk_session_of(opening: asyncio.Future) -> aiohttp.ClientSession | None:
    """The aiohttp session the SDK's suspended connect has created so far, if any."""
    coro = opening.get_coro() if isinstance(opening, asyncio.Task) else None
    frame = getattr(coro, "cr_frame", None)
    session = frame.f_locals.get("session") if frame is not None else None
    return session if isinstance(session, aiohttp.ClientSession) else None


async def _abandon(opening: asyncio.Future) -> None:
    """Nobody wants this connect any more: stop it and close whatever it opened."""
    session = None if opening.done() else sdk_session_of(opening)
    opening.cancel()
    try:
        conn = await opening
    except BaseException:  # cancelled or failed: nothing was handed out
        conn = None
    try:
        if conn is not None:
            await conn.close()
        elif session is not None and not session.closed:
            await session.close()
    except Exception as exc:  # best effort: nobody is waiting for this connection
        log.info("event=upstream.abandon_close_failed detail=%s", exc)
