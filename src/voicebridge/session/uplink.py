"""The tab's microphone audio on its way to Voice Live: queued in order, sent by one task per connection."""

from __future__ import annotations

import asyncio
from collections import deque

from azure.ai.voicelive.aio import ConnectionError as VoiceLiveConnectionError
from azure.ai.voicelive.aio import VoiceLiveConnection

from ..upstream import send_audio


class Uplink:
    def __init__(self) -> None:
        self._queue: deque[str] = deque()
        self._wake = asyncio.Event()

    def push(self, data: str) -> None:
        self._queue.append(data)
        self._wake.set()

    def clear(self) -> None:
        self._queue.clear()

    async def pump(self, conn: VoiceLiveConnection) -> None:
        """Send queued audio until cancelled or the connection goes away (the receiving side notices that)."""
        queue = self._queue
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while queue:
                    await send_audio(conn, queue.popleft())
        except (VoiceLiveConnectionError, OSError):
            return
