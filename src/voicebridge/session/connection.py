"""The run's current upstream connection, as the event handlers and barge-in see it."""

from __future__ import annotations

import asyncio
import logging
import time

from azure.ai.voicelive.aio import ConnectionError as VoiceLiveConnectionError
from azure.ai.voicelive.aio import VoiceLiveConnection

from ..tasks import TaskOwner
from .gate import ResponseGate
from .replay import Replay

log = logging.getLogger("voicebridge.session")


class UpstreamLink:
    """Which connection is current, how this attempt is going, and sends on the side as owned tasks."""

    def __init__(self, tasks: TaskOwner, session_id: str = ""):
        self._tasks = tasks
        self._tail: asyncio.Task[None] | None = None  # the last side send: the next one goes after it
        self.gate = ResponseGate(session_id, self.send_soon)
        self.conn: VoiceLiveConnection | None = None
        self.reconnect = False  # this attempt restores a lost connection
        self.ready = False  # the service confirmed the session on this connection
        self.configured = False  # session.updated arrived (ready waits for the replay too)
        self.replay = Replay()
        self.expires_at: float | None = None  # session.created's expires_at (unix seconds), if it said
        self.rolled = False  # this connection replaced one that was about to expire: the tab is not told
        self._opened_at = 0.0
        self.endpoint = 0  # which of AZURE_VOICE_LIVE_ENDPOINT the current connection spends

    def connecting(self, reconnect: bool) -> None:
        self._opened_at = time.monotonic()
        self.reconnect = reconnect

    def use(self, conn: VoiceLiveConnection, rolled: bool = False) -> None:
        self.conn = conn
        self.rolled = rolled
        self.expires_at = None
        self.ready = False
        self.configured = False
        self.replay = Replay()
        self.gate.reset()
        self._tail = None

    def release(self) -> VoiceLiveConnection | None:
        conn, self.conn = self.conn, None
        return conn

    def confirmed(self) -> float:
        """The service confirmed the session: milliseconds since this attempt began."""
        self.ready = True
        return (time.monotonic() - self._opened_at) * 1000.0

    def send_soon(self, event: dict, name: str) -> None:
        """Send on the side, after every event sent this way before (an item before the response that
        answers it)."""
        if self.conn is not None:
            self._tail = self._tasks.spawn(_send_after(self._tail, self.conn, event), name)

    def send_soon_many(self, events: list[dict], name: str) -> None:
        """Several events that must reach the service in this order."""
        for event in events:
            self.send_soon(event, name)


async def quiet_send(conn: VoiceLiveConnection, event: dict) -> None:
    try:
        await conn.send(event)
    except (VoiceLiveConnectionError, OSError) as exc:
        log.info("event=upstream.send_failed type=%s detail=%s", event.get("type"), exc)


async def _send_after(previous: asyncio.Task[None] | None, conn: VoiceLiveConnection, event: dict) -> None:
    if previous is not None and not previous.done():
        await asyncio.wait([previous])  # its own failure is its own: this event goes anyway
    await quiet_send(conn, event)


async def quiet_close(conn: VoiceLiveConnection) -> None:
    try:
        await conn.close()
    except Exception as exc:  # closing must never raise into the session's own cleanup
        log.info("event=upstream.close_failed detail=%s", exc)
