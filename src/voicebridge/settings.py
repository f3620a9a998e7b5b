"""Configuration: one typed, immutable object read once from the environment.

The lab's variable names are kept (AZURE_VOICE_LIVE_*, VOICE_LIVE_*) so its users feel at home; the
bridge's own knobs are VOICEBRIDGE_*. A bad value stops startup with a message that names the variable
and what it accepts, instead of failing later inside a conversation.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TypeVar
from urllib.parse import urlparse

T = TypeVar("T")

# Voices the realtime models offer by name; anything with a dash is an Azure neural voice.
OPENAI_VOICES = ("alloy", "ash", "ballad", "cedar", "coral", "echo", "marin", "sage", "shimmer", "verse")
_AZURE_VOICE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]+)+(:[A-Za-z0-9]+)?$")
TELEMETRY_MODES = ("", "console", "none")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
TURN_DETECTION_TYPES = ("server_vad", "azure_semantic_vad", "azure_semantic_vad_multilingual")
END_OF_UTTERANCE_MODELS = ("", "semantic_detection_v1")
NOISE_REDUCTION_TYPES = ("", "azure_deep_noise_suppression", "near_field", "far_field")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")

DEFAULT_INSTRUCTIONS = (
    "You are a helpful, friendly voice assistant. Keep answers short and conversational, "
    "and stop talking as soon as the user interrupts."
)


def cpu_count() -> int:
    """The cores this process may run on (a container's CPU set, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class SettingsError(ValueError):
    """A configuration value is missing or invalid; the message is meant for the operator."""

    def __init__(self, variable: str, problem: str):
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclass(frozen=True, slots=True)
class Settings:
    # Voice Live: AZURE_VOICE_LIVE_ENDPOINT as given, one endpoint or several comma-separated (each a
    # resource with its own quota, see `endpoints`); AZURE_VOICE_LIVE_API_KEY likewise one key per endpoint.
    endpoint: str | None = None
    api_key: str | None = None
    model: str = "gpt-realtime"
    voice: str = "en-US-AvaNeural"
    instructions: str = DEFAULT_INSTRUCTIONS
    api_version: str | None = None
    transcription_model: str = "azure-speech"
    vad_threshold: float = 0.5
    vad_prefix_padding_ms: int = 300
    vad_silence_duration_ms: int = 500
    # Voice Live's audio front end; unset values are not sent, so the service's defaults apply.
    turn_detection: str = "server_vad"
    end_of_utterance: str = ""  # only with a semantic turn detection type
    noise_reduction: str = ""
    echo_cancellation: bool = False
    temperature: float | None = None
    max_response_tokens: int = 0  # max_response_output_tokens; 0: the service's default ("inf")

    # Function tools: importable modules whose @tool functions the agent may call
    tools: tuple[str, ...] = ()
    tool_timeout_s: float = 10.0

    # Serving
    host: str = "127.0.0.1"
    port: int = 8000
    # One worker process per core, each with its own event loop holding every socket it accepted.
    workers: int = 0  # 0: one per core (see cpu_count)
    # Per worker: sessions (about what one core carries, see docs/performance.md) and open sockets.
    max_sessions: int = 1000
    max_connections: int = 10_000
    # A tab without an upstream session is closed after this; one from which nothing arrived (no frame,
    # no pong to the keepalive pings) after this is gone and its upstream closed.
    tab_no_session_s: float = 15.0
    tab_silence_s: float = 30.0
    # A request (head and body) must arrive within this; an idle keep-alive connection ends sooner.
    request_timeout_s: float = 10.0
    log_level: str = "INFO"
    # Origins besides the page's own that may open /ws (e.g. a custom domain behind a proxy that
    # rewrites Host). Browsers always send Origin, so this stops other sites from using the bridge.
    allowed_origins: tuple[str, ...] = ()

    # Resilience
    connect_timeout_s: float = 10.0
    reconnect_window_s: float = 30.0
    drain_timeout_s: float = 10.0
    # Continuity (issue 12): the conversation the bridge replays, and how long a lost tab may resume.
    history_items: int = 40
    resume_window_s: float = 30.0

    # Who a tab is (identity.py): trust App Service Authentication's principal headers, and the
    # front end's X-Forwarded-For. Off by default: a client could forge either.
    trust_easy_auth: bool = False
    trust_forwarded: bool = False
    # Limits (issue 13, session/limits.py); 0 turns one off.
    max_sessions_per_user: int = 3
    max_sessions_per_address: int = 20
    max_session_s: float = 1800.0
    idle_s: float = 300.0
    max_audio_rate: float = 1.5  # seconds of uplink audio per second, after a 2 s allowance

    # The service's quota per endpoint, for this instance (k instances: quota/k; pacer.py); 0 turns one
    # off. Tests and benchmarks shorten the window (a minute) to run the same ratios in seconds.
    upstream_connects_per_minute: int = 30
    upstream_tokens_per_minute: int = 100_000
    upstream_quota_window_s: float = 60.0
    max_session_tokens: int = 1_000_000  # then session_token_limit: ~20-25 minutes of non-stop talk

    # Built-in emulator (used when no endpoint is configured)
    emulator_port: int = 0

    # Azure operations (Key Vault, managed identity, telemetry)
    key_vault_endpoint: str | None = None
    key_vault_secret_name: str = "voice-live-api-key"
    client_id: str | None = None
    appinsights_connection_string: str | None = None
    telemetry: str = ""
    telemetry_transcripts: bool = False

    # Deployment: the tag of the image this process runs, reported by /healthz so a rollout's gate can
    # tell the new container from an old one that is still healthy.
    image_tag: str = ""

    @property
    def use_emulator(self) -> bool:
        return not self.endpoint

    @property
    def endpoints(self) -> tuple[str, ...]:
        return _split(self.endpoint)

    def api_key_for(self, index: int) -> str | None:
        """The key of the endpoint at `index`: one key serves every endpoint, several go in order."""
        keys = _split(self.api_key)
        if len(keys) <= 1:
            return keys[0] if keys else None
        return keys[index] if index < len(keys) else None

    @property
    def voice_is_azure(self) -> bool:
        return "-" in self.voice

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        env = _Env(environ)
        d = cls()  # the defaults (a slotted dataclass has no class-level default attributes)
        settings = cls(
            endpoint=env.urls("AZURE_VOICE_LIVE_ENDPOINT"),
            api_key=env.text("AZURE_VOICE_LIVE_API_KEY"),
            model=env.text("VOICE_LIVE_MODEL") or d.model,
            voice=env.choice_voice("VOICE_LIVE_VOICE", d.voice),
            instructions=env.text("VOICE_LIVE_INSTRUCTIONS") or DEFAULT_INSTRUCTIONS,
            api_version=env.text("VOICE_LIVE_API_VERSION"),
            transcription_model=env.text("VOICE_LIVE_TRANSCRIPTION_MODEL") or d.transcription_model,
            vad_threshold=env.number("VOICE_LIVE_VAD_THRESHOLD", float, d.vad_threshold, 0.0, 1.0),
            vad_prefix_padding_ms=env.number(
                "VOICE_LIVE_VAD_PREFIX_PADDING_MS", int, d.vad_prefix_padding_ms, 0, 5000
            ),
            vad_silence_duration_ms=env.number(
                "VOICE_LIVE_VAD_SILENCE_DURATION_MS", int, d.vad_silence_duration_ms, 50, 10000
            ),
            turn_detection=env.choice("VOICE_LIVE_TURN_DETECTION", TURN_DETECTION_TYPES, d.turn_detection),
            end_of_utterance=env.choice("VOICE_LIVE_END_OF_UTTERANCE", END_OF_UTTERANCE_MODELS, d.end_of_utterance),
            noise_reduction=env.choice("VOICE_LIVE_NOISE_REDUCTION", NOISE_REDUCTION_TYPES, d.noise_reduction),
            echo_cancellation=env.flag("VOICE_LIVE_ECHO_CANCELLATION", d.echo_cancellation),
            temperature=env.number("VOICE_LIVE_TEMPERATURE", float, None, 0.6, 1.2),
            max_response_tokens=env.number("VOICE_LIVE_MAX_RESPONSE_TOKENS", int, d.max_response_tokens, 0, 4096),
            tools=env.modules("VOICEBRIDGE_TOOLS"),
            tool_timeout_s=env.number("VOICEBRIDGE_TOOL_TIMEOUT_SECONDS", float, d.tool_timeout_s, 0.1, 300.0),
            host=env.text("VOICEBRIDGE_HOST") or d.host,
            port=env.number("PORT", int, d.port, 0, 65535),
            workers=env.number("VOICEBRIDGE_WORKERS", int, d.workers, 0, 256),
            max_sessions=env.number("VOICEBRIDGE_MAX_SESSIONS", int, d.max_sessions, 1, 100000),
            max_connections=env.number("VOICEBRIDGE_MAX_CONNECTIONS", int, d.max_connections, 16, 1_000_000),
            tab_no_session_s=env.number("VOICEBRIDGE_TAB_IDLE_SECONDS", float, d.tab_no_session_s, 0.2, 3600.0),
            tab_silence_s=env.number("VOICEBRIDGE_TAB_SILENCE_SECONDS", float, d.tab_silence_s, 0.3, 3600.0),
            request_timeout_s=env.number("VOICEBRIDGE_REQUEST_SECONDS", float, d.request_timeout_s, 0.2, 300.0),
            log_level=env.choice("VOICEBRIDGE_LOG_LEVEL", LOG_LEVELS, d.log_level, upper=True),
            allowed_origins=env.origins("VOICEBRIDGE_ALLOWED_ORIGINS"),
            connect_timeout_s=env.number(
                "VOICEBRIDGE_CONNECT_TIMEOUT_SECONDS", float, d.connect_timeout_s, 0.5, 120.0
            ),
            reconnect_window_s=env.number(
                "VOICEBRIDGE_RECONNECT_SECONDS", float, d.reconnect_window_s, 0.0, 600.0
            ),
            drain_timeout_s=env.number("VOICEBRIDGE_DRAIN_SECONDS", float, d.drain_timeout_s, 0.5, 230.0),
            history_items=env.number("VOICEBRIDGE_HISTORY_ITEMS", int, d.history_items, 0, 500),
            resume_window_s=env.number("VOICEBRIDGE_RESUME_SECONDS", float, d.resume_window_s, 0.0, 600.0),
            trust_easy_auth=env.flag("VOICEBRIDGE_TRUST_EASY_AUTH", d.trust_easy_auth),
            trust_forwarded=env.flag("VOICEBRIDGE_TRUST_FORWARDED", d.trust_forwarded),
            max_sessions_per_user=env.number(
                "VOICEBRIDGE_MAX_SESSIONS_PER_USER", int, d.max_sessions_per_user, 0, 100000
            ),
            max_sessions_per_address=env.number(
                "VOICEBRIDGE_MAX_SESSIONS_PER_ADDRESS", int, d.max_sessions_per_address, 0, 100000
            ),
            max_session_s=env.number("VOICEBRIDGE_MAX_SESSION_SECONDS", float, d.max_session_s, 0.0, 604800.0),
            idle_s=env.number("VOICEBRIDGE_IDLE_SECONDS", float, d.idle_s, 0.0, 604800.0),
            max_audio_rate=env.number("VOICEBRIDGE_MAX_AUDIO_RATE", float, d.max_audio_rate, 0.0, 100000.0),
            upstream_connects_per_minute=env.number(
                "VOICEBRIDGE_UPSTREAM_CONNECTS_PER_MINUTE", int, d.upstream_connects_per_minute, 0, 100_000
            ),
            upstream_tokens_per_minute=env.number(
                "VOICEBRIDGE_UPSTREAM_TOKENS_PER_MINUTE", int, d.upstream_tokens_per_minute, 0, 100_000_000
            ),
            upstream_quota_window_s=env.number(
                "VOICEBRIDGE_UPSTREAM_QUOTA_WINDOW_SECONDS", float, d.upstream_quota_window_s, 1.0, 3600.0
            ),
            max_session_tokens=env.number("VOICEBRIDGE_MAX_SESSION_TOKENS", int, d.max_session_tokens, 0, 1_000_000_000),
            emulator_port=env.number("VOICEBRIDGE_EMULATOR_PORT", int, d.emulator_port, 0, 65535),
            key_vault_endpoint=env.url("AZURE_KEY_VAULT_ENDPOINT"),
            key_vault_secret_name=env.secret_name("VOICE_LIVE_KEY_SECRET_NAME", d.key_vault_secret_name),
            client_id=env.text("AZURE_CLIENT_ID"),
            appinsights_connection_string=env.text("APPLICATIONINSIGHTS_CONNECTION_STRING"),
            telemetry=env.choice("VOICEBRIDGE_TELEMETRY", TELEMETRY_MODES, d.telemetry),
            telemetry_transcripts=env.flag("VOICEBRIDGE_TELEMETRY_TRANSCRIPTS", d.telemetry_transcripts),
            image_tag=env.text("VOICEBRIDGE_IMAGE_TAG") or d.image_tag,
        )
        if settings.end_of_utterance and not settings.turn_detection.startswith("azure_semantic_vad"):
            raise SettingsError(
                "VOICE_LIVE_END_OF_UTTERANCE",
                "end-of-utterance detection needs a semantic turn detection: set VOICE_LIVE_TURN_DETECTION to "
                f"azure_semantic_vad or azure_semantic_vad_multilingual (it is {settings.turn_detection!r})",
            )
        _check_keys(settings)
        if settings.emulator_port and settings.worker_count > 1:
            raise SettingsError(
                "VOICEBRIDGE_EMULATOR_PORT",
                "a fixed emulator port needs VOICEBRIDGE_WORKERS=1 (each worker runs its own emulator)",
            )
        return settings

    @property
    def worker_count(self) -> int:
        return self.workers or cpu_count()

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def _check_keys(settings: Settings) -> None:
    keys = _split(settings.api_key)
    if len(keys) > 1 and len(keys) != len(settings.endpoints):
        raise SettingsError(
            "AZURE_VOICE_LIVE_API_KEY",
            f"holds {len(keys)} keys for {len(settings.endpoints)} endpoints: give one key for all, or one per "
            "endpoint in the order of AZURE_VOICE_LIVE_ENDPOINT",
        )


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())


class _Env:
    """Typed accessors that turn a bad value into a SettingsError naming the variable."""

    def __init__(self, environ: Mapping[str, str]):
        self._environ = environ

    def text(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def url(self, name: str) -> str | None:
        value = self.text(name)
        if value is None:
            return None
        parsed = urlparse(value)
        if parsed.scheme not in ("https", "http") or not parsed.netloc:
            raise SettingsError(name, f"must be an http(s) URL such as https://<name>.services.ai.azure.com/, got {value!r}")
        return value

    def urls(self, name: str) -> str | None:
        """One URL or several, comma-separated; kept as written (Settings.endpoints splits them)."""
        raw = self.text(name)
        if raw is None:
            return None
        for item in _split(raw):
            parsed = urlparse(item)
            if parsed.scheme not in ("https", "http") or not parsed.netloc:
                raise SettingsError(
                    name, f"must be http(s) URLs such as https://<name>.services.ai.azure.com/ (comma-separated), got {item!r}"
                )
        if len(set(_split(raw))) != len(_split(raw)):
            raise SettingsError(name, "lists the same endpoint twice")
        return raw

    def origins(self, name: str) -> tuple[str, ...]:
        raw = self.text(name)
        if raw is None:
            return ()
        origins = []
        for item in raw.split(","):
            parsed = urlparse(item.strip())
            if parsed.scheme not in ("https", "http") or not parsed.netloc or parsed.path not in ("", "/"):
                raise SettingsError(name, f"must be a comma-separated list of origins like https://voice.example.com, got {item.strip()!r}")
            origins.append(f"{parsed.scheme}://{parsed.netloc}".lower())
        return tuple(origins)

    def modules(self, name: str) -> tuple[str, ...]:
        raw = self.text(name)
        if raw is None:
            return ()
        names = tuple(item.strip() for item in raw.split(",") if item.strip())
        for item in names:
            if not _MODULE.match(item):
                raise SettingsError(name, f"must be comma-separated importable module names, got {item!r}")
        return names

    def number(self, name: str, kind: Callable[[str], T], default: T, low: T, high: T) -> T:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = kind(raw)
        except ValueError:
            raise SettingsError(name, f"must be a {kind.__name__} between {low} and {high}, got {raw!r}") from None
        if not low <= value <= high:  # type: ignore[operator]
            raise SettingsError(name, f"must be between {low} and {high}, got {raw!r}")
        return value

    def choice(self, name: str, allowed: tuple[str, ...], default: str, upper: bool = False) -> str:
        raw = self.text(name)
        if raw is None:
            return default
        value = raw.upper() if upper else raw.lower()
        if value not in allowed:
            shown = ", ".join(a for a in allowed if a) or "(empty)"
            raise SettingsError(name, f"must be one of {shown}, got {raw!r}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self.text(name)
        if raw is None:
            return default
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SettingsError(name, f"must be true or false, got {raw!r}")

    def choice_voice(self, name: str, default: str) -> str:
        raw = self.text(name)
        if raw is None:
            return default
        if "-" in raw:
            if _AZURE_VOICE.match(raw):
                return raw
            raise SettingsError(name, f"an Azure voice looks like en-US-AvaNeural, got {raw!r}")
        if raw.lower() in OPENAI_VOICES:
            return raw.lower()
        raise SettingsError(
            name, f"must be an Azure voice name (like en-US-AvaNeural) or one of {', '.join(OPENAI_VOICES)}, got {raw!r}"
        )

    def secret_name(self, name: str, default: str) -> str:
        raw = self.text(name)
        if raw is None:
            return default
        if not re.fullmatch(r"[0-9A-Za-z-]{1,127}", raw):
            raise SettingsError(name, f"a Key Vault secret name uses letters, digits and dashes, got {raw!r}")
        return raw
