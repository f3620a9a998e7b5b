"""The hostile-client benchmark (issue 10): live tabs keep streaming while attackers hold idle upgraded
sockets, slowloris requests and lingering closes, then flood; and how many tabs one core carries.

Same processes as server.py (probe upstream, the real app, this load generator), with the app run as
ONE worker pinned to core 0 and everything else kept off that core, so the figures are per core.

Scenario "held": N live tabs stream (as in server.py) while the load generator keeps 1,000 idle
upgraded sockets, 300 slowloris connections (an unfinished request head, a byte every few seconds) and
50 lingering closes (close frame sent, socket kept, never read) open at once — each reopened when the
server drops it, so the count holds. Meanwhile it times GET /healthz on fresh connections and new tabs
from connect to `ready`. Then the floods: clients that ping without reading, stream empty continuation
frames, or send audio without reading; after they end, the worker's RSS is compared with its baseline.

Scenario "per core": N tabs streaming through the one worker for several N; the highest N whose
uplink and downlink p99 added latency stay ≤ 5 ms is the tabs-per-core figure.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import resource
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import ClientSession, TCPConnector

from . import procstat, server
from .wire import percentiles_ms

IDLE, SLOWLORIS, LINGERING = 1000, 300, 50
LIVE_TABS = 50
RAMP_CONCURRENCY = 64
HEALTH_EVERY_S = 0.1
NEW_TAB_EVERY_S = 1.0
SETTLE_S = 12.0  # after the floods: the worker's memory housekeeping looks every 5 s
PER_CORE = (300, 600)
REOPEN_AFTER_S = 1.0
RAMP_TIMEOUT_S = 30.0

TARGETS = (
    ("/healthz p99 while held", "health_p99", 100.0, "ms"),
    ("new tab to ready p99 while held", "ready_p99", 1000.0, "ms"),
    ("live tabs uplink p99 added", "up_p99", 5.0, "ms"),
    ("live tabs downlink p99 added", "down_p99", 5.0, "ms"),
    ("memory per held connection", "kb_per_held", 64.0, "KB"),
    ("RSS after floods vs baseline", "rss_after_pct", 10.0, "% above"),
)


def _pin_env() -> tuple[set[int], set[int]]:
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return set(cores), set(cores)
    return {cores[0]}, set(cores[1:])


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _upgrade(port: int) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


def _frame(opcode: int, payload: bytes = b"", fin: bool = True) -> bytes:
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n)
    return head + b"\0\0\0\0" + payload  # a zero mask leaves the payload as it is


class Attackers:
    """Keeps `count` connections of one kind open; each is reopened when the server drops it."""

    def __init__(self, port: int, kind: str, count: int, gate: asyncio.Semaphore):
        self.port, self.kind, self.count, self.gate = port, kind, count, gate
        self.open = 0
        self.reopened = 0
        self.tasks = [asyncio.create_task(self._hold()) for _ in range(count)]

    async def _hold(self) -> None:
        while True:
            writer = None
            try:
                async with self.gate:
                    reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                    if self.kind == "slowloris":
                        writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                    else:
                        writer.write(_upgrade(self.port))
                        await reader.readuntil(b"\r\n\r\n")
                        if self.kind == "lingering":
                            writer.write(_frame(0x8, b"\x03\xe8"))
                self.open += 1
                try:
                    if self.kind == "slowloris":
                        while not reader.at_eof():
                            await asyncio.sleep(3.0)
                            writer.write(b"a")
                            with contextlib.suppress(asyncio.TimeoutError):
                                await asyncio.wait_for(reader.read(1), 0.01)
                    else:
                        while await reader.read(65536):  # the idle ones never answer a ping
                            pass
                finally:
                    self.open -= 1
                    self.reopened += 1
                await asyncio.sleep(REOPEN_AFTER_S)  # a held connection, not a connection flood
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                await asyncio.sleep(REOPEN_AFTER_S)
            finally:
                if writer is not None:
                    writer.transport.abort()

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def _healthz_ms(port: int) -> float:
    t0 = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    await reader.read()
    writer.close()
    return (time.monotonic() - t0) * 1000


async def _new_tab_ms(client: ClientSession, ws_url: str, index: int) -> float:
    t0 = time.monotonic()
    tab = await server._open_tab(client, ws_url, index, asyncio.Semaphore(1))
    elapsed = (time.monotonic() - t0) * 1000
    await tab.close()
    return elapsed


async def _flood(port: int) -> dict:
    """Clients that cost the server memory if anything is unbounded; each ends when the server cuts it off."""

    async def ping_without_reading() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=4096)
        writer.write(_upgrade(port))
        await reader.readuntil(b"\r\n\r\n")
        writer.transport.pause_reading()
        batch = _frame(0x9, b"p" * 125) * 1000
        with contextlib.suppress(OSError):
            for _ in range(2000):  # ~260 MB of pings at most
                writer.write(batch)
                await writer.drain()
        writer.transport.abort()

    async def empty_continuations() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_upgrade(port))
        await reader.readuntil(b"\r\n\r\n")
        writer.write(_frame(0x1, b'{"type":', fin=False))
        batch = _frame(0x0, b"", fin=False) * 2000
        with contextlib.suppress(OSError):
            for _ in range(1000):
                writer.write(batch)
                await writer.drain()
        writer.transport.abort()

    t0 = time.monotonic()
    await asyncio.gather(*(ping_without_reading() for _ in range(5)), *(empty_continuations() for _ in range(5)),
                         return_exceptions=True)
    return {"flood_s": round(time.monotonic() - t0, 1)}


async def held(seconds: float, logdir: Path, live: int = LIVE_TABS) -> dict:
    bridge_cores, other_cores = _pin_env()
    os.sched_setaffinity(0, other_cores)
    _raise_nofile()
    env = {"VOICEBRIDGE_WORKERS": "1", "VOICEBRIDGE_MAX_SESSIONS": str(live + 64)}
    with server._Processes(logdir / "held") as procs:
        procs.logdir.mkdir(parents=True, exist_ok=True)
        probe_proc, probe_port = server._start_probe(procs)
        sut, url = server._start_system(procs, "bridge", probe_port, live, env, bridge_cores)
        port = int(url.rsplit(":", 1)[1])
        ws_url = url.replace("http", "ws", 1) + "/ws"
        async with ClientSession(connector=TCPConnector(limit=0, force_close=True)) as client:
            await server._wait_healthy(client, url, sut)
            pids = procstat.tree(sut.pid)
            gate = asyncio.Semaphore(server.CONNECT_CONCURRENCY)
            # Warm-up: a few sessions at once (lazy imports, the resolver's threads), then the baseline.
            warm = await asyncio.gather(*(server._open_tab(client, ws_url, live + i, gate) for i in range(16)))
            await asyncio.gather(*(t.close() for t in warm))
            await asyncio.sleep(SETTLE_S)
            base_rss = procstat.rss_bytes(pids)
            tabs = await asyncio.gather(*(server._open_tab(client, ws_url, i, gate) for i in range(live)))
            loop = asyncio.get_running_loop()
            attack = None
            try:
                live_rss = procstat.rss_bytes(pids)
                # The attackers run in a process of their own, so that they never disturb the stopwatches.
                attack = procs.start("attackers", ["-m", "benchmarks.hostile", "--attack", str(port)],
                                     server._clean_env(), stdout=subprocess.PIPE)
                attack_out = asyncio.StreamReader()
                await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(attack_out), attack.stdout)
                held_now = 0

                async def follow() -> None:
                    nonlocal held_now
                    while line := await attack_out.readline():
                        held_now = int(line.split()[1])

                follower = asyncio.create_task(follow())
                # The figures are taken while the attackers are held, so first let them all arrive.
                ramp_deadline = loop.time() + RAMP_TIMEOUT_S
                while held_now < IDLE + SLOWLORIS and loop.time() < ramp_deadline:
                    await asyncio.sleep(0.1)
                start = loop.time() + server.START_LEAD_S
                stop = start + seconds
                streams = [asyncio.create_task(t.stream(start + i * server.CHUNK_S / live, stop))
                           for i, t in enumerate(tabs)]
                await asyncio.sleep(max(0.0, start - loop.time()))
                cpu0, busy0, t0 = procstat.cpu_seconds(pids), procstat.machine_busy_seconds(), time.monotonic()
                health, ready = [], []
                next_tab = loop.time()
                index = live + 1
                held_max = 0
                held_rss = 0
                while loop.time() < stop - 0.5:
                    if held_now >= held_max:
                        held_max, held_rss = held_now, procstat.rss_bytes(pids)
                    health.append(await _healthz_ms(port))
                    if loop.time() >= next_tab:
                        ready.append(await _new_tab_ms(client, ws_url, index))
                        index += 1
                        next_tab = loop.time() + NEW_TAB_EVERY_S
                    await asyncio.sleep(HEALTH_EVERY_S)
                await asyncio.gather(*streams)
                end_ns = time.monotonic_ns()
                wall = time.monotonic() - t0
                sut_cpu = (procstat.cpu_seconds(pids) - cpu0) / wall * 100
                machine_cpu = (procstat.machine_busy_seconds() - busy0) / wall * 100
                await server._wait_received(client, f"http://127.0.0.1:{probe_port}", sum(t.sent for t in tabs))
                async with client.get(f"http://127.0.0.1:{probe_port}/stats") as response:
                    stats = await response.json()
            finally:
                if attack is not None:
                    attack.terminate()
                    await loop.run_in_executor(None, attack.wait)
                    follower.cancel()
                await asyncio.gather(*(t.close() for t in tabs))
            flood = await _flood(port)
            await asyncio.sleep(SETTLE_S)
            after_rss = procstat.rss_bytes(pids)

    cpu = {"sut": sut_cpu, "probe": 0.0, "load": 0.0, "other": 0.0}
    result = server._summarize("bridge", tabs, stats, end_ns, cpu, 0.0)
    h, r = percentiles_ms([int(x * 1e6) for x in health]), percentiles_ms([int(x * 1e6) for x in ready])
    result.update(
        scenario="held",
        held_max=held_max,
        health_p50=h["p50"], health_p99=h["p99"], health_n=h["n"],
        ready_p50=r["p50"], ready_p99=r["p99"], ready_n=r["n"],
        kb_per_held=round(max(0, held_rss - live_rss) / max(1, held_max) / 1024, 1),
        base_rss_mb=round(base_rss / 1e6, 1), live_rss_mb=round(live_rss / 1e6, 1),
        held_rss_mb=round(held_rss / 1e6, 1), after_rss_mb=round(after_rss / 1e6, 1),
        rss_after_pct=round((after_rss - base_rss) / base_rss * 100, 1),
        machine_cpu_pct=round(machine_cpu, 1),
        **flood,
    )
    return result


async def lifecycle(logdir: Path, tabs: int = 20) -> dict:
    """How long the server takes to exit with live tabs: SIGTERM (drain; the tabs answer the close at
    once, as browsers do) and SIGINT (Ctrl-C), with the default number of workers."""
    import signal

    out = {}
    for name, sig in (("sigterm", signal.SIGTERM), ("sigint", signal.SIGINT)):
        with server._Processes(logdir / f"lifecycle-{name}") as procs:
            procs.logdir.mkdir(parents=True, exist_ok=True)
            _, probe_port = server._start_probe(procs)
            sut, url = server._start_system(procs, "bridge", probe_port, tabs, {"VOICEBRIDGE_DRAIN_SECONDS": "10"})
            async with ClientSession(connector=TCPConnector(limit=0)) as client:
                await server._wait_healthy(client, url, sut)
                ws_url = url.replace("http", "ws", 1) + "/ws"
                gate = asyncio.Semaphore(server.CONNECT_CONCURRENCY)
                open_tabs = await asyncio.gather(*(server._open_tab(client, ws_url, i, gate) for i in range(tabs)))
                t0 = time.monotonic()
                sut.send_signal(sig)
                code = await asyncio.get_running_loop().run_in_executor(None, sut.wait, 30)
                out[f"{name}_exit_s"] = round(time.monotonic() - t0, 2)
                out[f"{name}_code"] = code
                await asyncio.gather(*(t.close() for t in open_tabs), return_exceptions=True)
            log = (procs.logdir / "bridge.log").read_text(errors="replace")
            out[f"{name}_error_lines"] = sum(1 for line in log.splitlines() if " ERROR " in line or "Traceback" in line)
            if sig == signal.SIGTERM:
                out["drain_clean"] = "clean=True" in log and "clean=False" not in log
    return out


async def per_core(counts: tuple[int, ...], seconds: float, logdir: Path) -> list[dict]:
    bridge_cores, other_cores = _pin_env()
    os.sched_setaffinity(0, other_cores)
    _raise_nofile()
    runs = []
    for n in counts:
        env = {"VOICEBRIDGE_WORKERS": "1", "VOICEBRIDGE_MAX_SESSIONS": str(n + 16)}
        runs.append(await server.measure("bridge", n, seconds, logdir, env=env, cores=bridge_cores))
    return runs


def run(seconds: float = 30.0, per_core_counts: tuple[int, ...] = PER_CORE, per_core_seconds: float = 10.0) -> dict:
    with tempfile.TemporaryDirectory(prefix="voicebridge-hostile-") as logdir:
        print(f"hostile benchmark: {LIVE_TABS} live tabs while {IDLE} idle, {SLOWLORIS} slowloris and "
              f"{LINGERING} lingering connections are held, {seconds:g} s, then floods…", flush=True,
              file=sys.stderr)
        held_result = asyncio.run(held(seconds, Path(logdir))) if seconds > 0 else None
        core = []
        if per_core_counts:
            print(f"tabs per core: {', '.join(map(str, per_core_counts))} tabs through one pinned worker…",
                  flush=True, file=sys.stderr)
            core = asyncio.run(per_core(per_core_counts, per_core_seconds, Path(logdir)))
    with tempfile.TemporaryDirectory(prefix="voicebridge-lifecycle-") as logdir:
        ends = asyncio.run(lifecycle(Path(logdir)))
    passing = [r["tabs"] for r in core if (r["up_p99"] or 1e9) <= 5.0 and (r["down_p99"] or 1e9) <= 5.0
               and r["lost"] == 0]
    # A run in which the load generator missed its own deadlines measured the machine, not the bridge.
    measured = [r["tabs"] for r in core if (r["sender_lag_p99_ms"] or 0) <= server.NOISY_LAG_MS]
    return {"held": held_result, "per_core": core, "tabs_per_core": max(passing, default=0),
            "tabs_measured": max(measured, default=0), "lifecycle": ends}


def table(result: dict) -> str:
    h = result["held"]
    lines = [] if h is None else [
        f"Hostile clients — {LIVE_TABS} live tabs through one worker pinned to one core while "
        f"{IDLE} idle upgraded sockets, {SLOWLORIS} slowloris and {LINGERING} lingering closes are held "
        f"(at most {h['held_max']} at once), then floods",
        f"  /healthz      p50 {h['health_p50']} ms  p99 {h['health_p99']} ms  ({h['health_n']} requests)",
        f"  new tab→ready p50 {h['ready_p50']} ms  p99 {h['ready_p99']} ms  ({h['ready_n']} tabs)",
        f"  live tabs     up p99 {h['up_p99']} ms  down p99 {h['down_p99']} ms  lost {h['lost']}  "
        f"reordered {h['reordered']}  (load generator sender lag p99 {h['sender_lag_p99_ms']} ms)",
        f"  CPU           bridge {h['cpu_pct']}% of its core, whole machine {h['machine_cpu_pct']}% "
        f"(of {len(os.sched_getaffinity(0)) and os.cpu_count()} cores x 100)",
        f"  RSS MB        baseline {h['base_rss_mb']}  live {h['live_rss_mb']}  held {h['held_rss_mb']}  "
        f"after floods {h['after_rss_mb']} ({h['flood_s']} s of floods)",
        "",
    ]
    lines.append("Tabs per core (one worker pinned to one core; p99 added latency, ms):")
    for r in result["per_core"]:
        lines.append(f"  {r['tabs']:>4} tabs  up p99 {r['up_p99']}  down p99 {r['down_p99']}  lost {r['lost']}  "
                     f"CPU {r['cpu_pct']}% of the core, {r['cpu_us_per_chunk']} µs per chunk relayed  "
                     f"sender lag p99 {r['sender_lag_p99_ms']} ms"
                     + ("  NOISY" if (r["sender_lag_p99_ms"] or 0) > server.NOISY_LAG_MS else ""))
    if result["per_core"]:
        cost = min(r["cpu_us_per_chunk"] or 1e9 for r in result["per_core"])
        # A tab sends 50 chunks a second and receives about 3.75 (a 1.5 s reply every 4 s, 10 per second).
        lines.append(f"  CPU-bound capacity: one core relays {1e6 / cost:,.0f} chunks a second = "
                     f"{1e6 / cost / 53.75:,.0f} tabs at 100% of the core")
    lines += ["", "Targets (issue 10):"]
    for label, key, limit, unit in TARGETS if h is not None else ():
        value = h[key]
        verdict = "NO DATA" if value is None else "PASS" if value <= limit else "MISS"
        lines.append(f"  {label:<36} ≤ {limit:g} {unit:<8} {server._cell(value):>8}  {verdict}")
    e = result["lifecycle"]
    for label, key, extra in (("SIGTERM with 20 live tabs: exit", "sigterm", f", drain clean={e['drain_clean']}"),
                              ("Ctrl-C with 20 live tabs: exit", "sigint", "")):
        ok = e[f"{key}_exit_s"] <= 2.0 and e[f"{key}_code"] == 0 and not e[f"{key}_error_lines"]
        lines.append(f"  {label:<36} ≤ 2 s           {e[f'{key}_exit_s']:>8}  {'PASS' if ok else 'MISS'}"
                     f"  (exit code {e[f'{key}_code']}, ERROR lines {e[f'{key}_error_lines']}{extra})")
    tpc = result["tabs_per_core"]
    if h is not None and (h["sender_lag_p99_ms"] or 0) > server.NOISY_LAG_MS:
        lines.append("  NOISY: the load generator itself was stalled (the machine was busy): the latency "
                     "figures above measure the machine, not the bridge")
    if result["per_core"]:
        if tpc >= 600:
            verdict = "PASS"
        elif result["tabs_measured"] < 600:
            verdict = (f"NO DATA: the load generator could not drive {max(r['tabs'] for r in result['per_core'])} "
                       "tabs on the cores left here (NOISY above); see the CPU-bound capacity")
        else:
            verdict = "MISS"
        lines.append(f"  {'tabs per core at p99 ≤ 5 ms':<36} ≥ 600 tabs    {tpc:>8}  {verdict}")
    return "\n".join(lines)


async def _attack(port: int) -> None:
    """The attackers' process: hold the connections, print how many are open once a second."""
    _raise_nofile()
    ramp = asyncio.Semaphore(RAMP_CONCURRENCY)
    attackers = [Attackers(port, "idle", IDLE, ramp), Attackers(port, "slowloris", SLOWLORIS, ramp),
                 Attackers(port, "lingering", LINGERING, ramp)]
    while True:
        print(f"HELD {sum(a.open for a in attackers)}", flush=True)
        await asyncio.sleep(0.2)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hostile")
    parser.add_argument("--attack", type=int, metavar="PORT", required=True)
    asyncio.run(_attack(parser.parse_args().attack))
