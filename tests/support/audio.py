"""Test audio: PCM16 LE mono 24 kHz. Seeded noise is used as 'speech' because it never repeats, so a
reordered or lost chunk cannot hide inside a periodic signal."""

from __future__ import annotations

import array
import math
import random

RATE = 24_000
CHUNK_MS = 20


def silence(ms: int) -> bytes:
    return bytes(ms * RATE // 1000 * 2)


def speech(ms: int, dbfs: float = -14.0, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    peak = 32767 * 10 ** (dbfs / 20) * math.sqrt(3)  # uniform noise: rms = peak / sqrt(3)
    n = ms * RATE // 1000
    return array.array("h", (int(rng.uniform(-peak, peak)) for _ in range(n))).tobytes()


def chunks(pcm: bytes, ms: int = CHUNK_MS) -> list[bytes]:
    size = ms * RATE // 1000 * 2
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


def rms(pcm: bytes) -> float:
    samples = array.array("h", pcm)
    if not samples:
        return 0.0
    return math.sqrt(sum(s * s for s in samples) / len(samples))
