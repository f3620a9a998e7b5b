"""How fast this instance may open Voice Live connections, and how many tokens it spends, per endpoint.

Capacity is the service's quota, not our CPU (issue 23): a Voice Live resource on S0 takes 30 new
connections and about 100,000 tokens per minute. Every start, reconnect and rollover of every worker
draws from one `Pacer` per worker over one `CapacityBoard` for the instance, so the instance as a whole
stays inside the quota and a tab that has to wait is told so (`upstream_busy`) instead of failing.

The board is anonymous shared memory the master makes before forking, like balance.py's boards, and
like them every worker writes only its own row: the connections it opened in the last window (a ring of
times), the tokens it was billed per second, when an endpoint refused it (HTTP 429: not before
`Retry-After`), and the arrival time of the oldest tab waiting in each of its queues. Reading adds the
rows up. Nothing is locked: two workers granting at the very same instant may open one connection more
than the window allows, which the service answers with one 429, which then slows every worker.

Order is fair across the workers: a reconnect of a live conversation (a lost upstream, or a start that
carries the conversation's history after a deploy) goes before any new start, and within each class
the oldest waiter goes first; a worker grants to its own head only when no sibling's head is older.
Times are CLOCK_MONOTONIC, the same clock in every process of the machine.
"""

from __future__ import annotations

import asyncio
import math
import mmap
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

WINDOW_S = 60.0  # the service counts connections and tokens per minute
TOKEN_BUCKETS = 60  # tokens are kept per 1/60 of the window
# While a sibling's waiter is ahead, a worker looks again this often (it cannot be woken by a sibling).
SIBLING_POLL_S = 0.25
# An endpoint that refused without Retry-After is skipped for a backoff growing from this, up to the cap.
REFUSAL_BACKOFF_S = (1.0, 30.0)
# An endpoint whose tokens in the window reached this share of its budget takes new sessions last.
TOKENS_NEAR_FULL = 0.9
# Our clock and the service's differ by a handshake's travel: a connection counts as ours for this much
# longer than the window, so the one that replaces it never reaches the service a moment early.
WINDOW_MARGIN = 0.03
_INF = float("inf")


@dataclass(frozen=True, slots=True)
class Quota:
    connects: int  # per window and endpoint, for the instance; 0: no pacing
    tokens: int  # per window and endpoint; 0: not counted against
    window_s: float = WINDOW_S

    @property
    def held_s(self) -> float:
        """How long a connection counts against the quota, here."""
        return self.window_s * (1 + WINDOW_MARGIN)


class CapacityBoard:
    """The instance's connection log, token counts and queue heads, one row per worker slot."""

    # per (slot, endpoint): blocked_until, refusals, grant ring position, token stamps + counts, grants
    # per slot: oldest waiting reconnect, oldest waiting start, reconnects waiting, starts waiting, tabs
    _HEAD = 5

    def __init__(self, slots: int, endpoints: int, quota: Quota):
        self.slots = max(1, slots)
        self.endpoints = max(1, endpoints)
        self.quota = quota
        self._ring = max(1, quota.connects)
        self._per_endpoint = 3 + 2 * TOKEN_BUCKETS + self._ring
        self._per_slot = self._HEAD + self.endpoints * self._per_endpoint
        self._memory = mmap.mmap(-1, self.slots * self._per_slot * 8)  # anonymous and shared across fork
        self._cells = memoryview(self._memory).cast("d")
        for slot in range(self.slots):
            self.clear(slot)

    def _base(self, slot: int, endpoint: int) -> int:
        return slot * self._per_slot + self._HEAD + endpoint * self._per_endpoint

    def clear(self, slot: int) -> None:
        """A (re)started worker has nobody waiting; the connections its predecessor opened still count."""
        if 0 <= slot < self.slots:
            self.publish_heads(slot, _INF, _INF, 0, 0)
            self.publish_tabs(slot, 0)

    # --- connections -----------------------------------------------------------------------------

    def grants_since(self, endpoint: int, since: float) -> list[float]:
        """When the instance opened connections to this endpoint after `since`."""
        times = []
        for slot in range(self.slots):
            base = self._base(slot, endpoint) + 3 + 2 * TOKEN_BUCKETS
            times.extend(t for t in self._cells[base : base + self._ring] if t > since)
        return times

    def grant(self, slot: int, endpoint: int, now: float) -> int:
        """Count a connection from `now`; returns its place in the ring (for `restamp`)."""
        base = self._base(slot, endpoint)
        position = int(self._cells[base + 2])
        self._cells[base + 3 + 2 * TOKEN_BUCKETS + position] = now
        self._cells[base + 2] = (position + 1) % self._ring
        return position

    def restamp(self, slot: int, endpoint: int, position: int, now: float) -> None:
        """The handshake was accepted now: the service counted it at the latest now, so it counts from now."""
        self._cells[self._base(slot, endpoint) + 3 + 2 * TOKEN_BUCKETS + position] = now

    def refused(self, slot: int, endpoint: int, until: float) -> None:
        base = self._base(slot, endpoint)
        self._cells[base] = max(self._cells[base], until)
        self._cells[base + 1] += 1

    def accepted(self, slot: int, endpoint: int) -> None:
        self._cells[self._base(slot, endpoint) + 1] = 0

    def blocked_until(self, endpoint: int) -> float:
        return max(self._cells[self._base(slot, endpoint)] for slot in range(self.slots))

    def refusals(self, endpoint: int) -> int:
        return int(max(self._cells[self._base(slot, endpoint) + 1] for slot in range(self.slots)))

    # --- tokens ----------------------------------------------------------------------------------

    def spend(self, slot: int, endpoint: int, tokens: int, now: float) -> None:
        width = self.quota.window_s / TOKEN_BUCKETS
        tick = math.floor(now / width)
        base = self._base(slot, endpoint) + 3 + (tick % TOKEN_BUCKETS) * 2
        if self._cells[base] != tick:
            self._cells[base], self._cells[base + 1] = tick, 0
        self._cells[base + 1] += tokens

    def tokens_in_window(self, endpoint: int, now: float) -> int:
        width = self.quota.window_s / TOKEN_BUCKETS
        oldest = math.floor(now / width) - TOKEN_BUCKETS + 1
        total = 0.0
        for slot in range(self.slots):
            base = self._base(slot, endpoint) + 3
            for bucket in range(TOKEN_BUCKETS):
                if self._cells[base + 2 * bucket] >= oldest:
                    total += self._cells[base + 2 * bucket + 1]
        return int(total)

    # --- queues ----------------------------------------------------------------------------------

    def publish_heads(self, slot: int, reconnect: float, start: float, reconnects: int, starts: int) -> None:
        base = slot * self._per_slot
        cells = self._cells
        cells[base], cells[base + 1], cells[base + 2], cells[base + 3] = reconnect, start, reconnects, starts

    def publish_tabs(self, slot: int, tabs: int) -> None:
        """The tabs this worker holds: a drain spreads the instance's reconnects over the quota's time."""
        if 0 <= slot < self.slots:
            self._cells[slot * self._per_slot + 4] = tabs

    def tabs(self) -> int:
        return int(sum(self._cells[slot * self._per_slot + 4] for slot in range(self.slots)))

    def heads(self, exclude: int) -> list[tuple[float, float, int, int]]:
        out = []
        for slot in range(self.slots):
            if slot != exclude:
                base = slot * self._per_slot
                r, s, nr, ns = self._cells[base : base + 4].tolist()
                out.append((r, s, int(nr), int(ns)))
        return out


@dataclass(frozen=True, slots=True)
class Grant:
    """Leave to open one connection to `endpoint`; `settle` it once the handshake is over."""

    endpoint: int
    position: int = -1  # its place in the board's ring (-1: not counted, no pacing)


@dataclass(slots=True)
class _Waiter:
    arrived: float
    future: asyncio.Future = field(repr=False)


class Pacer:
    """This worker's view of the instance's quota: who may open a connection to which endpoint, when.

    Loop-thread only. `acquire` returns the endpoint to connect to, at once when there is room and nobody
    is ahead, else after waiting its turn (told through `waiting(seconds)`)."""

    def __init__(self, board: CapacityBoard, slot: int = 0, clock: Callable[[], float] = time.monotonic):
        self.board = board
        self.slot = max(0, slot)
        self._clock = clock
        self.quota = board.quota
        self._queues: tuple[deque[_Waiter], deque[_Waiter]] = (deque(), deque())  # reconnects, starts
        self._timer: asyncio.TimerHandle | None = None
        # Handshakes under way per endpoint, and the endpoints that accepted our last one. Until an
        # endpoint has accepted one (after the start, or a 429), one handshake at a time goes to it: a
        # fresh process cannot know what its predecessor opened in the last window (a deploy), and one
        # refusal is enough to learn it is full.
        self._in_flight = [0] * board.endpoints
        self._trusted = [False] * board.endpoints
        board.clear(self.slot)

    @property
    def endpoints(self) -> int:
        return self.board.endpoints

    async def acquire(self, reconnect: bool, waiting: Callable[[float], None]) -> Grant:
        """Wait for a free connection; returns which endpoint to open it to."""
        queue = self._queues[0 if reconnect else 1]
        waiter = _Waiter(self._clock(), asyncio.get_running_loop().create_future())
        queue.append(waiter)
        self._publish()
        self._pump()
        if not waiter.future.done():
            waiting(self.expected_wait(reconnect, len(queue) - 1))
        try:
            return await waiter.future
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():
                self.settled(waiter.future.result(), accepted=False)  # granted, then abandoned
            raise
        finally:
            if waiter in queue:
                queue.remove(waiter)
            self._publish()
            self._pump()

    def settled(self, grant: Grant, accepted: bool) -> None:
        """The handshake `acquire` allowed is over (accepted, refused, failed or abandoned). An accepted
        one counts from now: however long it travelled, the service counted it by now. A refused or
        failed one keeps counting from its grant (the service may have counted it)."""
        endpoint = grant.endpoint
        self._in_flight[endpoint] = max(0, self._in_flight[endpoint] - 1)
        if accepted:
            self._trusted[endpoint] = True
            if grant.position >= 0:
                self.board.restamp(self.slot, endpoint, grant.position, self._clock())
        self._pump()

    def refused(self, endpoint: int, retry_after: float | None) -> float:
        """The endpoint answered 429 (or failed): skip it until then; returns the seconds it is skipped."""
        self._trusted[endpoint] = False
        refusals = self.board.refusals(endpoint)
        if retry_after is None:
            low, cap = REFUSAL_BACKOFF_S
            retry_after = min(cap, low * 2**refusals) * random.uniform(0.75, 1.25)
        self.board.refused(self.slot, endpoint, self._clock() + retry_after)
        return retry_after

    def accepted(self, endpoint: int) -> None:
        self.board.accepted(self.slot, endpoint)

    def spend(self, endpoint: int, tokens: int) -> None:
        if 0 <= endpoint < self.board.endpoints and tokens > 0:
            self.board.spend(self.slot, endpoint, tokens, self._clock())

    def expected_wait(self, reconnect: bool, position: int) -> float:
        """Seconds until the waiter at `position` in its local queue is expected to get a connection."""
        ahead = position + (0 if reconnect else len(self._queues[0]))
        for _, _, nr, ns in self.board.heads(self.slot):
            ahead += nr if reconnect else nr + ns
        now = self._clock()
        times = sorted(t for e in range(self.board.endpoints) for t in self._free_at(e))
        if self.quota.connects <= 0:
            return max(0.0, times[0] - now)  # unpaced: only a refusing endpoint makes anyone wait
        cycle, index = divmod(ahead, len(times))
        return max(0.0, times[index] + cycle * self.quota.window_s - now)

    def spread_s(self, tabs: int) -> float:
        """How long `tabs` reconnecting tabs need to fit the quota (what a drain tells them to spread over)."""
        if self.quota.connects <= 0:
            return 0.0
        return tabs / (self.quota.connects * self.board.endpoints) * self.quota.window_s

    # --- the queue -------------------------------------------------------------------------------

    def _free_at(self, endpoint: int) -> list[float]:
        """When each of the endpoint's connections in the window becomes free (now: free already)."""
        now = self._clock()
        quota = self.quota
        blocked = self.board.blocked_until(endpoint)
        if quota.connects <= 0:
            return [max(now, blocked)]
        grants = sorted(self.board.grants_since(endpoint, now - quota.held_s))
        free = [now] * max(0, quota.connects - len(grants)) + [t + quota.held_s for t in grants[: quota.connects]]
        return [max(t, blocked) for t in free][: quota.connects]

    def _room(self, now: float, new_session: bool) -> int:
        """The endpoint with the most headroom now (connections and tokens), or -1. A new session does
        not go to an endpoint that spent its token budget for the window; a live conversation may."""
        best, best_score = -1, None
        quota = self.quota
        for endpoint in range(self.board.endpoints):
            if self.board.blocked_until(endpoint) > now:
                continue
            if not self._trusted[endpoint] and self._in_flight[endpoint]:
                continue  # probing: one handshake at a time until it accepts one
            used = len(self.board.grants_since(endpoint, now - quota.held_s)) if quota.connects > 0 else 0
            if quota.connects > 0 and used >= quota.connects:
                continue
            tokens = self.board.tokens_in_window(endpoint, now) / quota.tokens if quota.tokens > 0 else 0.0
            connections = used / quota.connects if quota.connects > 0 else 0.0
            if new_session and tokens >= 1.0:
                continue
            score = (tokens >= TOKENS_NEAR_FULL, connections + tokens)
            if best_score is None or score < best_score:
                best, best_score = endpoint, score
        return best

    def _first_here(self) -> int:
        """Which local queue's head is the instance's first waiter (0, 1), or -1 when a sibling's is."""
        local = [q[0].arrived if q else _INF for q in self._queues]
        others = self.board.heads(self.slot)
        for klass in (0, 1):
            sibling = min((h[klass] for h in others), default=_INF)
            if local[klass] < _INF and local[klass] <= sibling:
                return klass
            if sibling < _INF:
                return -1
        return -1

    def _pump(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while any(self._queues):
            now = self._clock()
            klass = self._first_here()
            endpoint = self._room(now, new_session=klass == 1) if klass >= 0 else -1
            if endpoint < 0:
                self._wake_later(now, sibling_ahead=klass < 0)
                return
            waiter = self._queues[klass].popleft()
            if waiter.future.done():  # cancelled meanwhile
                continue
            position = self.board.grant(self.slot, endpoint, now) if self.quota.connects > 0 else -1
            self._in_flight[endpoint] += 1
            waiter.future.set_result(Grant(endpoint, position))
            self._publish()

    def _wake_later(self, now: float, sibling_ahead: bool) -> None:
        soonest = min((t for e in range(self.board.endpoints) for t in self._free_at(e)), default=now + 1.0)
        # Free already, yet nothing granted: the tokens are spent, which frees a bucket at a time.
        delay = max(0.01, soonest - now) if soonest > now else self.quota.window_s / TOKEN_BUCKETS
        if sibling_ahead or self.board.slots > 1:
            delay = min(delay, SIBLING_POLL_S)
        self._timer = asyncio.get_running_loop().call_later(delay, self._pump)

    def _publish(self) -> None:
        reconnects, starts = self._queues
        self.board.publish_heads(
            self.slot,
            reconnects[0].arrived if reconnects else _INF,
            starts[0].arrived if starts else _INF,
            len(reconnects),
            len(starts),
        )
