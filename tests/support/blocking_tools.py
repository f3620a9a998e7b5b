"""A tool module with the mistake a tool author makes: an `async def` tool that blocks the event loop
(time.sleep instead of asyncio.sleep), used by tests/serving/test_heartbeat.py (VOICEBRIDGE_TOOLS)."""

from __future__ import annotations

import time

from voicebridge.tools import tool


@tool
async def block_the_loop(seconds: float = 120.0) -> str:
    """Wait, wrongly: time.sleep in a coroutine freezes every tab of its worker."""
    time.sleep(seconds)
    return "done"
