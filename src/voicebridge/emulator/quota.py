"""The resource quota the emulator enforces, as Voice Live does per resource (issue 23), and the usage it bills.

*Speech service quotas and limits*, Voice Live on S0: 30 new connections per minute (beyond them the
handshake is refused with HTTP 429 and a Retry-After) and about 100,000 tokens per minute (a reply beyond
them fails: response.done with status `failed`, code `rate_limit_exceeded`). Both are counted over a
sliding window, which EmulatorConfig can shorten so tests and benchmarks see the same ratios in seconds.
Off (0) unless configured; `make run` configures it with the bridge's own figures (app.start_bridge).

The tokens counted are those each response.done's `usage` reports (usage.py: about 10 tokens per second of
user audio, 20 per second of the model's audio, a token per 4 characters of text, and every reply re-reads
the conversation so far).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque


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
