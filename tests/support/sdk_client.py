"""Emulator tests: the real emulator on a real port, driven by the real Voice Live SDK."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import numpy as np
from azure.ai.voicelive.aio import connect
from azure.core.credentials import AzureKeyCredential

from voicebridge.emulator import Emulator

RATE = 24_000
BYTES_PER_MS = 48
KEY = "test-key"


def silence(ms: int) -> bytes:
    return bytes(ms * BYTES_PER_MS)


def noise(ms: int, dbfs: float, seed: int = 0) -> bytes:
    """Non-repeating noise at an RMS level: a lost, repeated or reordered 100 ms chunk shows in comparisons."""
    rms = 32767 * 10 ** (dbfs / 20)
    samples = np.random.default_rng(seed).normal(0, rms, ms * RATE // 1000)
    return np.clip(samples, -32768, 32767).astype("<i2").tobytes()


def speech(ms: int, seed: int = 0) -> bytes:
    """Stands in for a voice: loud enough (-20 dBFS RMS) for the default threshold."""
    return noise(ms, -20, seed)


def tone(ms: int, dbfs: float = -12.0, hz: float = 300.0) -> bytes:
    t = np.arange(ms * RATE // 1000) / RATE
    return (np.sin(2 * np.pi * hz * t) * 32767 * 10 ** (dbfs / 20) * np.sqrt(2)).astype("<i2").tobytes()


def url(emu: Emulator) -> str:
    return f"http://127.0.0.1:{emu.port}"


class Client:
    """An SDK connection whose server events are collected in order by a reader task."""

    def __init__(self, conn):
        self.conn = conn
        self.events: list = []
        self.closed = False
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for event in self.conn:
                self.events.append(event)
                async with self._changed:
                    self._changed.notify_all()
        except Exception as exc:  # an aborted transport surfaces as an error out of the iterator
            self.events.append(exc)
        finally:
            self.closed = True
            async with self._changed:
                self._changed.notify_all()

    async def until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    async def wait_for(self, type_: str, start: int = 0, timeout: float = 10.0, where=lambda e: True):
        """First event of `type_` at or after index `start`."""
        found: list = []

        def match() -> bool:
            found[:] = [e for e in self.events[start:] if getattr(e, "type", None) == type_ and where(e)][:1]
            if not found and self.closed:
                raise AssertionError(f"connection closed before {type_}: {self.types(start)}")
            return bool(found)

        await self.until(match, timeout)
        return found[0]

    def types(self, start: int = 0) -> list[str]:
        return [str(getattr(e, "type", e)) for e in self.events[start:]]

    async def roundtrip(self) -> int:
        """Everything sent so far has been processed once the answer to a session.update arrives."""
        mark = len(self.events)
        await self.conn.session.update(session={})
        await self.wait_for("session.updated", start=mark)
        return len(self.events)


@contextlib.asynccontextmanager
async def client(emu: Emulator, key: str = KEY, model: str = "gpt-realtime", **session) -> AsyncIterator[Client]:
    async with connect(endpoint=url(emu), credential=AzureKeyCredential(key), model=model) as conn:
        c = Client(conn)
        await c.wait_for("session.created")
        if session:
            await conn.session.update(session=session)
            await c.wait_for("session.updated")
        try:
            yield c
        finally:
            c._reader.cancel()


def run(coro):
    return asyncio.run(coro)
