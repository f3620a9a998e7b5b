"""Tools the bridge tests enable with VOICEBRIDGE_TOOLS=tooldemo (tests/support on PYTHONPATH)."""

from __future__ import annotations

import asyncio
import os
import time

from voicebridge.tools import tool


@tool
async def add(a: int, b: int = 1) -> int:
    """Add two whole numbers."""
    await asyncio.sleep(0)
    return a + b


@tool(label="Shouting")
def shout(text: str) -> str:
    """Say a text louder."""
    return text.upper()


@tool
def explode() -> None:
    """Always fails."""
    raise RuntimeError("kaboom")


@tool
async def hang() -> None:
    """Never answers."""
    await asyncio.Event().wait()


@tool
def wait_for_file(path: str) -> bool:
    """Block this thread until a file exists (a sync tool that takes its time)."""
    deadline = time.monotonic() + 20
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    return os.path.exists(path)


@tool(label="Looking up your order")
def look_up_order(path: str) -> str:
    """Look up the caller's order (answers once a file exists: a tool that takes its time)."""
    return "order A-1 ships tomorrow" if wait_for_file(path) else "the order system did not answer"
