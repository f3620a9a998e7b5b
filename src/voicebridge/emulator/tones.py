"""The emulator's stand-in for speech: a sine tone as long as a reply would take to say."""

from __future__ import annotations

import math
import struct

from ..protocol import SAMPLE_RATE

SAMPLES_PER_MS = SAMPLE_RATE // 1000
TEXT_REPLY_MS_PER_WORD, TEXT_REPLY_MS = 150, (600, 3000)


def text_tone(text: str) -> bytes:
    low, high = TEXT_REPLY_MS
    return tone(max(low, min(high, TEXT_REPLY_MS_PER_WORD * len(text.split()))))


def tone(ms: int = 600, hz: int = 440, dbfs: float = -20.0) -> bytes:
    amplitude = 32767 * 10 ** (dbfs / 20)
    count = ms * SAMPLES_PER_MS
    return struct.pack(f"<{count}h", *(int(amplitude * math.sin(2 * math.pi * hz * n / SAMPLE_RATE))
                                        for n in range(count)))
