"""Logging: one line per lifecycle event, `event=<name> session=<id> key=value…`, never per audio chunk."""

from __future__ import annotations

import logging
import sys

# Libraries that would otherwise log every frame (the SDK logs each received message at DEBUG).
_QUIET = ("azure", "aiohttp", "urllib3", "websockets", "simple_websocket", "gunicorn.access")


def configure(level: str = "INFO") -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_voicebridge", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        handler._voicebridge = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
