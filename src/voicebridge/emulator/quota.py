"""The resource quota the emulator enforces, as Voice Live does per resource (issue 23), and the usage it bills.

*Speech service quotas and limits*, Voice Live on S0: 30 new connections per minute (beyond them the
handshake is refused with HTTP 429 and a Retry-After) and about 100,000 tokens per minute (a reply beyond
them fails: response.done with status `failed`, code `rate_limit_exceeded`). Both are counted over a
sliding window, which EmulatorConfig can shorten so tests and benchmarks see the same ratios in seconds.
Off (0) unless configured; `make run` configures it with the bridge's own figures (app.start_bridge).

Usage follows the Voice Live pricing page's model: about 10 tokens per second of user audio, 20 per second
of the model's audio, a token per 4 characters of text, and every reply re-reads the conversation so far.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

from ..protocol import BYTES_PER_MS

INPUT_AUDIO_TOKENS_PER_S = 10
OUTPUT_AUDIO_TOKENS_PER_S = 20
CHARS_PER_TOKEN = 4


class QuotaMeter:
    """Connections and tokens in the last window; any thread (the handshake and the replies share it)."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._connects: deque[float] = deque()
        self._tokens: deque[tuple[float, int]] = deque()
        self._token_total = 0
        self.refused = 0  # handshakes answered 429
        self.billed: deque[int] = deque(maxlen=10_000)  # each reply's total_tokens, for benchmarks

    def connect(self, limit: int, window_s: float) -> float | None:
        """Count a new connection; None when admitted, else the seconds until one is free (Retry-After)."""
        if limit <= 0:
            return None
        with self._lock:
            now = self._clock()
            while self._connects and self._connects[0] <= now - window_s:
                self._connects.popleft()
            if len(self._connects) >= limit:
                self.refused += 1
                return max(0.0, self._connects[0] + window_s - now)
            self._connects.append(now)
            return None

    def tokens_left(self, limit: int, window_s: float) -> bool:
        if limit <= 0:
            return True
        with self._lock:
            self._expire(window_s)
            return self._token_total < limit

    def spend(self, tokens: int, window_s: float) -> None:
        with self._lock:
            self._expire(window_s)
            self._tokens.append((self._clock(), tokens))
            self._token_total += tokens
            self.billed.append(tokens)

    def _expire(self, window_s: float) -> None:
        now = self._clock()
        while self._tokens and self._tokens[0][0] <= now - window_s:
            self._token_total -= self._tokens.popleft()[1]


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


def _text_tokens(item: dict) -> int:
    chars = 0
    for part in item.get("content") or []:
        if isinstance(part, dict):
            for key in ("text", "transcript"):
                if isinstance(part.get(key), str):
                    chars += len(part[key])
    for key in ("arguments", "output"):
        if isinstance(item.get(key), str):
            chars += len(item[key])
    return math.ceil(chars / CHARS_PER_TOKEN)


def usage(items: dict[str, dict], reply_item_id: str | None) -> dict:
    """response.done's `usage` for the reply in `reply_item_id`: the conversation before it re-read as
    input, the reply itself as output (shaped like the SDK's TokenUsage)."""
    audio_in = text_in = audio_out = text_out = 0
    for item_id, entry in items.items():
        item = entry["item"]
        seconds = entry.get("audio_bytes", 0) / (1000 * BYTES_PER_MS)
        per_s = OUTPUT_AUDIO_TOKENS_PER_S if item.get("role") == "assistant" else INPUT_AUDIO_TOKENS_PER_S
        if item_id == reply_item_id:
            audio_out = round(seconds * OUTPUT_AUDIO_TOKENS_PER_S)
            text_out = _text_tokens(item)
        else:
            audio_in += round(seconds * per_s)
            text_in += _text_tokens(item)
    total_in, total_out = audio_in + text_in, audio_out + text_out
    return {
        "total_tokens": total_in + total_out,
        "input_tokens": total_in,
        "output_tokens": total_out,
        "input_token_details": {"cached_tokens": 0, "text_tokens": text_in, "audio_tokens": audio_in,
                                "image_tokens": 0, "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0,
                                                                             "image_tokens": 0}},
        "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
    }
