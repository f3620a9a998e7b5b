"""Checking client events the way Voice Live does, and the service's error for one it refuses.

(Not the browser contract's `voicebridge.protocol.ProtocolError`: this one is the upstream service's
`invalid_request_error`, sent back to the client as an `error` event.)
"""

from __future__ import annotations

import math

from .. import capabilities
from ..capabilities import END_OF_UTTERANCE_MODELS as EOU_MODELS
from ..capabilities import NOISE_REDUCTION_TYPES
from ..capabilities import TURN_DETECTION_TYPES as VAD_TYPES
from ..protocol import SAMPLE_RATE

# Where each field the capability table checks lives in session.update.
_CAPABILITY_PARAMS = {
    "transcription_model": "session.input_audio_transcription.model",
    "noise_reduction": "session.input_audio_noise_reduction.type",
    "voice": "session.voice",
    "end_of_utterance": "session.turn_detection.end_of_utterance_detection",
    "vad_threshold": "session.turn_detection.threshold",
    "phrase_list": "session.input_audio_transcription.phrase_list",
    "interim_response": "session.interim_response",
    "temperature": "session.temperature",
}


class RequestError(Exception):
    """A client event the service refuses: answered with an `error` event of this code, the session goes on."""

    def __init__(self, message: str, code: str = "invalid_value", param: str | None = None):
        super().__init__(message)
        self.message, self.code, self.param = message, code, param


def require(event: dict, name: str, kind: type | tuple[type, ...]):
    if name not in event:
        raise RequestError(f"Missing required parameter: '{name}'.", "missing_required_parameter", name)
    value = event[name]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise RequestError(f"Invalid type for '{name}'.", "invalid_type", name)
    return value


def check_number(obj: dict, name: str, low: float, high: float = math.inf) -> None:
    value = obj.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        bound = f"between {low} and {high}" if high != math.inf else f"at least {low}"
        raise RequestError(f"Invalid 'session.turn_detection.{name}': expected a number {bound}.",
                            "invalid_value", f"session.turn_detection.{name}")


def _voice_kind(voice: object) -> str | None:
    if isinstance(voice, str):  # the older bare OpenAI voice name
        if voice in capabilities.OPENAI_VOICES:
            return capabilities.OPENAI
    elif isinstance(voice, dict) and isinstance(voice.get("name"), str) and voice.get("type") in (
            capabilities.OPENAI, capabilities.AZURE_REALTIME_NATIVE, *capabilities.AZURE_VOICES):
        return voice["type"]
    raise RequestError("Invalid 'session.voice': expected an OpenAI voice name or a voice object with 'type' "
                       "(openai, azure-standard, azure-custom, azure-personal, azure-realtime-native) and 'name'.",
                       "invalid_value", "session.voice")


def check_capabilities(update: dict, family: capabilities.Family | None) -> None:
    """The capability table (capabilities.py), for what this update sets: the service's refusal of a
    combination the session's model does not support."""
    transcription = update.get("input_audio_transcription")
    noise = update.get("input_audio_noise_reduction")
    td = update.get("turn_detection")
    eou = td.get("end_of_utterance_detection") if isinstance(td, dict) else None
    choice = capabilities.Choice(
        transcription_model=transcription.get("model") if isinstance(transcription, dict) else None,
        noise_reduction=noise.get("type") if isinstance(noise, dict) else None,
        voice_kind=_voice_kind(update["voice"]) if update.get("voice") is not None else None,
        end_of_utterance=eou.get("model") if isinstance(eou, dict) else None,
        vad_threshold=td.get("threshold") if isinstance(td, dict) and isinstance(td.get("threshold"), int | float)
        and not isinstance(td.get("threshold"), bool) else None,
        phrase_list=isinstance(transcription, dict) and transcription.get("phrase_list") is not None,
        temperature=update.get("temperature"),
    )
    found = capabilities.problems(family, choice)
    if found:
        problem = found[0]
        param = _CAPABILITY_PARAMS[problem.field]
        raise RequestError(f"Invalid '{param}': {problem.message}. Supported values: {', '.join(problem.accepted)}.",
                           "invalid_value", param)


def validate_session(update: dict, family: capabilities.Family | None = None) -> None:
    """Reject what the service rejects, and what this emulator cannot honour, with the service's error shape."""
    if update.get("voice") is not None:
        _voice_kind(update["voice"])
    modalities = update.get("modalities")
    if modalities is not None and (not isinstance(modalities, list) or not set(modalities) <= {"text", "audio"}):
        raise RequestError("Invalid 'session.modalities': allowed values are 'text' and 'audio'.",
                            "invalid_value", "session.modalities")
    for name in ("input_audio_format", "output_audio_format"):
        if name in update and update[name] != "pcm16":
            raise RequestError(f"Invalid 'session.{name}': the emulator supports only 'pcm16' (24 kHz mono).",
                                "invalid_value", f"session.{name}")
    rate = update.get("input_audio_sampling_rate")
    if rate is not None and rate != SAMPLE_RATE:
        raise RequestError("Invalid 'session.input_audio_sampling_rate': the emulator supports only 24000.",
                            "invalid_value", "session.input_audio_sampling_rate")
    transcription = update.get("input_audio_transcription")
    if transcription is not None and not isinstance(transcription, dict):
        raise RequestError("Invalid 'session.input_audio_transcription': expected an object or null.",
                            "invalid_type", "session.input_audio_transcription")
    if "turn_detection" in update and (td := update["turn_detection"]) is not None:
        if not isinstance(td, dict) or td.get("type") not in VAD_TYPES:
            raise RequestError(f"Invalid 'session.turn_detection.type': supported values are {', '.join(VAD_TYPES)}.",
                                "invalid_value", "session.turn_detection.type")
        check_number(td, "threshold", 0.0, 1.0)  # the range's open end: check_capabilities
        check_number(td, "prefix_padding_ms", 0)
        check_number(td, "silence_duration_ms", 0)
        eou = td.get("end_of_utterance_detection")
        if eou is not None:
            # [HOWTO] "End of utterance detection can be used with either VAD selection".
            if not isinstance(eou, dict) or eou.get("model") not in EOU_MODELS:
                raise RequestError("Invalid 'session.turn_detection.end_of_utterance_detection.model': supported "
                                   f"values are {', '.join(EOU_MODELS)}.", "invalid_value",
                                   "session.turn_detection.end_of_utterance_detection.model")
    _check_hearing(update)
    limit = update.get("max_response_output_tokens")
    # [SDK] RequestSession.max_response_output_tokens: "an integer between 1 and 4096 ... or inf".
    if limit is not None and limit != "inf" and (isinstance(limit, bool) or not isinstance(limit, int)
                                                 or not 1 <= limit <= 4096):
        raise RequestError("Invalid 'session.max_response_output_tokens': expected an integer between 1 and 4096, "
                           "or 'inf'.", "invalid_value", "session.max_response_output_tokens")
    _check_typed_object(update, "input_audio_noise_reduction", NOISE_REDUCTION_TYPES)
    _check_typed_object(update, "input_audio_echo_cancellation", ("server_echo_cancellation",))
    temperature = update.get("temperature")
    if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, int | float)):
        raise RequestError("Invalid 'session.temperature': expected a number.", "invalid_type", "session.temperature")
    _check_tools(update)
    check_capabilities(update, family)


def _check_typed_object(update: dict, name: str, types: tuple[str, ...]) -> None:
    value = update.get(name)
    if value is not None and (not isinstance(value, dict) or value.get("type") not in types):
        raise RequestError(f"Invalid 'session.{name}.type': supported values are {', '.join(types)}.",
                           "invalid_value", f"session.{name}.type")


def _check_tools(update: dict) -> None:
    tools = update.get("tools")
    if tools is None:
        return
    if not isinstance(tools, list):
        raise RequestError("Invalid 'session.tools': expected an array.", "invalid_type", "session.tools")
    names, labels = set(), set()
    for index, tool in enumerate(tools):
        where = f"session.tools[{index}]"
        if isinstance(tool, dict) and tool.get("type") == "mcp":
            _check_mcp_server(tool, where, labels)
            continue
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise RequestError(f"Invalid '{where}.type': supported values are function, mcp.", "invalid_value",
                               f"{where}.type")
        name = tool.get("name")
        if not isinstance(name, str) or not name or name in names:
            raise RequestError(f"Invalid '{where}.name': expected a unique non-empty string.", "invalid_value",
                               f"{where}.name")
        names.add(name)
        parameters = tool.get("parameters")
        if parameters is not None and (not isinstance(parameters, dict) or parameters.get("type") != "object"):
            raise RequestError(f"Invalid '{where}.parameters': expected a JSON schema of type object.",
                               "invalid_value", f"{where}.parameters")
    choice = update.get("tool_choice")
    if choice is not None and choice not in ("auto", "none", "required") and not (
            isinstance(choice, dict) and choice.get("type") == "function" and choice.get("name") in names):
        raise RequestError("Invalid 'session.tool_choice': expected auto, none, required or a declared function.",
                           "invalid_value", "session.tool_choice")


MCP_APPROVAL = ("never", "always")


def _check_mcp_server(tool: dict, where: str, labels: set[str]) -> None:
    """An MCP server tool, shaped as the SDK's MCPServer model: server_label and server_url required;
    authorization, headers, allowed_tools and require_approval (never, always or {never|always: [tools]})
    optional."""
    def bad(field: str, expected: str, code: str = "invalid_value"):
        return RequestError(f"Invalid '{where}.{field}': expected {expected}.", code, f"{where}.{field}")

    for field in ("server_label", "server_url"):
        if field not in tool:
            raise RequestError(f"Missing required parameter: '{where}.{field}'.", "missing_required_parameter",
                               f"{where}.{field}")
        if not isinstance(tool[field], str) or not tool[field]:
            raise bad(field, "a non-empty string")
    if tool["server_label"] in labels:
        raise bad("server_label", "a label no other MCP server of the session uses")
    labels.add(tool["server_label"])
    if not tool["server_url"].startswith(("https://", "http://")):
        raise bad("server_url", "an http(s) URL")
    if tool.get("authorization") is not None and not isinstance(tool["authorization"], str):
        raise bad("authorization", "a string", "invalid_type")
    headers = tool.get("headers")
    if headers is not None and not (isinstance(headers, dict)
                                    and all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())):
        raise bad("headers", "an object of string values", "invalid_type")
    allowed = tool.get("allowed_tools")
    if allowed is not None and not (isinstance(allowed, list) and all(isinstance(t, str) and t for t in allowed)):
        raise bad("allowed_tools", "an array of tool names", "invalid_type")
    approval = tool.get("require_approval")
    if approval is None or approval in MCP_APPROVAL:
        return
    if not (isinstance(approval, dict) and approval and set(approval) <= set(MCP_APPROVAL)
            and all(isinstance(v, list) and all(isinstance(t, str) for t in v) for v in approval.values())):
        raise bad("require_approval", "never, always or an object {never|always: [tool names]}")
EOU_THRESHOLD_LEVELS = ("low", "medium", "high", "default")
# [REF] RealtimeInputAudioTranscriptionSettings: phrase_list and custom_speech "only valid for azure-speech".
AZURE_SPEECH_ONLY = ("custom_speech",)  # phrase_list: the capability table
MAX_LANGUAGES = 10


def _check_hearing(update: dict) -> None:
    """Languages, phrase lists and the turn-taking knobs (issue 24), as the SDK's models and the reference
    describe them."""
    transcription = update.get("input_audio_transcription")
    if isinstance(transcription, dict):
        for name in AZURE_SPEECH_ONLY:
            if transcription.get(name) is not None and transcription.get("model") != "azure-speech":
                raise RequestError(f"Invalid 'session.input_audio_transcription.{name}': only valid for the "
                                   "azure-speech model.", "invalid_value", f"session.input_audio_transcription.{name}")
        phrases = transcription.get("phrase_list")
        if phrases is not None and (not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases)):
            raise RequestError("Invalid 'session.input_audio_transcription.phrase_list': expected an array of "
                               "strings.", "invalid_type", "session.input_audio_transcription.phrase_list")
        language = transcription.get("language")
        if language is not None and (not isinstance(language, str) or len(language.split(",")) > MAX_LANGUAGES):
            raise RequestError("Invalid 'session.input_audio_transcription.language': expected a language code or "
                               f"up to {MAX_LANGUAGES} comma-separated codes.", "invalid_value",
                               "session.input_audio_transcription.language")
    td = update.get("turn_detection")
    if not isinstance(td, dict):
        return
    kind = td.get("type")
    for name, allowed in (("languages", ("azure_semantic_vad", "azure_semantic_vad_multilingual")),
                          ("remove_filler_words", VAD_TYPES[1:])):
        if td.get(name) is not None and kind not in allowed:
            raise RequestError(f"Invalid 'session.turn_detection.{name}': not a property of {kind} turn detection.",
                               "invalid_value", f"session.turn_detection.{name}")
    languages = td.get("languages")
    if languages is not None and (not isinstance(languages, list) or not all(isinstance(x, str) for x in languages)):
        raise RequestError("Invalid 'session.turn_detection.languages': expected an array of language codes.",
                           "invalid_type", "session.turn_detection.languages")
    if "remove_filler_words" in td and not isinstance(td["remove_filler_words"], bool | None):
        raise RequestError("Invalid type for 'session.turn_detection.remove_filler_words'.", "invalid_type",
                           "session.turn_detection.remove_filler_words")
    eou = td.get("end_of_utterance_detection")
    if isinstance(eou, dict):
        where = "session.turn_detection.end_of_utterance_detection"
        level = eou.get("threshold_level")
        if level is not None and level not in EOU_THRESHOLD_LEVELS:
            raise RequestError(f"Invalid '{where}.threshold_level': supported values are "
                               f"{', '.join(EOU_THRESHOLD_LEVELS)}.", "invalid_value", f"{where}.threshold_level")
        timeout = eou.get("timeout_ms")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0):
            raise RequestError(f"Invalid '{where}.timeout_ms': expected an integer >= 0.", "invalid_value",
                               f"{where}.timeout_ms")
