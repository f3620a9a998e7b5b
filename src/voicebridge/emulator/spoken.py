"""What an emulated reply says besides echoing: pre-generated assistant messages, interim responses, and
the word timings Azure voices report (issue 24).

Rules, from azure-ai-voicelive 1.3.1's models and the Voice Live reference (docs/emulator.md):
- `response.create` may carry `response.pre_generated_assistant_message`, an assistant message item
  whose text the service speaks as it is (no model turn) and adds to the conversation.
- `session.output_audio_timestamp_types: ["word"]` asks for `response.audio_timestamp.delta` events
  (`audio_offset_ms`, `audio_duration_ms`, `text`, `timestamp_type: "word"`), then one
  `response.audio_timestamp.done` per audio part. Only Azure text-to-speech voices make them.
- `session.interim_response` (static_interim_response or llm_interim_response, triggers latency / tool)
  makes the service speak a short filler while a tool runs; the emulator speaks it inside the response
  that calls the tool, after the calls (the reference does not say where it sits).
"""

from __future__ import annotations

import base64
from collections.abc import Callable

from .. import capabilities
from ..protocol import BYTES_PER_MS
from .records import new_id
from .validation import RequestError

DELTA_BYTES = 100 * BYTES_PER_MS

INTERIM_TYPES = ("static_interim_response", "llm_interim_response")
INTERIM_TRIGGERS = ("latency", "tool")
# llm_interim_response: the service writes the line itself; the emulator says this one.
LLM_INTERIM_TEXT = "Let me check that for you."
MAX_PRE_GENERATED_CHARS = 4000


def pre_generated_text(params: object) -> str | None:
    """The text of `response.pre_generated_assistant_message`, if `params` (response.create's `response`)
    carries one; a malformed one is refused the way the service refuses an invalid item."""
    if not isinstance(params, dict) or params.get("pre_generated_assistant_message") is None:
        return None
    where = "response.pre_generated_assistant_message"
    item = params["pre_generated_assistant_message"]
    if not isinstance(item, dict) or item.get("type", "message") != "message" or item.get("role") != "assistant":
        raise RequestError(f"Invalid '{where}': expected an assistant message item.", "invalid_value", where)
    content = item.get("content")
    if not isinstance(content, list) or not content:
        raise RequestError(f"Missing required parameter: '{where}.content'.", "missing_required_parameter",
                           f"{where}.content")
    texts = []
    for index, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise RequestError(f"Invalid '{where}.content[{index}]': an assistant message holds parts of type "
                               "'text' with a 'text' string.", "invalid_value", f"{where}.content[{index}]")
        texts.append(part["text"])
    text = " ".join(t.strip() for t in texts if t.strip())
    if not text or len(text) > MAX_PRE_GENERATED_CHARS:
        raise RequestError(f"Invalid '{where}.content': expected 1 to {MAX_PRE_GENERATED_CHARS} characters of "
                           "text.", "invalid_value", f"{where}.content")
    return text


def interim_text(config: dict, trigger: str) -> str | None:
    """What the session's interim_response says for `trigger`, or None when it does not fire for it."""
    interim = config.get("interim_response")
    if not isinstance(interim, dict) or trigger not in (interim.get("triggers") or INTERIM_TRIGGERS):
        return None
    if interim.get("type") == "static_interim_response":
        texts = [t for t in interim.get("texts") or [] if isinstance(t, str) and t.strip()]
        return texts[0] if texts else None
    return LLM_INTERIM_TEXT


def check_interim(update: dict, family: capabilities.Family | None, config: dict) -> None:
    """`config`: the session's settings so far (the voice may have been set by an earlier update)."""
    interim = update.get("interim_response")
    if interim is None:
        return
    where = "session.interim_response"
    voice = {**config, **update}.get("voice")
    kind = voice.get("type") if isinstance(voice, dict) else capabilities.OPENAI
    refused = capabilities.problems(family, capabilities.Choice(voice_kind=kind, interim_response=True))
    if any(p.field == "interim_response" for p in refused):
        raise RequestError(f"Invalid '{where}': interim responses are supported only with text models in cascaded "
                           "mode and an Azure voice; realtime audio models do not support them.",
                           "invalid_value", where)
    if not isinstance(interim, dict) or interim.get("type") not in INTERIM_TYPES:
        raise RequestError(f"Invalid '{where}.type': supported values are {', '.join(INTERIM_TYPES)}.",
                           "invalid_value", f"{where}.type")
    triggers = interim.get("triggers")
    if triggers is not None and (not isinstance(triggers, list) or not set(triggers) <= set(INTERIM_TRIGGERS)):
        raise RequestError(f"Invalid '{where}.triggers': supported values are latency, tool.", "invalid_value",
                           f"{where}.triggers")
    threshold = interim.get("latency_threshold_ms")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0):
        raise RequestError(f"Invalid '{where}.latency_threshold_ms': expected an integer >= 0.", "invalid_value",
                           f"{where}.latency_threshold_ms")
    texts = interim.get("texts")
    if texts is not None and (not isinstance(texts, list) or not all(isinstance(t, str) for t in texts)):
        raise RequestError(f"Invalid '{where}.texts': expected an array of strings.", "invalid_type",
                           f"{where}.texts")


def check_timestamps(update: dict) -> None:
    types = update.get("output_audio_timestamp_types")
    if types is not None and (not isinstance(types, list) or not set(types) <= {"word"}):
        raise RequestError("Invalid 'session.output_audio_timestamp_types': supported values are word.",
                           "invalid_value", "session.output_audio_timestamp_types")


def wants_word_timings(config: dict) -> bool:
    """Word timestamps were asked for and the voice is one of Azure's text-to-speech voices."""
    voice = config.get("voice")
    azure = isinstance(voice, dict) and str(voice.get("type", "")).startswith("azure-") and \
        voice.get("type") != "azure-realtime-native"
    return azure and "word" in (config.get("output_audio_timestamp_types") or [])


class WordStamps:
    """The word timestamps of one audio part, each sent with the audio it starts in, as a synthesizer
    reports its word boundaries; nothing when the session did not ask for them or its voice makes none."""

    def __init__(self, emit: Callable[..., None], config: dict, transcript: str, *, audio_ms: int, ids: dict):
        self._emit = emit
        self._ids = ids
        self._timings = word_timings(transcript, audio_ms) if wants_word_timings(config) else []
        self._sent = 0

    def upto(self, ms: int) -> None:
        """The audio up to `ms` has been sent: the words starting before it follow."""
        while self._sent < len(self._timings) and self._timings[self._sent][0] < ms:
            offset, duration, word = self._timings[self._sent]
            self._sent += 1
            self._emit("response.audio_timestamp.delta", audio_offset_ms=offset, audio_duration_ms=duration,
                       text=word, timestamp_type="word", **self._ids)

    def done(self) -> None:
        if self._timings:
            self._emit("response.audio_timestamp.done", **self._ids)


def word_timings(transcript: str, audio_ms: int) -> list[tuple[int, int, str]]:
    """(audio_offset_ms, audio_duration_ms, word) for each word, spread over the audio by its length, a
    short pause after each word, as a speech synthesizer's word boundaries fall."""
    words = transcript.split()
    if not words or audio_ms <= 0:
        return []
    weights = [len(w) + 1 for w in words]
    scale = audio_ms / sum(weights)
    timings, at = [], 0.0
    for word, weight in zip(words, weights, strict=True):
        span = weight * scale
        timings.append((int(at), max(1, int(span * 0.85)), word))
        at += span
    return timings


def speak_interim(emit: Callable[..., None], items: dict, config: dict, response_id: str, index: int,
                  tone: Callable[[str], bytes]) -> list[dict]:
    """The interim response, if the session has one for tools: a short assistant message in the tool-calling
    response, after its calls, sent at once (the client plays it in real time) so that response completes
    as before. Returns the output items it added."""
    text = interim_text(config, "tool")
    if text is None:
        return []
    pcm = tone(text)
    item_id = new_id("item")
    ids = {"response_id": response_id, "item_id": item_id, "output_index": index, "content_index": 0}
    pending = {"id": item_id, "object": "realtime.item", "type": "message", "status": "in_progress",
               "role": "assistant", "content": []}
    emit("response.output_item.added", response_id=response_id, output_index=index, item=pending)
    emit("response.content_part.added", **ids, part={"type": "audio", "transcript": ""})
    for offset in range(0, len(pcm), DELTA_BYTES):
        emit("response.audio.delta", delta=base64.b64encode(pcm[offset:offset + DELTA_BYTES]).decode("ascii"), **ids)
    emit("response.audio_transcript.delta", delta=text, **ids)
    emit("response.audio.done", **ids)
    emit("response.audio_transcript.done", transcript=text, **ids)
    emit("response.content_part.done", **ids, part={"type": "audio", "transcript": text})
    item = {**pending, "status": "completed", "content": [{"type": "audio", "transcript": text}]}
    items[item_id] = {"item": item, "audio_bytes": len(pcm)}
    emit("response.output_item.done", response_id=response_id, output_index=index, item=item)
    return [item]
