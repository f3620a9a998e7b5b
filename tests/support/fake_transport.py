"""An asyncio transport with no socket behind it, for testing protocols in process (what websockets does
for its own Connection). It keeps asyncio's selector transport's rules that the protocols rely on:
`close()` stops reading and reports `connection_lost` on a later loop iteration (after what was
written), `abort()` the same without flushing, writes after closing are dropped, and pausing a closing
transport does nothing."""

from __future__ import annotations

import asyncio
import socket
from typing import Any


class FakeTransport(asyncio.Transport):
    def __init__(self, loop: asyncio.AbstractEventLoop, protocol: asyncio.BaseProtocol | None = None,
                 peer: tuple[str, int] = ("192.0.2.7", 50123), sock: socket.socket | None = None):
        super().__init__()
        self._loop, self._protocol = loop, protocol
        self._peer, self._sock = peer, sock
        self.written = bytearray()
        self.reading = True
        self.closing = False
        self.aborted = False
        self.lost = asyncio.Event()
        self.buffered = 0  # what get_write_buffer_size reports (a tab that does not read)

    # what the protocol calls ----------------------------------------------------------------------
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": self._peer, "sockname": ("127.0.0.1", 8000), "socket": self._sock}.get(name, default)

    def write(self, data: bytes) -> None:
        if not self.closing:
            self.written += data

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def pause_reading(self) -> None:
        if not self.closing:
            self.reading = False

    def resume_reading(self) -> None:
        if not self.closing:
            self.reading = True

    def is_reading(self) -> bool:
        return self.reading and not self.closing

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self._end(aborted=False)

    def abort(self) -> None:
        self._end(aborted=True)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol  # type: ignore[return-value]

    # what the test calls -------------------------------------------------------------------------------
    def take(self) -> bytes:
        """What was written since the last call."""
        out = bytes(self.written)
        self.written.clear()
        return out

    def _end(self, aborted: bool) -> None:
        self.aborted = self.aborted or aborted
        if self.closing:
            return
        self.closing = True
        self._loop.call_soon(self._lost)

    def _lost(self) -> None:
        self.lost.set()
        if self._protocol is not None:
            self._protocol.connection_lost(None)
