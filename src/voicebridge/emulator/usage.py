"""The `usage` of an emulated response.done: token counts shaped like the service's, estimated.

The emulator has no tokenizer. The estimate follows how the realtime models bill: about 10 tokens per
second of user audio and 20 per second of assistant audio, text at about 4 characters a token; every
reply re-reads the whole conversation (instructions and every item so far) as its input, and the part
the previous reply already read counts as cached. Good enough for token telemetry and budgets to be
exercised with realistic magnitudes; not a price list. What a reply bills is also what the resource's
tokens-per-minute quota counts (quota.py); a failed reply ran no model and bills nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ..protocol import BYTES_PER_MS

INPUT_AUDIO_TOKENS_PER_S, OUTPUT_AUDIO_TOKENS_PER_S, CHARS_PER_TEXT_TOKEN = 10, 20, 4


def text_tokens(text: object) -> int:
    return math.ceil(len(text) / CHARS_PER_TEXT_TOKEN) if isinstance(text, str) and text else 0


def audio_tokens(nbytes: int, per_s: int) -> int:
    return math.ceil(nbytes / (1000 * BYTES_PER_MS) * per_s)


class Usage:
    """One session's usage reports: what each reply read, and what the one before it had read."""

    def __init__(self, spend: Callable[[int], None] = lambda tokens: None) -> None:
        self._last = (0, 0)  # (text, audio) input of the previous reply: the cached prefix of the next
        self._spend = spend  # every report's total goes to the resource's quota

    def context(self, instructions: object, items: dict[str, dict]) -> tuple[int, int]:
        """(text, audio) tokens of everything a reply re-reads: instructions and every item so far."""
        text, audio = text_tokens(instructions), 0
        for entry in items.values():
            item = entry["item"]
            if entry["audio_bytes"]:
                rate = OUTPUT_AUDIO_TOKENS_PER_S if item.get("role") == "assistant" else INPUT_AUDIO_TOKENS_PER_S
                audio += audio_tokens(entry["audio_bytes"], rate)
            elif item.get("type") == "message":
                for part in item.get("content") or []:
                    if isinstance(part, dict):
                        text += text_tokens(part.get("text") or part.get("transcript"))
            else:
                text += text_tokens(item.get("arguments")) + text_tokens(item.get("output"))
        return text, audio

    def report(self, context: tuple[int, int], output_audio_bytes: int, output_text: str) -> dict:
        text, audio = context
        cached_text, cached_audio = min(text, self._last[0]), min(audio, self._last[1])
        self._last = context
        out_audio = audio_tokens(output_audio_bytes, OUTPUT_AUDIO_TOKENS_PER_S)
        out_text = text_tokens(output_text)
        self._spend(text + audio + out_text + out_audio)
        return shaped(text, audio, (cached_text, cached_audio), out_text, out_audio)

    @staticmethod
    def failed() -> dict:
        """The usage of a reply that failed before any output (throttled): nothing billed."""
        return shaped(0, 0, (0, 0), 0, 0)


def shaped(text: int, audio: int, cached: tuple[int, int], out_text: int, out_audio: int) -> dict:
    """Counts shaped like the SDK's TokenUsage (the cached share is inside the input counts)."""
    return {
        "total_tokens": text + audio + out_text + out_audio,
        "input_tokens": text + audio,
        "output_tokens": out_text + out_audio,
        "input_token_details": {
            "cached_tokens": sum(cached), "text_tokens": text, "audio_tokens": audio, "image_tokens": 0,
            "cached_tokens_details": {"text_tokens": cached[0], "audio_tokens": cached[1], "image_tokens": 0},
        },
        "output_token_details": {"text_tokens": out_text, "audio_tokens": out_audio},
    }
