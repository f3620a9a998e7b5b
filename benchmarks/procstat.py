"""CPU time and resident memory of a process tree, straight from /proc (Linux only)."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """The process and all its descendants (gunicorn's worker is a child of the master)."""
    pids = [pid]
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return pids
    for task in tasks:
        for child in _read(str(task / "children")).split():
            pids.extend(tree(int(child)))
    return pids


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except (FileNotFoundError, ProcessLookupError):
        return ""  # the process has ended since the tree was taken


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        stat = _read(f"/proc/{pid}/stat")
        if stat:
            # Fields after the command name (which may contain spaces) start at field 3; utime, stime are 14, 15.
            fields = stat.rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for line in _read(f"/proc/{pid}/status").splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def machine_busy_seconds() -> float:
    """CPU time every core has spent on anything but idling, summed (from the first line of /proc/stat)."""
    user, nice, system, idle, iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / _TICKS
