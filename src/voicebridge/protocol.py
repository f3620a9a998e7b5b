"""The browser contract: parse and validate what a tab sends, build what the bridge sends back.

Everything here is pure and thread-agnostic: the WSGI thread parses (so a malformed frame is answered
without ever reaching the event loop), the event loop builds. See docs/protocol.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

# PCM16 mono at 24 kHz.
SAMPLE_RATE = 24_000
BYTES_PER_MS = SAMPLE_RATE * 2 // 1000


class ProtocolError(ValueError):
    """A frame the bridge cannot accept; `code` and `message` go back to the tab verbatim."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Start:
    pass


@dataclass(frozen=True, slots=True)
class Stop:
    pass


@dataclass(frozen=True, slots=True)
class Audio:
    data: str  # the tab's base64, forwarded upstream untouched
    nbytes: int


@dataclass(frozen=True, slots=True)
class Playback:
    item_id: str
    played_ms: int
    latency_ms: float | None = None


ClientMessage = Start | Stop | Audio | Playback

_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="

_START = Start()
_STOP = Stop()


# How the page (JSON.stringify) and most clients write an audio message: recognised without a JSON parse.
_AUDIO_HEAD = '{"type":"audio","data":"'
_AUDIO_HEAD_LEN = len(_AUDIO_HEAD)


def parse(frame: str | bytes) -> ClientMessage:
    # Hot path (50 frames per second per tab): the canonical audio message needs no JSON parse, just a
    # check that the base64 in it holds no quote or escape — then it is exactly what json.loads would give.
    if isinstance(frame, str) and frame.startswith(_AUDIO_HEAD) and frame.endswith('"}'):
        data = frame[_AUDIO_HEAD_LEN:-2]
        if '"' not in data and "\\" not in data:
            return _audio(data)
    if isinstance(frame, bytes):
        raise ProtocolError("bad_message", "Binary frames are not supported; send JSON text frames.")
    try:
        message = json.loads(frame)
    except (ValueError, RecursionError):  # deeply nested arrays/objects exhaust the decoder's stack
        raise ProtocolError("bad_json", "The frame is not valid JSON.") from None
    if not isinstance(message, dict):
        raise ProtocolError("bad_message", "A message must be a JSON object with a \"type\".")
    kind = message.get("type")
    if kind == "audio":
        return _audio(message.get("data"))
    if kind == "playback":
        return _playback(message)
    if kind == "session.start":
        return _START
    if kind == "session.stop":
        return _STOP
    if not isinstance(kind, str):
        raise ProtocolError("bad_message", "A message must be a JSON object with a string \"type\".")
    raise ProtocolError("unknown_type", f"Unknown message type {kind[:64]!r}.")


def _audio(data: object) -> Audio:
    if not isinstance(data, str) or not data:
        raise ProtocolError("bad_audio", "An audio message needs \"data\": base64 PCM16 audio.")
    # Validated, not decoded: the audio goes upstream as base64 anyway (hot path, 50 times a second per
    # tab). Canonical padded base64: the alphabet only, a length that is a multiple of 4, at most two
    # '=' and only at the end — what binascii.a2b_base64(strict_mode=True) accepts, at a third of its cost.
    n = len(data)
    pad = 2 if data.endswith("==") else 1 if data[-1] == "=" else 0
    if (
        n % 4
        or not data.isascii()
        or data.encode().translate(None, _BASE64_ALPHABET)
        or data.find("=", 0, n - pad) != -1
    ):
        raise ProtocolError("bad_audio", "The audio data is not valid base64.")
    nbytes = n // 4 * 3 - pad
    if nbytes % 2:
        raise ProtocolError("bad_audio", "The audio data is not whole 16-bit samples.")
    return Audio(data, nbytes)


def _playback(message: dict) -> Playback:
    item_id = message.get("item_id")
    played = message.get("played_ms")
    if not isinstance(item_id, str) or not item_id:
        raise ProtocolError("bad_message", "A playback message needs an \"item_id\".")
    if isinstance(played, bool) or not isinstance(played, int | float) or not 0 <= played < 86_400_000:
        raise ProtocolError("bad_message", "\"played_ms\" must be a non-negative number of milliseconds.")
    latency = message.get("latency_ms")
    if isinstance(latency, bool) or not isinstance(latency, int | float) or not 0 <= latency < 60_000:
        latency = None
    return Playback(item_id, int(played), latency)


# --- server → browser ---------------------------------------------------------------------------

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def state(value: str) -> str:
    return _dumps({"type": "state", "state": value})


def audio(data: str, item_id: str) -> str:
    # Hot path: base64 needs no escaping, so skip the encoder unless the service sent something odd.
    if '"' in data or "\\" in data:
        return _dumps({"type": "audio", "item_id": item_id, "data": data})
    return '{"type":"audio","item_id":' + _dumps(item_id) + ',"data":"' + data + '"}'


CLEAR = _dumps({"type": "audio.clear"})


def transcript(role: str, item_id: str, text: str, final: bool, **extra: object) -> str:
    return _dumps({"type": "transcript", "role": role, "item_id": item_id, "text": text, "final": final, **extra})


def error(code: str, message: str, **extra: object) -> str:
    return _dumps({"type": "error", "code": code, "message": message, **extra})
