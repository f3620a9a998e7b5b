"""What one tab's session counted, for its `session.closed` log line: one object the session's parts share."""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass(slots=True)
class SessionStats:
    chunks_up: int = 0  # audio messages relayed to Voice Live
    chunks_down: int = 0  # audio deltas relayed to the tab
    dropped_up: int = 0  # audio messages dropped (no upstream ready, or over the audio-rate limit)
    barge_ins: int = 0  # replies the user talked over
    bad_frames: int = 0  # frames the protocol refused
    warnings: int = 0  # `warning` events from Voice Live (notices.py)
    # The last rate_limits.updated figures per name (tokens, requests): {remaining, limit, reset_seconds}.
    rate_limits: dict[str, dict] = field(default_factory=dict)

    def fields(self) -> dict[str, object]:
        counts: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "rate_limits"}
        for name, limit in self.rate_limits.items():
            counts[f"{name}_remaining"] = limit["remaining"]
        return counts
