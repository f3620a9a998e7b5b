"""The server benchmark: N simulated tabs through the bridge, and the same load through a minimal relay.

Four processes, all on 127.0.0.1: the probe upstream (probe.py), the system under test (the real app,
`python -m voicebridge serve`, or the baseline relay.py), and this one, the load generator. Each tab
connects to /ws, starts a session, waits for `ready`, then streams 20 ms PCM chunks on absolute
deadlines; the probe answers with assistant turns and barge-ins. Every chunk carries its send time
(wire.py), so latency is measured one way, end to end through the intermediary and its two loopback
hops. A fresh probe and system under test serve each scenario so one scenario's memory and sockets
never bleed into the next.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from aiohttp import ClientSession, ClientWebSocketResponse, TCPConnector, WSMsgType

from . import procstat
from .wire import BYTES_PER_MS, UPLINK_BYTES, Sequence, chunk, percentiles_ms, read_stamp

ROOT = Path(__file__).resolve().parents[1]
SYSTEMS = ("bridge", "baseline relay")
CHUNK_S = 0.02
CONNECT_CONCURRENCY = 16
READY_TIMEOUT_S = 60.0
START_LEAD_S = 0.5  # between the last tab getting ready and the first chunk
# Downlink audio stamped later than this before the window's end may legitimately still be in flight.
IN_FLIGHT_S = 1.0
# The load generator missing its own 20 ms deadlines by this much means the machine, not the system
# under test, stalled: such a run's p99 figures say little about the intermediary.
NOISY_LAG_MS = 5.0
START = json.dumps({"type": "session.start"})


@dataclass(frozen=True)
class Target:
    tabs: int | None  # None: applies at every tab count
    label: str
    key: str
    limit: float
    unit: str


TARGETS = (
    Target(50, "uplink p99 added latency", "up_p99", 5.0, "ms"),
    Target(50, "downlink p99 added latency", "down_p99", 5.0, "ms"),
    Target(100, "uplink p99 added latency", "up_p99", 10.0, "ms"),
    Target(100, "downlink p99 added latency", "down_p99", 10.0, "ms"),
    Target(100, "chunks lost (both ways)", "lost", 0, ""),
    Target(100, "chunks reordered (both ways)", "reordered", 0, ""),
    Target(100, "bridge CPU", "cpu_pct", 80.0, "% of one core"),
    Target(100, "memory per session", "mb_per_session", 2.0, "MB"),
    Target(None, "barge-in audio.clear p99", "clear_p99", 10.0, "ms"),
)


class Tab:
    """One simulated browser tab: streams stamped audio up, measures what comes down."""

    def __init__(self, index: int, ws: ClientWebSocketResponse):
        self.index = index
        self.ws = ws
        self.ready = asyncio.Event()
        self.down_latency_ns: list[int] = []
        self.down_order = Sequence()
        self.clears_ns: list[int] = []
        self.errors: Counter[str] = Counter()
        self.lag_ns: list[int] = []
        self.sent = 0
        self._item: str | None = None
        self._item_bytes = 0
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type != WSMsgType.TEXT:
                continue
            arrived = time.monotonic_ns()
            event = json.loads(message.data)
            kind = event.get("type")
            if kind == "audio":
                _, seq, sent = read_stamp(event["data"])
                self.down_latency_ns.append(arrived - sent)
                self.down_order.add(seq)
                if event.get("item_id") != self._item:
                    self._item, self._item_bytes = event.get("item_id"), 0
                self._item_bytes += len(event["data"]) * 3 // 4
            elif kind == "audio.clear":
                self.clears_ns.append(arrived)
                # A real tab reports what it played when it flushes; this one "played" all it got.
                if self._item is not None:
                    report = {
                        "type": "playback",
                        "item_id": self._item,
                        "played_ms": self._item_bytes // BYTES_PER_MS,
                    }
                    await self.ws.send_str(json.dumps(report))
            elif kind == "state" and event.get("state") == "ready":
                self.ready.set()
            elif kind == "error":
                self.errors[str(event.get("code"))] += 1

    async def stream(self, start: float, stop: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = start
        while deadline < stop:
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            self.lag_ns.append(int((loop.time() - deadline) * 1e9))
            await self.ws.send_str(
                '{"type":"audio","data":"' + chunk(self.index, self.sent, UPLINK_BYTES) + '"}'
            )
            self.sent += 1
            deadline = start + self.sent * CHUNK_S

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()


async def _open_tab(client: ClientSession, url: str, index: int, gate: asyncio.Semaphore) -> Tab:
    async with gate:
        tab = Tab(index, await client.ws_connect(url, max_msg_size=4 << 20))
        await tab.ws.send_str(START)
        await asyncio.wait_for(tab.ready.wait(), READY_TIMEOUT_S)
        return tab


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Processes(contextlib.ExitStack):
    """Child processes that are stopped (SIGTERM, then SIGKILL) however the scenario ends."""

    def __init__(self, logdir: Path):
        super().__init__()
        self.logdir = logdir

    def start(self, name: str, args: list[str], env: dict[str, str], **popen: object) -> subprocess.Popen:
        log = self.enter_context(open(self.logdir / f"{name}.log", "wb"))
        proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stderr=log, **popen)
        self.callback(_stop, proc)
        return proc


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "VOICE_LIVE_", "VOICEBRIDGE_"))}
    env.pop("PORT", None)
    return env


def _start_probe(procs: _Processes) -> tuple[subprocess.Popen, int]:
    proc = procs.start("probe", ["-m", "benchmarks.probe"], _clean_env(), stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        raise RuntimeError(f"the probe did not start; see {procs.logdir / 'probe.log'}")
    return proc, int(line.split()[1])


def _start_system(
    procs: _Processes,
    system: str,
    probe_port: int,
    tabs: int,
    extra_env: dict[str, str] | None = None,
    cores: set[int] | None = None,
) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    popen: dict = {"preexec_fn": lambda: os.sched_setaffinity(0, cores)} if cores else {}
    if system == "bridge":
        env = {
            **_clean_env(),
            "AZURE_VOICE_LIVE_ENDPOINT": f"http://127.0.0.1:{probe_port}",
            "AZURE_VOICE_LIVE_API_KEY": "bench",
            "VOICEBRIDGE_MAX_SESSIONS": str(tabs + 16),
            "VOICEBRIDGE_MAX_SESSIONS_PER_ADDRESS": "0",  # every tab comes from 127.0.0.1
            "VOICEBRIDGE_UPSTREAM_CONNECTS_PER_MINUTE": "0",  # the relay's cost, not the quota (benchmarks/capacity.py)
            "VOICEBRIDGE_DRAIN_SECONDS": "2",
            # One worker, like the single-process relay it is compared with (and so that the memory per
            # session is measured on the worker that holds the sessions).
            "VOICEBRIDGE_WORKERS": "1",
            **(extra_env or {}),
        }
        args = ["-m", "voicebridge", "serve", "--host", "127.0.0.1", "--port", str(port)]
    else:
        env = _clean_env()
        args = [
            "-m",
            "benchmarks.relay",
            "--port",
            str(port),
            "--upstream",
            f"ws://127.0.0.1:{probe_port}/voice-live/realtime",
        ]
    return procs.start(system.replace(" ", "-"), args, env, **popen), f"http://127.0.0.1:{port}"


async def _wait_healthy(
    client: ClientSession, url: str, proc: subprocess.Popen, deadline_s: float = 30.0
) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(OSError):
            async with client.get(url + "/healthz") as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} never became healthy (exit code {proc.poll()})")


async def _wait_received(client: ClientSession, probe: str, total: int, deadline_s: float = 5.0) -> None:
    """Let the uplink drain: the probe has every chunk, or whatever is missing is lost."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        async with client.get(probe + "/received") as response:
            if await response.json() >= total:
                return
        await asyncio.sleep(0.05)


async def measure(
    system: str,
    tabs: int,
    seconds: float,
    logdir: Path,
    env: dict[str, str] | None = None,
    cores: set[int] | None = None,
) -> dict:
    with _Processes(logdir / f"{tabs}-{system.replace(' ', '-')}{'-pinned' if cores else ''}") as procs:
        procs.logdir.mkdir(parents=True, exist_ok=True)
        probe_proc, probe_port = _start_probe(procs)
        probe = f"http://127.0.0.1:{probe_port}"
        sut, url = _start_system(procs, system, probe_port, tabs, env, cores)
        ws_url = url.replace("http", "ws", 1) + "/ws"
        async with ClientSession(connector=TCPConnector(limit=0)) as client:
            await _wait_healthy(client, url, sut)
            pids = procstat.tree(sut.pid)
            gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
            # One session first, so lazy imports and first-connection set-up are not billed to the N sessions.
            await (await _open_tab(client, ws_url, tabs, gate)).close()
            idle_rss = procstat.rss_bytes(pids)
            open_tabs = await asyncio.gather(*(_open_tab(client, ws_url, i, gate) for i in range(tabs)))
            try:
                loop = asyncio.get_running_loop()
                start = loop.time() + START_LEAD_S
                stop = start + seconds
                # Tabs are spread over the 20 ms period, as independent browsers would be.
                streams = [
                    asyncio.create_task(t.stream(start + i * CHUNK_S / tabs, stop))
                    for i, t in enumerate(open_tabs)
                ]
                await asyncio.sleep(max(0.0, start - loop.time()))
                watched = {"sut": pids, "probe": [probe_proc.pid], "load": [os.getpid()]}
                cpu0 = {name: procstat.cpu_seconds(p) for name, p in watched.items()}
                busy0 = procstat.machine_busy_seconds()
                t0 = time.monotonic()
                await asyncio.gather(*streams)
                wall = time.monotonic() - t0
                cpu = {
                    name: (procstat.cpu_seconds(p) - cpu0[name]) / wall * 100 for name, p in watched.items()
                }
                # Whatever else ran on the machine meanwhile: the noise a shared machine adds to every figure.
                cpu["other"] = (procstat.machine_busy_seconds() - busy0) / wall * 100 - sum(cpu.values())
                end_ns = time.monotonic_ns()
                loaded_rss = procstat.rss_bytes(pids)
                await _wait_received(client, probe, sum(t.sent for t in open_tabs))
                async with client.get(probe + "/stats") as response:
                    stats = await response.json()
            finally:
                await asyncio.gather(*(t.close() for t in open_tabs))
    result = _summarize(system, open_tabs, stats, end_ns, cpu, (loaded_rss - idle_rss) / tabs / 1e6)
    # CPU per relayed chunk: unlike CPU %, it does not depend on whether the load generator kept pace.
    chunks = (result["up_n"] or 0) + (result["down_n"] or 0)
    result["cpu_us_per_chunk"] = round(cpu["sut"] / 100 * wall / chunks * 1e6, 1) if chunks else None
    return result


def _summarize(
    system: str, tabs: list[Tab], stats: dict, end_ns: int, cpu: dict, mb_per_session: float
) -> dict:
    cutoff = end_ns - int(IN_FLIGHT_S * 1e9)
    up_latency, down_latency, clear_delays, errors = [], [], [], Counter()
    lost_up = lost_down = reordered_up = reordered_down = missing_clears = 0
    for tab in tabs:
        probe = stats.get(
            str(tab.index),
            {"up_latency_ns": [], "up_distinct": 0, "up_reordered": 0, "down_sent_ns": [], "barge_in_ns": []},
        )
        up_latency += probe["up_latency_ns"]
        lost_up += tab.sent - probe["up_distinct"]
        reordered_up += probe["up_reordered"]
        down_latency += tab.down_latency_ns
        reordered_down += tab.down_order.reordered
        lost_down += sum(
            1
            for seq, sent in enumerate(probe["down_sent_ns"])
            if sent <= cutoff and seq not in tab.down_order.seen
        )
        barge_ins = [b for b in probe["barge_in_ns"] if b <= cutoff]
        for i, sent in enumerate(barge_ins):
            # The clear answering this barge-in is the first one after it, unless the next barge-in came first.
            j = bisect.bisect_left(tab.clears_ns, sent)
            following = barge_ins[i + 1] if i + 1 < len(barge_ins) else None
            if j < len(tab.clears_ns) and (following is None or tab.clears_ns[j] < following):
                clear_delays.append(tab.clears_ns[j] - sent)
            else:
                missing_clears += 1
        errors.update(tab.errors)
    up, down, clear = percentiles_ms(up_latency), percentiles_ms(down_latency), percentiles_ms(clear_delays)
    lag = percentiles_ms([n for t in tabs for n in t.lag_ns])
    return {
        "tabs": len(tabs),
        "system": system,
        "up_p50": up["p50"],
        "up_p99": up["p99"],
        "up_max": up["max"],
        "up_n": up["n"],
        "down_p50": down["p50"],
        "down_p99": down["p99"],
        "down_max": down["max"],
        "down_n": down["n"],
        "clear_p50": clear["p50"],
        "clear_p99": clear["p99"],
        "barge_ins": clear["n"] + missing_clears,
        "missing_clears": missing_clears,
        "lost_up": lost_up,
        "lost_down": lost_down,
        "lost": lost_up + lost_down + missing_clears,
        "reordered_up": reordered_up,
        "reordered_down": reordered_down,
        "reordered": reordered_up + reordered_down,
        "cpu_pct": round(cpu["sut"], 1),
        "mb_per_session": round(mb_per_session, 3),
        "probe_cpu_pct": round(cpu["probe"], 1),
        "other_cpu_pct": round(max(0.0, cpu["other"]), 1),
        "load_cpu_pct": round(cpu["load"], 1),
        "sender_lag_p99_ms": lag["p99"],
        "errors": dict(errors),
    }


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "?"
    )
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def run(tabs: tuple[int, ...] = (10, 50, 100), seconds: float = 15.0) -> dict:
    result = {"machine": machine(), "seconds": seconds, "runs": []}
    with tempfile.TemporaryDirectory(prefix="voicebridge-bench-") as logdir:
        for count in tabs:
            for system in SYSTEMS:
                print(
                    f"server benchmark: {count} tabs through the {system} for {seconds:g} s…",
                    file=sys.stderr,
                    flush=True,
                )
                result["runs"].append(asyncio.run(measure(system, count, seconds, Path(logdir))))
    result["targets"] = evaluate(result["runs"])
    return result


def evaluate(runs: list[dict]) -> list[dict]:
    verdicts = []
    for target in TARGETS:
        for run in runs:
            if run["system"] == "bridge" and target.tabs in (None, run["tabs"]):
                value = run[target.key]
                verdict = "NO DATA" if value is None else "PASS" if value <= target.limit else "MISS"
                verdicts.append(
                    {
                        "tabs": run["tabs"],
                        "target": target.label,
                        "limit": target.limit,
                        "unit": target.unit,
                        "value": value,
                        "verdict": verdict,
                    }
                )
    return verdicts


def _cell(value: object) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


COLUMNS = (
    ("tabs", "tabs"),
    ("system", "system"),
    ("up p50", "up_p50"),
    ("up p99", "up_p99"),
    ("down p50", "down_p50"),
    ("down p99", "down_p99"),
    ("clear p50", "clear_p50"),
    ("clear p99", "clear_p99"),
    ("lost", "lost"),
    ("reordered", "reordered"),
    ("CPU %", "cpu_pct"),
    ("MB/session", "mb_per_session"),
)


def table(result: dict) -> str:
    rows = [[title for title, _ in COLUMNS]] + [
        [_cell(run[key]) for _, key in COLUMNS] for run in result["runs"]
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [
        f"Server benchmark — {result['seconds']:g} s of streaming per scenario; latencies in ms, one way, "
        f"through the intermediary ({result['machine']['cores']} cores, {result['machine']['cpu']})"
    ]
    lines += [
        "  ".join(
            cell.rjust(w) if i != 1 else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.append("")
    for run in result["runs"]:
        notes = (
            f"  {run['tabs']:>3} tabs, {run['system']}: load generator CPU {run['load_cpu_pct']}%, "
            f"probe CPU {run['probe_cpu_pct']}%, other processes {run['other_cpu_pct']}%, sender lag p99 {_cell(run['sender_lag_p99_ms'])} ms, "
            f"{run['barge_ins']} barge-ins ({run['missing_clears']} without a clear), "
            f"lost up/down {run['lost_up']}/{run['lost_down']}"
        )
        lines.append(notes + (f", errors {run['errors']}" if run["errors"] else ""))
        if (run["sender_lag_p99_ms"] or 0) > NOISY_LAG_MS:
            lines.append(
                "       NOISY: the load generator itself was stalled; its p99 figures measure the machine"
            )
    lines += ["", "Targets (issue 2 §7), bridge figures:"]
    for v in result["targets"]:
        mark = "MISS  <<<<<<<<<<" if v["verdict"] == "MISS" else v["verdict"]
        lines.append(
            f"  {v['tabs']:>3} tabs  {v['target']:<30} ≤ {v['limit']:g} {v['unit']:<14} "
            f"{_cell(v['value']):>8}  {mark}"
        )
    misses = sum(v["verdict"] == "MISS" for v in result["targets"])
    lines.append(
        f"\n*** MISS: {misses} of {len(result['targets'])} targets missed ***"
        if misses
        else f"\nAll {len(result['targets'])} targets PASS"
    )
    return "\n".join(lines)
