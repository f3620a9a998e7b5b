"""What each Voice Live model family accepts: the one table settings.py and the emulator both check.

Voice Live serves several kinds of model behind one protocol, and a session option valid for one kind is
refused (or silently ignored) by another. The rows below are the documented rules, each with its source,
so a combination the service would refuse stops the bridge at startup (naming the variables and what
would work) and is refused by the emulator the way the service refuses it.

Sources (docs/emulator.md lists them with every rule):
- [REF] Voice Live API reference 2026-07-15: RealtimeAudioInputTranscriptionSettings (transcription models
  per model), RealtimeOpenAINoiseReduction (near_field / far_field), the voice types (OpenAIVoice,
  AzureStandardVoice, AzureCustomVoice, AzurePersonalVoice, AzureRealtimeNativeVoice), ServerVad /
  AzureSemanticVad (threshold, end_of_utterance_detection).
- [HOWTO] Voice Live how-to, session properties: end-of-utterance detection "can be used with either VAD
  selection" and "currently doesn't support gpt-realtime, gpt-4o-mini-realtime, and phi4-mm-realtime".
- [SDK] azure-ai-voicelive 1.3.1 models: AzureRealtimeNativeVoice "only valid when using the azure-realtime
  model"; AzureSemanticDetection / ...En / ...Multilingual; OpenAIVoiceName; RequestSession.temperature
  "Range: 0.0 to 1.0", Response.temperature "limited to [0.6, 1.2]" (the realtime models' own range).

To extend the table (languages, phrase lists, MCP, interim responses, ...): add a field to `Family` with
the value for every family, a check to `problems()`, and the rule's source to docs/emulator.md; both the
settings and the emulator pick it up from there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Voice kinds, as the `type` of the session's voice object.
OPENAI = "openai"
AZURE_STANDARD = "azure-standard"
AZURE_CUSTOM = "azure-custom"
AZURE_PERSONAL = "azure-personal"
AZURE_REALTIME_NATIVE = "azure-realtime-native"
AZURE_VOICES = (AZURE_STANDARD, AZURE_CUSTOM, AZURE_PERSONAL)

# [SDK] OpenAIVoiceName, AzureRealtimeNativeVoiceName (known values).
OPENAI_VOICES = ("alloy", "ash", "ballad", "cedar", "coral", "echo", "marin", "sage", "shimmer", "verse")
REALTIME_NATIVE_VOICES = ("aarti", "andrew", "ava", "denise", "diya", "elsa", "florian", "francisca", "meera",
                          "xiaoxiao", "yunxi", "ximena")
AZURE_VOICE_NAME = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]+)+(:[A-Za-z0-9]+)?$")

TURN_DETECTION_TYPES = ("server_vad", "azure_semantic_vad", "azure_semantic_vad_en", "azure_semantic_vad_multilingual")
END_OF_UTTERANCE_MODELS = ("semantic_detection_v1", "semantic_detection_v1_en", "semantic_detection_v1_multilingual")
NOISE_REDUCTION_TYPES = ("azure_deep_noise_suppression", "near_field", "far_field")
OPENAI_TRANSCRIPTION = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe", "gpt-4o-transcribe-diarize",
                        "mai-transcribe-1", "mai-transcribe-2")
AZURE_TRANSCRIPTION = ("azure-speech",)
# [HOWTO] azure_semantic_vad_multilingual and semantic_detection_v1_multilingual support "English, Spanish,
# French, Italian, German (DE), Japanese, Portuguese, Chinese, Korean, Hindi. Other languages will be bypassed."
SEMANTIC_LANGUAGES = ("en", "es", "fr", "it", "de", "ja", "pt", "zh", "ko", "hi")
# [REF] RealtimeInputAudioTranscriptionSettings.phrase_list: "only valid for azure-speech model".
PHRASE_LIST_TRANSCRIPTION = AZURE_TRANSCRIPTION
# [REF] ServerVad.threshold: 0.01 <= threshold < 1.0.
VAD_THRESHOLD = (0.01, 1.0)
# [SDK] RequestSession.temperature (what session.update sets): "Range: 0.0 to 1.0".
TEMPERATURE = (0.0, 1.0)


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    models: tuple[str, ...]  # the natively served model names of this family
    transcription_models: tuple[str, ...]
    default_transcription: str
    noise_reduction: tuple[str, ...]
    voice_kinds: tuple[str, ...]
    default_voice: tuple[str, str]  # (kind, name)
    end_of_utterance: bool
    source: str
    # [HOWTO-INTERIM] "In model mode, interim responses are only supported with text LLMs in cascaded mode
    # together with azure-speech voice output. Realtime audio models don't support interim responses."
    interim_response: bool = False
    # MCP servers in session.update (issue 25): the phi models take no tools, so no MCP either.
    mcp: bool = True
    # The lowest session temperature the family's models take (the session's own range is TEMPERATURE).
    temperature_min: float = TEMPERATURE[0]


FAMILIES: tuple[Family, ...] = (
    Family(
        name="realtime",
        models=("gpt-realtime", "gpt-realtime-mini", "gpt-4o-realtime-preview", "gpt-4o-mini-realtime-preview"),
        transcription_models=OPENAI_TRANSCRIPTION,
        # The official universal-assistant sample's choice for gpt-realtime.
        default_transcription="gpt-4o-transcribe",
        noise_reduction=NOISE_REDUCTION_TYPES,
        voice_kinds=(OPENAI, *AZURE_VOICES),
        default_voice=(AZURE_STANDARD, "en-US-AvaNeural"),
        end_of_utterance=False,
        source="[REF] RealtimeAudioInputTranscriptionSettings, RealtimeOpenAINoiseReduction; [HOWTO] end of utterance",
        # [SDK] Response.temperature "limited to [0.6, 1.2]", the Realtime API's range for these models;
        # within the session's 0.0 to 1.0 that leaves 0.6 to 1.0.
        temperature_min=0.6,
    ),
    Family(
        name="cascaded",
        models=("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-5", "gpt-5-mini",
                "gpt-5-nano", "gpt-5-chat"),
        transcription_models=AZURE_TRANSCRIPTION,
        default_transcription="azure-speech",
        noise_reduction=("azure_deep_noise_suppression",),
        voice_kinds=AZURE_VOICES,
        default_voice=(AZURE_STANDARD, "en-US-AvaNeural"),
        end_of_utterance=True,
        source="[REF] RealtimeAudioInputTranscriptionSettings, RealtimeOpenAINoiseReduction, voices",
        interim_response=True,
    ),
    Family(
        name="phi",
        models=("phi4-mm-realtime", "phi4-mini"),
        transcription_models=AZURE_TRANSCRIPTION,
        default_transcription="azure-speech",
        noise_reduction=("azure_deep_noise_suppression",),
        voice_kinds=AZURE_VOICES,
        default_voice=(AZURE_STANDARD, "en-US-AvaNeural"),
        end_of_utterance=False,
        source="[REF] RealtimeAudioInputTranscriptionSettings, voices; [HOWTO] end of utterance",
        mcp=False,
    ),
    Family(
        name="azure-realtime",
        models=("azure-realtime",),
        transcription_models=AZURE_TRANSCRIPTION,
        default_transcription="azure-speech",
        noise_reduction=("azure_deep_noise_suppression",),
        voice_kinds=(AZURE_REALTIME_NATIVE,),
        default_voice=(AZURE_REALTIME_NATIVE, "ava"),
        # Not documented for this speech-to-speech model; refused like the other native-audio models.
        end_of_utterance=False,
        source="[SDK] AzureRealtimeNativeVoice; [REF] RealtimeAudioInputTranscriptionSettings",
    ),
    Family(
        name="agents",
        models=(),  # an agent session names agent_id / project_id instead of a model
        transcription_models=AZURE_TRANSCRIPTION,
        default_transcription="azure-speech",
        noise_reduction=("azure_deep_noise_suppression",),
        voice_kinds=AZURE_VOICES,
        default_voice=(AZURE_STANDARD, "en-US-AvaNeural"),
        end_of_utterance=True,
        source="[REF] RealtimeAudioInputTranscriptionSettings (agents take azure-speech)",
        interim_response=True,  # [HOWTO-INTERIM] agent mode supports them
    ),
)
_BY_NAME = {f.name: f for f in FAMILIES}
_BY_MODEL = {m: f for f in FAMILIES for m in f.models}


def family_of(model: str | None, agent: bool = False) -> Family | None:
    """The family a model belongs to; None for a name the table does not know (a bring-your-own-model
    deployment name, a model newer than this table): such sessions are not checked here."""
    if agent:
        return _BY_NAME["agents"]
    if not model:
        return None
    name = model.lower()
    if name in _BY_MODEL:
        return _BY_MODEL[name]
    # Dated versions and regional variants keep their family (gpt-realtime-2025-08-28, gpt-4.1-mini-...).
    for known in sorted(_BY_MODEL, key=len, reverse=True):
        if name.startswith(known + "-"):
            return _BY_MODEL[known]
    return None


def family(name: str) -> Family:
    return _BY_NAME[name]


def voice_kind(name: str) -> str | None:
    """The voice type a bare configured name implies (an explicit `type:name` is parsed by the caller)."""
    if name.lower() in OPENAI_VOICES:
        return OPENAI
    if AZURE_VOICE_NAME.match(name):
        return AZURE_STANDARD
    return None


@dataclass(frozen=True, slots=True)
class Problem:
    """One refused combination: which session field, what is wrong, and what would work."""

    field: str  # a Settings field name; the settings map it to its variable, the emulator to its param
    message: str
    accepted: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Choice:
    """The session options the table checks, as the bridge configures them or the client sent them."""

    transcription_model: str | None = None
    noise_reduction: str | None = None
    voice_kind: str | None = None
    turn_detection: str | None = None
    end_of_utterance: str | None = None
    vad_threshold: float | None = None
    phrase_list: bool = False  # a phrase list is sent with the transcription settings
    languages: tuple[str, ...] = ()  # BCP-47 tags the semantic turn detection is told to expect
    interim_response: bool = False
    temperature: float | None = None


def problems(fam: Family | None, choice: Choice) -> list[Problem]:
    """Every rule of the table `choice` breaks (none for a model the table does not know, except the
    rules that hold for every model)."""
    found: list[Problem] = []
    if choice.vad_threshold is not None and not VAD_THRESHOLD[0] <= choice.vad_threshold < VAD_THRESHOLD[1]:
        found.append(Problem("vad_threshold", "the VAD threshold must be at least 0.01 and below 1.0",
                             ("0.01 to 0.99",)))
    low, high = TEMPERATURE
    if choice.temperature is not None and not low <= choice.temperature <= high:
        found.append(Problem("temperature", f"the temperature must be between {low} and {high}", (f"{low} to {high}",)))
    if choice.end_of_utterance and choice.end_of_utterance not in END_OF_UTTERANCE_MODELS:
        found.append(Problem("end_of_utterance", "unknown end-of-utterance model", END_OF_UTTERANCE_MODELS))
    if choice.phrase_list and choice.transcription_model and choice.transcription_model not in PHRASE_LIST_TRANSCRIPTION:
        found.append(Problem("phrase_list", f"phrase lists are only valid with the {', '.join(PHRASE_LIST_TRANSCRIPTION)} "
                             f"transcription model, not {choice.transcription_model!r}", PHRASE_LIST_TRANSCRIPTION))
    semantic = (choice.turn_detection or "").startswith("azure_semantic_vad") or bool(choice.end_of_utterance)
    bypassed = [tag for tag in choice.languages if tag.split("-")[0].lower() not in SEMANTIC_LANGUAGES]
    if semantic and bypassed:
        found.append(Problem("languages", f"the semantic turn detection would bypass {', '.join(bypassed)} (it "
                             "knows ten languages)", SEMANTIC_LANGUAGES))
    if fam is None:
        return found
    label = f"{fam.name} models ({', '.join(fam.models[:2]) or 'agents'})"
    if choice.transcription_model and choice.transcription_model not in fam.transcription_models:
        found.append(Problem("transcription_model", f"transcription model {choice.transcription_model!r} is not "
                             f"supported with {label}", fam.transcription_models))
    if choice.noise_reduction and choice.noise_reduction not in fam.noise_reduction:
        found.append(Problem("noise_reduction", f"noise reduction {choice.noise_reduction!r} is not supported with "
                             f"{label}", fam.noise_reduction))
    if choice.voice_kind and choice.voice_kind not in fam.voice_kinds:
        found.append(Problem("voice", f"{choice.voice_kind} voices are not supported with {label}",
                             tuple(f"{k} voices" for k in fam.voice_kinds)))
    if choice.interim_response and not (fam.interim_response and choice.voice_kind in AZURE_VOICES):
        found.append(Problem("interim_response", f"interim responses are not supported with {label} and "
                             f"{choice.voice_kind or 'this'} voices", ("cascaded models with an Azure voice",)))
    if choice.temperature is not None and low <= choice.temperature < fam.temperature_min:
        found.append(Problem("temperature", f"temperatures below {fam.temperature_min} are not supported with "
                             f"{label}", (f"{fam.temperature_min} to {high}",)))
    if choice.end_of_utterance and not fam.end_of_utterance:
        found.append(Problem("end_of_utterance", f"end-of-utterance detection is not supported with {label}",
                             ("(empty: off)",)))
    return found
