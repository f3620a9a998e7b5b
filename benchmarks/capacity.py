"""The capacity benchmark (issue 23): how the bridge lives inside the Voice Live quota.

The real app (`python -m voicebridge serve`, every worker) against built-in emulators that enforce a
resource's quota: new connections per window (HTTP 429 + Retry-After beyond it) and tokens. The quota's
minute is scaled down (WINDOW_S) so the whole benchmark runs in a few minutes; the ratios are what count,
and the figures are also given in real minutes (x 60 / WINDOW_S).

1. A burst of M new tabs at quota Q per window: time until the last is ready, tabs that got an error
   (target 0), 429s seen (target <= 1 per endpoint).
2. A deploy (SIGTERM) with M live tabs: the tabs reconnect, spread over the drain's `reconnect_within_s`
   as the page does, to the next process on the same port; time until all are back (target within
   M/Q windows + 15 s), errors (target 0). 3. The same with 1, 2 and 3 endpoints.
4. The tokens of one scripted five-minute conversation (emulator usage model), and how many such
   conversations a resource's 100,000 tokens per minute carries.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from aiohttp import ClientSession, WSMsgType

from voicebridge.emulator import Emulator, EmulatorConfig

WINDOW_S = 6.0  # the scaled-down "minute"
QUOTA = 5  # new connections per window and endpoint (S0: 30 per minute)
BURST_TABS = 20
DEPLOY_TABS = 30
RESTART_ALLOWANCE_S = 15.0
TPM_QUOTA = 100_000
READY_TIMEOUT_S = 180.0
LOGS = Path(__file__).resolve().parents[1] / "test-artifacts" / "bench-capacity"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(endpoints: list[Emulator], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "VOICE_LIVE_", "VOICEBRIDGE_"))}
    env.pop("PORT", None)
    return env | {
        "AZURE_VOICE_LIVE_ENDPOINT": ",".join(f"http://127.0.0.1:{e.port}" for e in endpoints),
        "AZURE_VOICE_LIVE_API_KEY": "bench",
        "VOICEBRIDGE_UPSTREAM_CONNECTS_PER_MINUTE": str(QUOTA),
        "VOICEBRIDGE_UPSTREAM_QUOTA_WINDOW_SECONDS": str(WINDOW_S),
        "VOICEBRIDGE_MAX_SESSIONS_PER_ADDRESS": "0",
        "VOICEBRIDGE_MAX_AUDIO_RATE": "0",
        "VOICEBRIDGE_DRAIN_SECONDS": "5",
        "VOICEBRIDGE_TAB_IDLE_SECONDS": "600",
        **extra,
    }


class App:
    def __init__(self, env: dict[str, str], name: str, port: int | None = None):
        LOGS.mkdir(parents=True, exist_ok=True)
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = (LOGS / f"{name}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "voicebridge", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the app did not start; see {LOGS / (name + '.log')}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class BenchTab:
    """One tab over a real WebSocket: start (with history when it continues a conversation), ready."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.busy = 0
        self.hint = 0
        self.ready_at: float | None = None
        self.closed = asyncio.Event()

    async def run(self, http: ClientSession, url: str, history: list | None, until: asyncio.Event) -> None:
        start = {"type": "session.start", **({"history": history} if history else {})}
        async with http.ws_connect(url.replace("http", "ws", 1) + "/ws", max_msg_size=0) as ws:
            await ws.send_str(json.dumps(start))
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    break
                m = json.loads(msg.data)
                if m.get("type") == "error":
                    self.errors.append(m.get("code", "?"))
                elif m.get("type") == "warning" and m.get("code") == "upstream_busy":
                    self.busy += 1
                elif m.get("type") == "state" and m.get("state") == "ready" and self.ready_at is None:
                    self.ready_at = time.monotonic()
                    if until.is_set():
                        break
                elif m.get("type") == "state" and m.get("state") == "reconnecting":
                    self.hint = int(m.get("reconnect_within_s", 0))
        self.closed.set()


async def _wait_all_ready(tabs: list[BenchTab]) -> None:
    async with asyncio.timeout(READY_TIMEOUT_S):
        while any(t.ready_at is None and not t.closed.is_set() for t in tabs):
            await asyncio.sleep(0.05)


def _emulators(count: int) -> list[Emulator]:
    emus = []
    for _ in range(count):
        emu = Emulator(EmulatorConfig(pace=0.0, connects_per_window=QUOTA, quota_window_s=WINDOW_S,
                                      record_max_sessions=20))
        emu.start(host="127.0.0.1", port=0)
        emus.append(emu)
    return emus


def burst(tabs: int = BURST_TABS) -> dict:
    emus = _emulators(1)
    app = App(_env(emus), "burst")
    try:
        async def go() -> list[BenchTab]:
            done = asyncio.Event()
            done.set()  # leave once ready
            bench = [BenchTab() for _ in range(tabs)]
            async with ClientSession() as http:
                began = time.monotonic()
                tasks = [asyncio.create_task(t.run(http, app.url, None, done)) for t in bench]
                await asyncio.gather(*tasks)
            for t in bench:
                t.ready_at = (t.ready_at - began) if t.ready_at else None
            return bench

        bench = asyncio.run(go())
    finally:
        app.stop()
        for e in emus:
            e.stop()
    last = max((t.ready_at or math.inf) for t in bench)
    ideal = (math.ceil(tabs / QUOTA) - 1) * WINDOW_S
    return {"tabs": tabs, "quota": QUOTA, "last_ready_s": round(last, 1), "ideal_s": ideal,
            "errors": sum(1 for t in bench if t.errors), "told_to_wait": sum(1 for t in bench if t.busy),
            "429s": sum(e.quota.refused for e in emus)}


def deploy(endpoints: int, tabs: int = DEPLOY_TABS) -> dict:
    emus = _emulators(endpoints)
    env = _env(emus)
    first = App(env, f"deploy-{endpoints}-a")
    second: App | None = None
    try:
        async def go() -> tuple[float, list[BenchTab], list[BenchTab]]:
            nonlocal second
            stay = asyncio.Event()
            old = [BenchTab() for _ in range(tabs)]
            async with ClientSession() as http:
                tasks = [asyncio.create_task(t.run(http, first.url, None, stay)) for t in old]
                await _wait_all_ready(old)
                # Let the window of those starts pass, as it would on a service running for a while.
                await asyncio.sleep(WINDOW_S * 1.1)
                before = sum(e.quota.refused for e in emus)
                began = time.monotonic()
                first.proc.send_signal(signal.SIGTERM)
                await asyncio.gather(*tasks)
                await asyncio.to_thread(first.proc.wait, 30)
                second = await asyncio.to_thread(App, env, f"deploy-{endpoints}-b", first.port)
                leave = asyncio.Event()
                leave.set()
                back = [BenchTab() for _ in range(tabs)]
                history = [{"role": "user", "text": "hello"}, {"role": "assistant", "text": "hi"}]

                async def rejoin(tab: BenchTab, hint: int) -> None:
                    # The page's rule: a random delay within the drain's hint, counted from the close.
                    await asyncio.sleep(max(0.0, began + random.uniform(0, hint) - time.monotonic()))
                    await tab.run(http, first.url, history, leave)

                await asyncio.gather(*(rejoin(b, o.hint) for b, o in zip(back, old, strict=True)))
                last = max(t.ready_at or math.inf for t in back) - began
                return last, old, back, sum(e.quota.refused for e in emus) - before

        last, old, back, refused = asyncio.run(go())
    finally:
        first.stop()
        if second is not None:
            second.stop()
        for e in emus:
            e.stop()
    target = tabs / (QUOTA * endpoints) * WINDOW_S + RESTART_ALLOWANCE_S
    return {"endpoints": endpoints, "tabs": tabs, "hint_s": max(o.hint for o in old), "all_back_s": round(last, 1),
            "target_s": round(target, 1), "errors": sum(1 for t in old + back if t.errors), "429s": refused}


def tokens(turns: int = 23, speech_s: float = 6.0, pause_s: float = 1.0) -> dict:
    """One scripted conversation: `turns` of speech_s seconds of speech (the emulator echoes it, as long)
    and a pause; about five minutes of conversation, streamed faster than real time."""
    emus = _emulators(1)
    emu = emus[0]
    app = App(_env(emus, VOICEBRIDGE_UPSTREAM_CONNECTS_PER_MINUTE="0"), "tokens")
    rng = random.Random(1)
    peak = 32767 * 10 ** (-14 / 20) * math.sqrt(3)
    chunk_samples = 480  # 20 ms

    def noise(seconds: float) -> list[str]:
        import array
        import base64
        out = []
        for _ in range(int(seconds / 0.02)):
            samples = array.array("h", (int(rng.uniform(-peak, peak)) for _ in range(chunk_samples)))
            out.append(base64.b64encode(samples.tobytes()).decode())
        return out

    silence = [__import__("base64").b64encode(bytes(chunk_samples * 2)).decode()] * int(pause_s / 0.02)
    try:
        async def go() -> None:
            async with ClientSession() as http, http.ws_connect(app.url.replace("http", "ws", 1) + "/ws") as ws:
                await ws.send_str(json.dumps({"type": "session.start"}))
                await _until(ws, lambda m: m.get("state") == "ready")
                for _ in range(turns):
                    for data in noise(speech_s) + silence:
                        await ws.send_str(json.dumps({"type": "audio", "data": data}))
                    # The reply's final transcript comes after its audio (and its `ready`). The tab then says
                    # it played all of it, as the page does, so the next turn is no barge-in.
                    heard: dict[str, int] = {}

                    def reply_done(m: dict, heard: dict[str, int] = heard) -> bool:
                        if m.get("type") == "audio":
                            heard[m["item_id"]] = heard.get(m["item_id"], 0) + len(m["data"]) * 3 // 4
                        return m.get("type") == "transcript" and m.get("role") == "assistant" and bool(m.get("final"))

                    done = await _until(ws, reply_done)
                    played_ms = heard.get(done["item_id"], 0) // 48  # PCM16 at 24 kHz: 48 bytes per ms
                    await ws.send_str(json.dumps({"type": "playback", "item_id": done["item_id"],
                                                  "played_ms": played_ms}))
                await ws.send_str(json.dumps({"type": "session.stop"}))
                await _until(ws, lambda m: m.get("state") == "stopped")

        asyncio.run(go())
    finally:
        app.stop()
        emu.stop()
    billed = list(emu.quota.billed)
    minutes = turns * (2 * speech_s + pause_s) / 60
    per_turn_s = 2 * speech_s + pause_s
    last_minute = sum(billed[-max(1, round(60 / per_turn_s)):])
    return {"turns": len(billed), "minutes": round(minutes, 1), "tokens": sum(billed),
            "tokens_per_minute": round(sum(billed) / minutes), "last_minute_tokens": last_minute,
            "conversations_per_100k_tpm": round(TPM_QUOTA / (sum(billed) / minutes), 1),
            "at_the_last_minutes_rate": round(TPM_QUOTA / last_minute, 1)}


async def _until(ws, predicate, timeout: float = 30.0) -> dict:
    async with asyncio.timeout(timeout):
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                m = json.loads(msg.data)
                if m.get("type") == "error":
                    raise RuntimeError(f"the tab got an error: {m}")
                if predicate(m):
                    return m
    raise RuntimeError("the socket closed")


def run(endpoint_counts: tuple[int, ...] = (1, 2, 3)) -> dict:
    results: dict = {"window_s": WINDOW_S, "tokens": tokens(), "burst": burst()}
    results["deploy"] = [deploy(n) for n in endpoint_counts]
    return results


def table(results: dict) -> str:
    w = results["window_s"]
    scale = 60 / w
    b = results["burst"]
    lines = [
        f"Capacity (quota scaled: {QUOTA} connections per {w:g} s window per endpoint; x{scale:g} for real minutes)",
        "",
        "burst         tabs  last ready  ideal  errors  told to wait  429s",
        f"              {b['tabs']:>4}  {b['last_ready_s']:>8.1f} s  {b['ideal_s']:>4.0f} s  {b['errors']:>6}"
        f"  {b['told_to_wait']:>12}  {b['429s']:>4}   "
        f"{'OK' if b['errors'] == 0 and b['429s'] <= 1 else 'MISS'} (errors 0, 429s <= 1)",
        "",
        "deploy  endpoints  tabs  hint  all back   target  errors  429s",
    ]
    for d in results["deploy"]:
        ok = d["errors"] == 0 and d["all_back_s"] <= d["target_s"]
        lines.append(
            f"        {d['endpoints']:>9}  {d['tabs']:>4}  {d['hint_s']:>3} s  {d['all_back_s']:>6.1f} s"
            f"  {d['target_s']:>5.1f} s  {d['errors']:>6}  {d['429s']:>4}   {'OK' if ok else 'MISS'}"
        )
    t = results["tokens"]
    lines += [
        "",
        f"tokens: one scripted {t['minutes']:g}-minute conversation ({t['turns']} replies): {t['tokens']:,} tokens, "
        f"{t['tokens_per_minute']:,} per minute on average, {t['last_minute_tokens']:,} in its last minute",
        f"        a resource's {TPM_QUOTA:,} tokens per minute carry {t['conversations_per_100k_tpm']:g} such "
        f"conversations at their average rate, {t['at_the_last_minutes_rate']:g} at their last minute's",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    figures = run()
    print(table(figures))
    print(json.dumps(figures))
