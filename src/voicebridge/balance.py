"""How busy each worker is, shared between the worker processes, so that new connections go to the
least busy one.

Every worker accepts on the same listening socket and the kernel wakes them all; left alone, an idle
worker that happens to wake first would take every new tab while its siblings sit idle. Each worker
publishes its open connections on this board (shared memory the master creates before forking); a
worker busier than its least busy sibling lets a new connection wait a moment for that sibling, and
takes it itself only if nobody did.
"""

from __future__ import annotations

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
