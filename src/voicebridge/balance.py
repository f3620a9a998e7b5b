"""How busy each worker is, shared between the worker processes, so that new connections go to the
least busy one.

Every worker accepts on the same listening socket and the kernel wakes them all; left alone, an idle
worker that happens to wake first would take every new tab while its siblings sit idle. Each worker
publishes its open connections on this board (shared memory the master creates before forking); a
worker busier than its least busy sibling lets a new connection wait a moment for that sibling, and
takes it itself only if nobody did.
"""

from __future__ import annotations

import hashlib
import mmap

SLOT_BYTES = 4


class LoadBoard:
    def __init__(self, slots: int):
        self.slots = slots
        self._memory = mmap.mmap(-1, max(1, slots) * SLOT_BYTES)  # anonymous and shared across fork
        self._loads = memoryview(self._memory).cast("i")

    def publish(self, slot: int, load: int) -> None:
        if 0 <= slot < self.slots:
            self._loads[slot] = load

    def busier_than_a_sibling(self, slot: int) -> bool:
        if not 0 <= slot < self.slots or self.slots < 2:
            return False
        mine = self._loads[slot]
        return any(self._loads[i] < mine for i in range(self.slots) if i != slot)


def free_slot(taken: set[int], slots: int) -> int:
    """The first slot no living worker uses (a restarted worker takes over its predecessor's)."""
    return next((i for i in range(slots) if i not in taken), -1)


class UserBoard:
    """Each worker's open sessions per user, shared across the worker processes, so that a per-user limit
    holds for the instance, not for each worker (issue 13).

    A worker writes only its own row: per bucket (a user key hashed into one of `buckets`), how many of
    its sessions are open; it reads its siblings' rows when it admits a session. Users whose keys share a
    bucket share a count on the other workers (with a million buckets, rarely); two workers admitting the
    same user at the very same moment may let one more through. Anonymous shared memory, made by the
    master before forking; pages are touched only for buckets in use.
    """

    COUNT_BYTES = 2

    def __init__(self, slots: int, buckets: int = 1 << 20):
        self.slots = slots
        self.buckets = buckets
        self._memory = mmap.mmap(-1, max(1, slots) * buckets * self.COUNT_BYTES)
        self._counts = memoryview(self._memory).cast("h")

    def bucket(self, key: str) -> int:
        return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") % self.buckets

    def publish(self, slot: int, bucket: int, count: int) -> None:
        if 0 <= slot < self.slots:
            self._counts[slot * self.buckets + bucket] = min(count, 32767)

    def elsewhere(self, slot: int, bucket: int) -> int:
        """Open sessions in this bucket on the other workers."""
        return sum(self._counts[i * self.buckets + bucket] for i in range(self.slots) if i != slot)

    def clear(self, slot: int) -> None:
        """A (re)started worker holds no session yet: whatever its predecessor published is void."""
        if 0 <= slot < self.slots:
            start = slot * self.buckets * self.COUNT_BYTES
            self._memory[start : start + self.buckets * self.COUNT_BYTES] = bytes(self.buckets * self.COUNT_BYTES)
