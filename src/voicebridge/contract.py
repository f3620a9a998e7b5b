"""The page's copy of the wire contract: static/js/contract.js, generated from protocol.py.

The page has no build step, so the generated module is committed beside the page's other modules and
served like them (the audio worklets import it too). tests/bridge/test_contract.py fails while it is
stale; `python -m voicebridge.contract` writes it again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from enum import Enum
from pathlib import Path

from . import protocol

TARGET = Path(__file__).resolve().parent / "static" / "js" / "contract.js"

HEADER = """\
// The browser ↔ bridge contract (docs/protocol.md), generated from src/voicebridge/protocol.py by
// `python -m voicebridge.contract`. Do not edit: change protocol.py and generate again.
"""


def _enum(cls: type[Enum]) -> str:
    members = "".join(f"  {m.name}: {json.dumps(m.value)},\n" for m in cls)
    return f"export const {cls.__name__} = Object.freeze({{\n{members}}});\n"


def _list(name: str, values: Iterable[Enum], order: type[Enum]) -> str:
    chosen = set(values)
    items = ", ".join(json.dumps(m.value) for m in order if m in chosen)
    return f"export const {name} = Object.freeze([{items}]);\n"


def render() -> str:
    parts = [
        HEADER,
        "// PCM16 mono both ways; a frame over MAX_FRAME_BYTES closes the socket (CloseCode.MESSAGE_TOO_BIG).\n"
        f"export const SAMPLE_RATE = {protocol.SAMPLE_RATE};\n"
        f"export const MAX_FRAME_BYTES = {protocol.MAX_FRAME_BYTES};\n"
        f"export const MAX_TEXT_CHARS = {protocol.MAX_TEXT_CHARS};\n",
        "// session.start's `history`: at most this many items and UTF-8 bytes of text in all.\n"
        f"export const MAX_START_HISTORY_ITEMS = {protocol.MAX_START_HISTORY_ITEMS};\n"
        f"export const MAX_START_HISTORY_BYTES = {protocol.MAX_START_HISTORY_BYTES};\n",
        _enum(protocol.State),
        "// Audio flows both ways in these states.\n" + _list("ACTIVE_STATES", protocol.ACTIVE_STATES, protocol.State),
        _enum(protocol.ClientType),
        _enum(protocol.ServerType),
        _enum(protocol.ToolStatus),
        _enum(protocol.ApprovalEnd),
        _enum(protocol.Role),
        _enum(protocol.ErrorCode),
        _enum(protocol.WarningCode),
        "// After these the server has ended (or never started) the session: retrying would only repeat them.\n"
        + _list("FATAL_ERRORS", protocol.FATAL_ERRORS, protocol.ErrorCode),
        _enum(protocol.CloseCode),
    ]
    return "\n".join(parts)


def main() -> None:
    TARGET.write_text(render(), encoding="utf-8")
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
