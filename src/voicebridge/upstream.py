"""The upstream connection: session configuration and opening a Voice Live connection with the SDK.

Failures are turned into `UpstreamError`s whose code and message go to the tab as they are, so a bad
key shows up as "credentials" within seconds instead of a hang.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlparse

from azure.ai.voicelive.aio import ConnectionError as VoiceLiveConnectionError
from azure.ai.voicelive.aio import VoiceLiveConnection, connect
from azure.ai.voicelive.models import (
    AudioInputTranscriptionOptions,
    AzureStandardVoice,
    InputAudioFormat,
    Modality,
    OutputAudioFormat,
    RequestSession,
    ServerVad,
)

from .credentials import CredentialError, CredentialProvider
from .settings import Settings

log = logging.getLogger("voicebridge.upstream")


class UpstreamError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def session_config(settings: Settings) -> RequestSession:
    voice = AzureStandardVoice(name=settings.voice) if settings.voice_is_azure else settings.voice
    return RequestSession(
        modalities=[Modality.TEXT, Modality.AUDIO],
        instructions=settings.instructions,
        voice=voice,
        input_audio_format=InputAudioFormat.PCM16,
        output_audio_format=OutputAudioFormat.PCM16,
        turn_detection=ServerVad(
            threshold=settings.vad_threshold,
            prefix_padding_ms=settings.vad_prefix_padding_ms,
            silence_duration_ms=settings.vad_silence_duration_ms,
            create_response=True,
            interrupt_response=True,
        ),
        input_audio_transcription=AudioInputTranscriptionOptions(model=settings.transcription_model),
    )


def _http_status(exc: BaseException) -> int | None:
    # The SDK wraps aiohttp's WSServerHandshakeError, which carries the HTTP status.
    while exc is not None:
        status = getattr(exc, "status", None)
        if isinstance(status, int):
            return status
        exc = exc.__cause__  # type: ignore[assignment]
    return None


class Connector:
    """Opens one upstream connection per call; shared by every session of the process."""

    def __init__(self, settings: Settings, provider: CredentialProvider, endpoint: str):
        self._settings = settings
        self._provider = provider
        self.endpoint = endpoint
        self._host = urlparse(endpoint).netloc
        self._abandoned: set[asyncio.Task[VoiceLiveConnection]] = set()
        self._closing: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        if self._abandoned:
            # Connects whose session ended while they were under way: let them finish briefly.
            await asyncio.wait(self._abandoned, timeout=1.0)
            for task in self._abandoned:
                task.cancel()
        await self._provider.close()

    async def _connect(self, **kwargs: object) -> VoiceLiveConnection:
        """The SDK's connect, safe to cancel. The SDK creates an aiohttp session per connection and
        closes it only when the handshake fails with a ClientError, not when the connect is cancelled
        (the tab left or stopped while connecting, or our timeout): that leaks the session ("Unclosed
        client session"). So the connect runs as its own task that a cancellation does not interrupt;
        once it finishes, a connection nobody wants any more is closed, session included."""
        opening = asyncio.ensure_future(connect(**kwargs).__aenter__())  # type: ignore[arg-type]
        try:
            return await asyncio.shield(opening)
        except BaseException:
            self._abandoned.add(opening)
            opening.add_done_callback(self._close_abandoned)
            raise

    def _close_abandoned(self, task: asyncio.Task[VoiceLiveConnection]) -> None:
        self._abandoned.discard(task)
        if task.cancelled() or task.exception() is not None:
            return
        conn = task.result()
        closing = asyncio.get_running_loop().create_task(_close_quietly(conn))
        self._closing.add(closing)  # a task nobody references may be collected before it runs
        closing.add_done_callback(self._closing.discard)

    async def open(self) -> VoiceLiveConnection:
        settings = self._settings
        extra = {"api_version": settings.api_version} if settings.api_version else {}
        for attempt in (1, 2):
            try:
                credential = await self._provider.get()
            except CredentialError as exc:
                raise UpstreamError("upstream_auth", str(exc)) from exc
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
                    "upstream_timeout",
                    f"Voice Live at {self._host} did not answer within {settings.connect_timeout_s:g} s.",
                ) from None
            except VoiceLiveConnectionError as exc:
                status = _http_status(exc)
                if status in (401, 403):
                    if attempt == 1 and await self._provider.on_unauthorized():
                        log.info("event=upstream.auth_retry status=%s", status)
                        continue
                    raise UpstreamError(
                        "upstream_auth",
                        f"Voice Live rejected the app's credentials (HTTP {status}, {self._provider.source}). "
                        "Check the API key or the identity's Cognitive Services User / Azure AI User roles.",
                    ) from exc
                detail = f"HTTP {status}" if status else str(exc.__cause__ or exc)
                raise UpstreamError(
                    "upstream_unavailable", f"Could not connect to Voice Live at {self._host} ({detail})."
                ) from exc
            except OSError as exc:
                raise UpstreamError(
                    "upstream_unavailable", f"Could not connect to Voice Live at {self._host} ({exc})."
                ) from exc
        raise AssertionError("unreachable")


async def _close_quietly(conn: VoiceLiveConnection) -> None:
    try:
        await conn.close()
    except Exception as exc:  # nobody is waiting for this connection; closing it is best effort
        log.info("event=upstream.abandoned_close_failed detail=%s", exc)
