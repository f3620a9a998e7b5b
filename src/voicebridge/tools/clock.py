"""The worked example of a tool: the current time, so the agent can answer "what time is it in Tokyo?".

Enable it with `VOICEBRIDGE_TOOLS=voicebridge.tools.clock`.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import tool


@tool(label="Checking the time")
def get_current_time(timezone: str = "UTC") -> dict:
    """Tell the current date and time in a time zone.

    Args:
        timezone: an IANA time zone name such as Europe/Paris, America/New_York or UTC.
    """
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {timezone!r}; use an IANA name such as Europe/Paris") from None
    now = datetime.now(zone)
    return {
        "timezone": timezone,
        "iso": now.isoformat(timespec="seconds"),
        "weekday": now.strftime("%A"),
        "time": now.strftime("%H:%M"),
        "utc_offset": now.strftime("%z"),
    }
