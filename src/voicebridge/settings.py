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

from . import capabilities, mcp
from .capabilities import OPENAI_VOICES, REALTIME_NATIVE_VOICES
from .mcp import McpConfig, McpServer

T = TypeVar("T")

TELEMETRY_MODES = ("", "console", "none")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
TURN_DETECTION_TYPES = capabilities.TURN_DETECTION_TYPES
END_OF_UTTERANCE_MODELS = ("", *capabilities.END_OF_UTTERANCE_MODELS)
NOISE_REDUCTION_TYPES = ("", *capabilities.NOISE_REDUCTION_TYPES)
# The variable behind each field the capability table checks (capabilities.Problem.field).
_CAPABILITY_VARIABLES = {
    "transcription_model": "VOICE_LIVE_TRANSCRIPTION_MODEL",
    "noise_reduction": "VOICE_LIVE_NOISE_REDUCTION",
    "voice": "VOICE_LIVE_VOICE",
    "end_of_utterance": "VOICE_LIVE_END_OF_UTTERANCE",
    "vad_threshold": "VOICE_LIVE_VAD_THRESHOLD",
    "phrase_list": "VOICE_LIVE_PHRASE_LIST",
    "languages": "VOICE_LIVE_LANGUAGES",
    "temperature": "VOICE_LIVE_TEMPERATURE",
}
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
# Conversation (issue 24): BCP-47 tags like en-US, de-DE, zh-Hans-CN; the end-of-utterance sensitivity.
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
EOU_THRESHOLD_LEVELS = ("", "low", "medium", "high", "default")
DEFAULT_TOOL_FILLER = "One moment, I'm checking that."
DEFAULT_REPROMPT = "Are you still there?"
MAX_LINE_CHARS = 500  # a greeting, filler or re-prompt: one spoken line, not a speech
MAX_PHRASES, MAX_PHRASE_CHARS = 500, 100
MAX_LANGUAGES = 10

DEFAULT_INSTRUCTIONS = (
    "You are a helpful, friendly voice assistant. Keep answers short and conversational, "
    "and stop talking as soon as the user interrupts."
)


CGROUP_CPU_MAX = "/sys/fs/cgroup/cpu.max"


def cpu_count(cpu_max: str = CGROUP_CPU_MAX) -> int:
    """The cores this process may use: its CPU set, and fewer when its container has a CPU quota (cgroup v2
    `cpu.max`, "<quota> <period>" or "max <period>"), which is how Docker's --cpus and Kubernetes' limits
    cap a container without changing the CPU set it sees."""
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        cores = max(1, os.cpu_count() or 1)
    try:
        with open(cpu_max) as f:
            quota, period = f.read().split()[:2]
        if quota != "max" and int(period) > 0:
            # A quota of 1.5 cores runs two workers (each gets its share); 0.5 still runs one.
            cores = min(cores, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 here (macOS, cgroup v1), or no quota: the CPU set is the limit
    return cores


@dataclass(frozen=True, slots=True)
class AgentTarget:
    """The Foundry agent that answers in agent mode (VOICE_LIVE_AGENT_NAME, _PROJECT, _VERSION)."""

    name: str
    project: str
    version: str | None = None  # None: the agent's latest


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
    # Empty: the model family's default (capabilities.py). voice_type is the voice object's `type`.
    voice: str = ""
    voice_type: str = ""
    instructions: str = DEFAULT_INSTRUCTIONS
    api_version: str | None = None
    transcription_model: str = ""  # empty: the model family's default (gpt-realtime: gpt-4o-transcribe)
    # Voice Live's audio front end; unset (None, empty) values are not sent, so the service's defaults
    # apply (they change: prefix padding is 400 / 420 ms on newer models, not the 300 we once sent).
    vad_threshold: float | None = None
    vad_prefix_padding_ms: int | None = None
    vad_silence_duration_ms: int | None = None
    turn_detection: str = "server_vad"
    end_of_utterance: str = ""  # with server_vad or a semantic type, on the models that support it
    noise_reduction: str = ""
    echo_cancellation: bool = False
    temperature: float | None = None
    max_response_tokens: int = 0  # max_response_output_tokens; 0: the service's default ("inf")

    # Function tools: importable modules whose @tool functions the agent may call
    tools: tuple[str, ...] = ()
    tool_timeout_s: float = 10.0

    # Agent mode (docs/agent.md; None: a model answers) and MCP tool servers (docs/mcp.md).
    agent: AgentTarget | None = None
    mcp_config: McpConfig = McpConfig()

    # Serving
    host: str = "127.0.0.1"
    port: int = 8000
    # In a GitHub codespace (it sets CODESPACE_NAME and GITHUB_CODESPACES_PORT_FORWARDING_DOMAIN), the
    # host name its port forward gives the page: the loopback-only host rule serves it too (app.py).
    codespace: str = ""
    codespaces_domain: str = ""
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
    # A worker whose event loop has not run its heartbeat for this long is replaced by gunicorn (worker.py).
    worker_timeout_s: int = 30
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

    # Conversation (issue 24). Greeting: "" none, "auto" the model's, else these words. 0: filler/re-prompt off.
    greeting: str = ""
    tool_filler_ms: int = 1200
    tool_filler: str = DEFAULT_TOOL_FILLER
    reprompt_s: float = 20.0
    reprompt: str = DEFAULT_REPROMPT
    languages: tuple[str, ...] = ()  # BCP-47; the first is the page's
    phrase_list: tuple[str, ...] = ()
    remove_filler_words: bool | None = None  # None: not sent (semantic VAD only)
    eou_threshold_level: str = ""
    eou_timeout_ms: int | None = None
    # Deployment: the tag of the image this process runs, reported by /healthz so a rollout's gate can
    # tell the new container from an old one that is still healthy.
    image_tag: str = ""

    @property
    def use_emulator(self) -> bool:
        return not self.endpoint

    @property
    def agent_mode(self) -> bool:
        return self.agent is not None

    @property
    def family(self) -> capabilities.Family | None:
        return capabilities.family_of(self.model, agent=self.agent_mode)

    @property
    def transcription(self) -> str:
        """The transcription model sessions use: the operator's, else the model family's default."""
        if self.transcription_model:
            return self.transcription_model
        fam = self.family
        return fam.default_transcription if fam is not None else "azure-speech"

    @property
    def voice_choice(self) -> tuple[str, str]:
        """(type, name) of the voice sessions speak with: the operator's, else the family's default."""
        if self.voice:
            return self.voice_type or capabilities.voice_kind(self.voice) or capabilities.AZURE_STANDARD, self.voice
        fam = self.family or capabilities.family("cascaded")
        return fam.default_voice

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
        return self.voice_choice[0] in capabilities.AZURE_VOICES

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        return _read(environ)

    @property
    def forwarded_host(self) -> str:
        """The codespace's forwarded host name for this port ("<codespace>-<port>.app.github.dev"), or ""."""
        if not (self.codespace and self.codespaces_domain):
            return ""
        return f"{self.codespace}-{self.port}.{self.codespaces_domain}".lower()

    @property
    def worker_count(self) -> int:
        return self.workers or cpu_count()

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def _read(environ: Mapping[str, str]) -> Settings:
    """Settings.from_env: every variable read once, then the combinations checked."""
    env = _Env(environ)
    d = Settings()  # the defaults (a slotted dataclass has no class-level default attributes)
    settings = Settings(
        endpoint=env.urls("AZURE_VOICE_LIVE_ENDPOINT"),
        api_key=env.text("AZURE_VOICE_LIVE_API_KEY"),
        model=env.text("VOICE_LIVE_MODEL") or d.model,
        voice=(voice := env.choice_voice("VOICE_LIVE_VOICE"))[1],
        voice_type=voice[0],
        instructions=env.text("VOICE_LIVE_INSTRUCTIONS") or DEFAULT_INSTRUCTIONS,
        api_version=env.text("VOICE_LIVE_API_VERSION"),
        transcription_model=env.text("VOICE_LIVE_TRANSCRIPTION_MODEL") or d.transcription_model,
        vad_threshold=env.number("VOICE_LIVE_VAD_THRESHOLD", float, d.vad_threshold, 0.01, 0.99),
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
        temperature=env.number("VOICE_LIVE_TEMPERATURE", float, None, *capabilities.TEMPERATURE),
        max_response_tokens=env.number("VOICE_LIVE_MAX_RESPONSE_TOKENS", int, d.max_response_tokens, 0, 4096),
        tools=env.modules("VOICEBRIDGE_TOOLS"),
        tool_timeout_s=env.number("VOICEBRIDGE_TOOL_TIMEOUT_SECONDS", float, d.tool_timeout_s, 0.1, 300.0),
        agent=_agent_target(env),
        mcp_config=_mcp_config(env),
        host=env.text("VOICEBRIDGE_HOST") or d.host,
        port=env.number("PORT", int, d.port, 0, 65535),
        codespace=env.text("CODESPACE_NAME") or "",
        codespaces_domain=env.text("GITHUB_CODESPACES_PORT_FORWARDING_DOMAIN") or "",
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
        worker_timeout_s=env.number("VOICEBRIDGE_WORKER_TIMEOUT_SECONDS", int, d.worker_timeout_s, 2, 600),
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
        **_conversation_from_env(env, d),
    )
    _check_agent(settings, env)
    check_capabilities(settings)
    _check_conversation(settings)
    _check_mcp(settings)
    _check_keys(settings)
    if settings.emulator_port and settings.worker_count > 1:
        raise SettingsError(
            "VOICEBRIDGE_EMULATOR_PORT",
            "a fixed emulator port needs VOICEBRIDGE_WORKERS=1 (each worker runs its own emulator)",
        )
    return settings


def _conversation_from_env(env: _Env, d: Settings) -> dict:
    """The conversation's variables (issue 24)."""
    return {
        "greeting": env.line("VOICEBRIDGE_GREETING", d.greeting),
        "tool_filler_ms": env.number("VOICEBRIDGE_TOOL_FILLER_MS", int, d.tool_filler_ms, 0, 60000),
        "tool_filler": env.line("VOICEBRIDGE_TOOL_FILLER_TEXT", d.tool_filler),
        "reprompt_s": env.number("VOICEBRIDGE_REPROMPT_SECONDS", float, d.reprompt_s, 0.0, 3600.0),
        "reprompt": env.line("VOICEBRIDGE_REPROMPT_TEXT", d.reprompt),
        "languages": env.languages("VOICE_LIVE_LANGUAGES"),
        "phrase_list": env.phrases("VOICE_LIVE_PHRASE_LIST"),
        "remove_filler_words": env.flag("VOICE_LIVE_REMOVE_FILLER_WORDS", None),
        "eou_threshold_level": env.choice(
            "VOICE_LIVE_END_OF_UTTERANCE_THRESHOLD", EOU_THRESHOLD_LEVELS, d.eou_threshold_level
        ),
        "eou_timeout_ms": env.number("VOICE_LIVE_END_OF_UTTERANCE_TIMEOUT_MS", int, None, 0, 10000),
    }


def _check_conversation(settings: Settings) -> None:
    """The turn-taking knobs only mean something with the feature they tune."""
    semantic = settings.turn_detection.startswith("azure_semantic_vad")
    if settings.remove_filler_words is not None and not semantic:
        raise SettingsError(
            "VOICE_LIVE_REMOVE_FILLER_WORDS",
            f"filler-word removal is part of the semantic VAD: set VOICE_LIVE_TURN_DETECTION to "
            f"azure_semantic_vad or azure_semantic_vad_multilingual (it is {settings.turn_detection!r})",
        )
    for variable, value in (("VOICE_LIVE_END_OF_UTTERANCE_THRESHOLD", settings.eou_threshold_level),
                            ("VOICE_LIVE_END_OF_UTTERANCE_TIMEOUT_MS", settings.eou_timeout_ms)):
        if value not in ("", None) and not settings.end_of_utterance:
            raise SettingsError(variable, "tunes end-of-utterance detection: set VOICE_LIVE_END_OF_UTTERANCE too")
    english_only = settings.turn_detection.endswith("_en") or settings.end_of_utterance.endswith("_en")
    if english_only and any(not tag.lower().startswith("en") for tag in settings.languages):
        raise SettingsError(
            "VOICE_LIVE_LANGUAGES",
            f"{', '.join(settings.languages)} needs the multilingual turn detection, not the English-only "
            f"{settings.turn_detection if settings.turn_detection.endswith('_en') else settings.end_of_utterance}",
        )


def capability_problems(settings: Settings) -> list[capabilities.Problem]:
    return capabilities.problems(settings.family, capabilities.Choice(
        transcription_model=settings.transcription,
        noise_reduction=settings.noise_reduction or None,
        voice_kind=settings.voice_choice[0],
        turn_detection=settings.turn_detection,
        end_of_utterance=end_of_utterance_model(settings) or None,
        vad_threshold=settings.vad_threshold,
        phrase_list=bool(settings.phrase_list),
        languages=settings.languages,
        temperature=settings.temperature,
    ))


def check_capabilities(settings: Settings) -> None:
    """Refuse a combination the model's family does not support, naming the variables and what works."""
    found = capability_problems(settings)
    if not found:
        return
    problem = found[0]
    variable = _CAPABILITY_VARIABLES[problem.field]
    value = {"transcription_model": settings.transcription, "voice": settings.voice_choice[1],
             "phrase_list": ",".join(settings.phrase_list), "languages": ",".join(settings.languages)}.get(
        problem.field, getattr(settings, problem.field, ""))
    default = " (the default)" if problem.field == "transcription_model" and not settings.transcription_model else ""
    raise SettingsError(
        variable,
        f"{value!r}{default} does not work with VOICE_LIVE_MODEL={settings.model}: {problem.message}; "
        f"use one of: {', '.join(problem.accepted)}",
    )


def tool_filler_by_service(settings: Settings) -> bool:
    """Voice Live speaks the tool filler itself (interim_response): only cascaded models with Azure voices
    do (Voice Live how-to, interim responses); elsewhere the bridge says it."""
    fam = settings.family
    return bool(settings.tool_filler_ms) and settings.voice_is_azure and fam is not None and fam.interim_response


# An Azure voice that speaks every language the semantic turn detection knows, with the accent
# prefer_locales asks for: the default voice when the first configured language is not English.
MULTILINGUAL_VOICE = "en-US-AvaMultilingualNeural"


def spoken_voice(settings: Settings) -> tuple[str, str]:
    """(type, name) of the voice sessions speak with: the operator's; else the family's default, which
    follows the first of VOICE_LIVE_LANGUAGES when that is not English (an English-only default voice
    would read another language badly)."""
    kind, name = settings.voice_choice
    first = settings.languages[0].lower() if settings.languages else "en"
    if not settings.voice and kind == capabilities.AZURE_STANDARD and not first.startswith("en"):
        return kind, MULTILINGUAL_VOICE
    return kind, name


def _multilingual(settings: Settings) -> bool:
    """A language besides English is expected."""
    return any(not tag.lower().startswith("en") for tag in settings.languages)


def turn_detection_type(settings: Settings) -> str:
    """The turn detection sent: azure_semantic_vad becomes its multilingual variant for other languages (the
    default variant "primarily supports English", Voice Live how-to)."""
    if _multilingual(settings) and settings.turn_detection == "azure_semantic_vad":
        return "azure_semantic_vad_multilingual"
    return settings.turn_detection


def end_of_utterance_model(settings: Settings) -> str:
    """Likewise for end-of-utterance detection: semantic_detection_v1 supports English only."""
    if _multilingual(settings) and settings.end_of_utterance == "semantic_detection_v1":
        return "semantic_detection_v1_multilingual"
    return settings.end_of_utterance
# What agent mode refuses: the agent defines these in Foundry (docs/agent.md).
_NOT_WITH_AGENT = (
    ("VOICE_LIVE_INSTRUCTIONS", "the agent's instructions are defined in Foundry"),
    ("VOICE_LIVE_MODEL", "the agent's model is defined in Foundry"),
    ("VOICE_LIVE_TEMPERATURE", "the agent's model settings are defined in Foundry"),
    ("VOICEBRIDGE_TOOLS", "the agent's tools are defined in Foundry"),
    ("VOICEBRIDGE_MCP_SERVERS", "give the agent its MCP tools in Foundry"),
)


def _agent_target(env: _Env) -> AgentTarget | None:
    name, project = env.text("VOICE_LIVE_AGENT_NAME"), env.text("VOICE_LIVE_AGENT_PROJECT")
    version = env.text("VOICE_LIVE_AGENT_VERSION")
    if name is None and project is None:
        if version is not None:
            raise SettingsError("VOICE_LIVE_AGENT_VERSION", "needs VOICE_LIVE_AGENT_NAME and VOICE_LIVE_AGENT_PROJECT")
        return None
    if name is None or project is None:
        missing = "VOICE_LIVE_AGENT_NAME" if name is None else "VOICE_LIVE_AGENT_PROJECT"
        raise SettingsError(missing, "agent mode needs both VOICE_LIVE_AGENT_NAME and VOICE_LIVE_AGENT_PROJECT")
    return AgentTarget(name, project, version)


def _mcp_config(env: _Env) -> McpConfig:
    d = McpConfig()
    return McpConfig(
        servers=env.mcp_servers("VOICEBRIDGE_MCP_SERVERS"),
        approval_s=env.number("VOICEBRIDGE_APPROVAL_SECONDS", float, d.approval_s, 1.0, 600.0),
        show_arguments=env.flag("VOICEBRIDGE_APPROVAL_ARGUMENTS", d.show_arguments),
    )


def _check_agent(settings: Settings, env: _Env) -> None:
    if settings.agent is None:
        return
    for variable, why in _NOT_WITH_AGENT:
        if env.text(variable) is not None:
            raise SettingsError(
                variable, f"does not apply in agent mode (VOICE_LIVE_AGENT_NAME={settings.agent.name}): {why}; unset it"
            )


def _check_mcp(settings: Settings) -> None:
    servers = settings.mcp_config.servers
    if not servers:
        return
    family = settings.family
    if family is not None and not family.mcp:  # the capability table (capabilities.py)
        raise SettingsError(
            "VOICEBRIDGE_MCP_SERVERS", f"{family.name} models ({settings.model}) cannot use MCP tools; choose a gpt-realtime or "
            "gpt-4o/gpt-4.1/gpt-5 model with VOICE_LIVE_MODEL, or unset VOICEBRIDGE_MCP_SERVERS"
        )
    for server in servers:
        on_this_machine = all(mcp.is_loopback(urlparse(e).hostname or "") for e in settings.endpoints)
        if server.loopback and not settings.use_emulator and not on_this_machine:
            raise SettingsError(
                "VOICEBRIDGE_MCP_SERVERS", f"server {server.label!r} is on a loopback address ({server.url}): Voice Live "
                "calls MCP servers from Azure, so only an emulator on this machine can reach it; use a public https URL"
            )
        if server.header_secrets and not settings.key_vault_endpoint:
            raise SettingsError(
                "VOICEBRIDGE_MCP_SERVERS", f"server {server.label!r} takes its header values from Key Vault secrets: "
                "set AZURE_KEY_VAULT_ENDPOINT (azd sets it when it deploys the vault)"
            )


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

    def mcp_servers(self, name: str) -> tuple[McpServer, ...]:
        raw = self.text(name)
        if raw is None:
            return ()
        try:
            return mcp.load(raw)
        except mcp.McpConfigError as exc:
            raise SettingsError(name, str(exc)) from None

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

    def line(self, name: str, default: str) -> str:
        """One spoken line (a greeting, a filler): trimmed, bounded."""
        raw = self.text(name)
        if raw is None:
            return default
        if len(raw) > MAX_LINE_CHARS:
            raise SettingsError(name, f"must be at most {MAX_LINE_CHARS} characters (one spoken line), got {len(raw)}")
        return raw

    def languages(self, name: str) -> tuple[str, ...]:
        raw = self.text(name)
        if raw is None:
            return ()
        tags = tuple(dict.fromkeys(t.strip() for t in raw.split(",") if t.strip()))
        if len(tags) > MAX_LANGUAGES:
            raise SettingsError(name, f"at most {MAX_LANGUAGES} languages (what Azure Speech transcription takes)")
        for tag in tags:
            if not _LANGUAGE.match(tag):
                raise SettingsError(name, f"must be comma-separated BCP-47 language tags such as en-US,de-DE, got {tag!r}")
        return tags

    def phrases(self, name: str) -> tuple[str, ...]:
        raw = self.text(name)
        if raw is None:
            return ()
        phrases = tuple(dict.fromkeys(p.strip() for p in raw.split(",") if p.strip()))
        if len(phrases) > MAX_PHRASES or any(len(p) > MAX_PHRASE_CHARS for p in phrases):
            raise SettingsError(name, f"at most {MAX_PHRASES} comma-separated phrases of at most "
                                      f"{MAX_PHRASE_CHARS} characters each")
        return phrases

    def flag(self, name: str, default: bool | None) -> bool | None:
        raw = self.text(name)
        if raw is None:
            return default
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SettingsError(name, f"must be true or false, got {raw!r}")

    def choice_voice(self, name: str) -> tuple[str, str]:
        """(type, name): an OpenAI voice name, an Azure neural voice (en-US-AvaNeural), or one of the
        azure-realtime model's native voices; ("", "") when unset (the model's default)."""
        raw = self.text(name)
        if raw is None:
            return "", ""
        if "-" in raw:
            if capabilities.AZURE_VOICE_NAME.match(raw):
                return capabilities.AZURE_STANDARD, raw
            raise SettingsError(name, f"an Azure voice looks like en-US-AvaNeural, got {raw!r}")
        if raw.lower() in OPENAI_VOICES:
            return capabilities.OPENAI, raw.lower()
        if raw.lower() in REALTIME_NATIVE_VOICES:
            return capabilities.AZURE_REALTIME_NATIVE, raw.lower()
        raise SettingsError(
            name, f"must be an Azure voice name (like en-US-AvaNeural), one of {', '.join(OPENAI_VOICES)} "
            f"(OpenAI voices), or one of {', '.join(REALTIME_NATIVE_VOICES)} (azure-realtime voices), got {raw!r}"
        )

    def secret_name(self, name: str, default: str) -> str:
        raw = self.text(name)
        if raw is None:
            return default
        if not re.fullmatch(r"[0-9A-Za-z-]{1,127}", raw):
            raise SettingsError(name, f"a Key Vault secret name uses letters, digits and dashes, got {raw!r}")
        return raw
