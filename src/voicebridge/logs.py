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


_session_log = logging.getLogger("voicebridge.session")


def event(name: str, session_id: str, **fields: object) -> None:
    """One lifecycle line of a session: `event=<name> session=<id> key=value…`."""
    extra = "".join(f" {key}={value}" for key, value in fields.items())
    _session_log.info("event=%s session=%s%s", name, session_id, extra)
