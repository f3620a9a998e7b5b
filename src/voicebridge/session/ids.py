"""Event ids of the events the bridge sends upstream on its own behalf (barge-in, replay)."""

from __future__ import annotations

import itertools

# Events the bridge sends itself carry this prefix so the errors they provoke stay internal.
INTERNAL_EVENT_PREFIX = "vb-"

_event_ids = itertools.count(1)


def internal_id(kind: str) -> str:
    return f"{INTERNAL_EVENT_PREFIX}{kind}-{next(_event_ids)}"
