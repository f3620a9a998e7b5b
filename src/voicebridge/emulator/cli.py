"""`python -m voicebridge emulator`: the emulator alone, for developing or testing against it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from .records import EmulatorConfig
from .server import Emulator


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voicebridge emulator",
                                     description="Run the built-in Azure AI Voice Live emulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port (default 8765)")
    parser.add_argument("--require-key", metavar="K", help="accept only this api-key / bearer token")
    parser.add_argument("--drop-after", type=float, metavar="S", help="drop every connection after S seconds")
    parser.add_argument("--latency-ms", type=float, default=0, metavar="N", help="delay before every server event")
    parser.add_argument("--pace", type=float, default=1.0, metavar="F",
                        help="seconds per second of reply audio (1 = real time, 0 = as fast as possible)")
    return parser


async def _serve(emulator: Emulator, host: str, port: int) -> None:
    task = asyncio.ensure_future(emulator.serve(host, port))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = EmulatorConfig(required_key=args.require_key, drop_after_s=args.drop_after,
                                latency_ms=args.latency_ms, pace=args.pace)
    except ValueError as exc:
        _parser().error(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(_serve(Emulator(config), args.host, args.port))
    return 0
