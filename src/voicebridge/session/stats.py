"""What one tab's session counted, for its `session.closed` log line: one object the session's parts share."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(slots=True)
class SessionStats:
    chunks_up: int = 0  # audio messages relayed to Voice Live
    chunks_down: int = 0  # audio deltas relayed to the tab
    dropped_up: int = 0  # audio messages dropped (no upstream ready, or over the audio-rate limit)
    barge_ins: int = 0  # replies the user talked over
    bad_frames: int = 0  # frames the protocol refused

    def fields(self) -> dict[str, int]:
        return asdict(self)
