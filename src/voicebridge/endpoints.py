"""Every Voice Live endpoint of the instance, and which one a new upstream connection goes to (issue 23).

AZURE_VOICE_LIVE_ENDPOINT may list several resources, each with its own quota and its own credential
(upstream.Connector). A connection waits its turn in the pacer (pacer.py), which names the endpoint with
the most headroom; a handshake refused with 429 is the quota speaking, not an outage: the endpoint is
skipped for its Retry-After (or a growing backoff), every worker's pacer slows down for it, and the
connection waits its turn again — on another endpoint if one has room. Other failures of one endpoint
among several send the connection to the next; with one endpoint they are the caller's to retry.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from azure.ai.voicelive.aio import VoiceLiveConnection

from .pacer import Pacer
from .protocol import ErrorCode
from .upstream import Connector, UpstreamBusy, UpstreamError

log = logging.getLogger("voicebridge.upstream")

# A connection that keeps meeting 429 gives up after this many refusals (each waited out first).
MAX_BUSY_ATTEMPTS = 6


@dataclass(frozen=True, slots=True)
class Opened:
    conn: VoiceLiveConnection
    endpoint: int  # index into AZURE_VOICE_LIVE_ENDPOINT: whose tokens the connection spends


class EndpointPool:
    def __init__(self, connectors: Sequence[Connector], pacer: Pacer):
        assert connectors and len(connectors) == pacer.endpoints
        self.connectors = tuple(connectors)
        self.pacer = pacer

    @property
    def hosts(self) -> list[str]:
        return [c.endpoint for c in self.connectors]

    async def open(
        self, reconnect: bool, waiting: Callable[[float], None], conversation_id: str | None = None
    ) -> Opened:
        """A configured-to-be connection, after waiting its turn. `reconnect`: it continues a live
        conversation (goes before new starts); `waiting(seconds)` is told each expected wait;
        `conversation_id`: in agent mode, the agent conversation the connection continues."""
        busy = failed = 0
        while True:
            grant = await self.pacer.acquire(reconnect, waiting)
            index = grant.endpoint
            connector = self.connectors[index]
            accepted = False
            try:
                conn = await connector.open(conversation_id)
                accepted = True
            except UpstreamBusy as exc:
                busy += 1
                skipped = self.pacer.refused(index, exc.retry_after)
                log.warning(
                    "event=upstream.quota endpoint=%s retry_after=%s skipped_s=%.1f attempt=%d",
                    connector.endpoint, exc.retry_after, skipped, busy,
                )
                if busy >= MAX_BUSY_ATTEMPTS:
                    raise UpstreamError(
                        ErrorCode.UPSTREAM_UNAVAILABLE,
                        f"Voice Live stayed at its connection quota through {busy} attempts; please try again later.",
                    ) from exc
                continue
            except UpstreamError as exc:
                failed += 1
                if exc.code is ErrorCode.UPSTREAM_AUTH or len(self.connectors) == 1 or failed >= len(self.connectors):
                    raise
                skipped = self.pacer.refused(index, None)
                log.warning(
                    "event=upstream.endpoint_skipped endpoint=%s code=%s skipped_s=%.1f",
                    connector.endpoint, exc.code, skipped,
                )
                continue
            finally:
                self.pacer.settled(grant, accepted)
            self.pacer.accepted(index)
            return Opened(conn, index)

    def tokens_used(self, endpoint: int, tokens: int) -> None:
        self.pacer.spend(endpoint, tokens)

    def publish_tabs(self, tabs: int) -> None:
        self.pacer.board.publish_tabs(self.pacer.slot, tabs)

    def reconnect_within_s(self, tabs_here: int) -> int:
        """Over how many seconds tabs told to reconnect (a drain) should spread for the quota to take
        them all: every tab of the instance, as the workers published them (at least this worker's)."""
        self.publish_tabs(tabs_here)
        return math.ceil(self.pacer.spread_s(max(tabs_here, self.pacer.board.tabs())))

    async def close(self) -> None:
        for connector in self.connectors:
            await connector.close()
