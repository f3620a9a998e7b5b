"""The upstream connection: session configuration and opening a Voice Live connection with the SDK.

Failures are turned into `UpstreamError`s whose code and message go to the tab as they are, so a bad
key shows up as "credentials" within seconds instead of a hang.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlparse

import aiohttp
from azure.ai.voicelive.aio import ConnectionError as VoiceLiveConnectionError
from azure.ai.voicelive.aio import VoiceLiveConnection, connect
from azure.ai.voicelive.models import (
    AudioEchoCancellation,
    AudioInputTranscriptionOptions,
    AudioNoiseReduction,
    AzureSemanticDetection,
    AzureSemanticVad,
    AzureSemanticVadMultilingual,
    AzureStandardVoice,
    FunctionTool,
    InputAudioFormat,
    Modality,
    OutputAudioFormat,
    RequestSession,
    ServerVad,
)

from .credentials import CredentialError, CredentialProvider
from .protocol import ErrorCode
from .settings import Settings

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
    "azure_semantic_vad_multilingual": AzureSemanticVadMultilingual,
}


def session_config(settings: Settings, tools: list[dict] | None = None) -> RequestSession:
    """The session.update every upstream connection of this process sends. Optional features the operator
    did not set are left out, so the service's own defaults apply to them."""
    voice = AzureStandardVoice(name=settings.voice) if settings.voice_is_azure else settings.voice
    turn_options: dict = {}
    if settings.end_of_utterance:
        turn_options["end_of_utterance_detection"] = AzureSemanticDetection(model=settings.end_of_utterance)
    optional: dict = {}
    if settings.noise_reduction:
        optional["input_audio_noise_reduction"] = AudioNoiseReduction(type=settings.noise_reduction)
    if settings.echo_cancellation:
        optional["input_audio_echo_cancellation"] = AudioEchoCancellation()
    if settings.temperature is not None:
        optional["temperature"] = settings.temperature
    if settings.max_response_tokens:
        optional["max_response_output_tokens"] = settings.max_response_tokens
    if tools:
        optional["tools"] = [FunctionTool(name=t["name"], description=t["description"], parameters=t["parameters"])
                             for t in tools]
        optional["tool_choice"] = "auto"
    return RequestSession(
        modalities=[Modality.TEXT, Modality.AUDIO],
        instructions=settings.instructions,
        voice=voice,
        input_audio_format=InputAudioFormat.PCM16,
        output_audio_format=OutputAudioFormat.PCM16,
        turn_detection=_TURN_DETECTION[settings.turn_detection](
            threshold=settings.vad_threshold,
            prefix_padding_ms=settings.vad_prefix_padding_ms,
            silence_duration_ms=settings.vad_silence_duration_ms,
            create_response=True,
            interrupt_response=True,
            **turn_options,
        ),
        input_audio_transcription=AudioInputTranscriptionOptions(model=settings.transcription_model),
        **optional,
    )


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

    async def open(self) -> VoiceLiveConnection:
        settings = self._settings
        extra = {"api_version": settings.api_version} if settings.api_version else {}
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
                        model=settings.model,
                        connection_options={"close_timeout": 1.5},
                        **extra,
                    )
            except TimeoutError:
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
                    raise UpstreamError(
                        ErrorCode.UPSTREAM_AUTH,
                        f"Voice Live rejected the app's credentials (HTTP {status}, {self._provider.source}). "
                        "Check the API key or the identity's Cognitive Services User / Azure AI User roles.",
                    ) from exc
                if status == 429:
                    raise UpstreamBusy(
                        f"Voice Live at {self._host} is at its connection quota (HTTP 429).", retry_after(exc)
                    ) from exc
                detail = f"HTTP {status}" if status else str(exc.__cause__ or exc)
                raise UpstreamError(
                    ErrorCode.UPSTREAM_UNAVAILABLE, f"Could not connect to Voice Live at {self._host} ({detail})."
                ) from exc
            except OSError as exc:
                raise UpstreamError(
                    ErrorCode.UPSTREAM_UNAVAILABLE, f"Could not connect to Voice Live at {self._host} ({exc})."
                ) from exc
        raise AssertionError("unreachable")


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
