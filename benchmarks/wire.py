"""Timestamped PCM chunks and the figures computed from them, shared by every benchmark process.

A chunk's first bytes carry (tab, sequence number, CLOCK_MONOTONIC send time in ns). CLOCK_MONOTONIC is
system-wide on Linux, so a stamp written in one process can be compared with a clock read in another.
The stamp rides inside the audio because that is the only thing every intermediary must pass unchanged.
"""

from __future__ import annotations

import base64
import binascii
import struct
import time

import numpy as np

STAMP = struct.Struct("<IQq")  # tab, seq, monotonic ns
# Base64 characters that decode to at least the stamp (whole 4-character groups).
STAMP_B64 = -(-STAMP.size // 3) * 4
BYTES_PER_MS = 48  # PCM16 mono at 24 kHz
UPLINK_BYTES = 20 * BYTES_PER_MS
DOWNLINK_BYTES = 100 * BYTES_PER_MS  # the delta size Voice Live sends


def chunk(tab: int, seq: int, nbytes: int) -> str:
    """Base64 PCM whose stamp is taken now: call it right before the send."""
    head = STAMP.pack(tab, seq, time.monotonic_ns())
    return base64.b64encode(head + bytes(nbytes - len(head))).decode()


def read_stamp(data: str) -> tuple[int, int, int]:
    """(tab, seq, sent_ns) from a chunk's base64, decoding only its first characters."""
    return STAMP.unpack_from(binascii.a2b_base64(data[:STAMP_B64]))


class Sequence:
    """Arrival order of one stream: distinct sequence numbers seen and how many arrived late."""

    __slots__ = ("seen", "highest", "reordered")

    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.highest = -1
        self.reordered = 0

    def add(self, seq: int) -> None:
        if seq < self.highest:
            self.reordered += 1
        self.highest = max(self.highest, seq)
        self.seen.add(seq)


def percentiles_ms(samples_ns: list[int] | np.ndarray) -> dict[str, float | None]:
    if len(samples_ns) == 0:
        return {"p50": None, "p99": None, "max": None, "n": 0}
    values = np.asarray(samples_ns, dtype=np.float64) / 1e6
    p50, p99 = np.percentile(values, [50, 99])
    return {
        "p50": round(float(p50), 2),
        "p99": round(float(p99), 2),
        "max": round(float(values.max()), 2),
        "n": len(values),
    }
