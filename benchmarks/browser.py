"""Browser benchmark (issue 3): the real page in headless Chromium, speaking a generated WAV into the real
app on the built-in emulator, measured where the user is: capture chunk length, uplink buffering,
first delta → first sample played, audio.clear → silence, and the browser's CPU while streaming.

The emulator replies as fast as it can (pace 0), as the real service does, so every reply is queued in
the tab and each interruption has seconds of audio to flush. Also home of the Chromium and speech-WAV
helpers the browser tests share.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

# VOICEBRIDGE_CHROMIUM: another Chromium (e.g. Playwright's own, where Debian's package is not available).
CHROMIUM = os.environ.get("VOICEBRIDGE_CHROMIUM") or next(
    (p for p in ("/usr/lib/chromium/chromium", "/usr/bin/chromium") if Path(p).exists()), None
)
# The machine's network is closed: keep Chromium from phoning home and stalling on it.
QUIET_FLAGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--no-first-run",
    "--metrics-recording-only",
]
# The page's URL switches that keep the browser from reshaping the test speech.
RAW_MIC = "/?ec=0&ns=0&agc=0"
TARGETS_MS = {"chunk": 20, "uplink": 40, "playout": 30, "clear": 10}


def chromium_args(wav: Path | None, allow_mic: bool = True) -> list[str]:
    """`wav` plays once as the microphone; it must be an absolute path to 16-bit PCM, or the mic is
    silently silent."""
    args = [*QUIET_FLAGS, "--use-fake-device-for-media-stream"]
    if allow_mic:
        args.append("--use-fake-ui-for-media-stream")
    if wav:
        args.append(f"--use-file-for-fake-audio-capture={wav}%noloop")
    return args


def speak(path: Path, *parts: str | float) -> Path:
    """Renders text parts and float pauses (seconds) into one 24 kHz 16-bit mono WAV."""
    pieces = []
    for i, part in enumerate(parts):
        piece = path.with_name(f"{path.stem}-{i}.wav")
        if isinstance(part, str):
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(piece), part], check=True)
        else:
            subprocess.run(
                ["sox", "-n", "-r", "22050", "-c", "1", str(piece), "trim", "0", str(part)], check=True
            )
        pieces.append(str(piece))
    # -D: no dither, so the bytes (and what is asserted on them) are the same on every run.
    subprocess.run(
        ["sox", "-D", *pieces, "-r", "24000", "-c", "1", "-b", "16", "-e", "signed-integer", str(path)],
        check=True,
    )
    return path.resolve()


def _browser_pid(wav: Path) -> int:
    """The browser process is the one launched with our WAV flag (its children are not)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if f"--use-file-for-fake-audio-capture={wav}".encode() in (entry / "cmdline").read_bytes():
                    return int(entry.name)
            except OSError:
                continue
    raise RuntimeError("cannot find the Chromium process")


def _serve(endpoint: str, log: Path, extra: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "VOICE_LIVE_", "VOICEBRIDGE_"))}
    env |= {"AZURE_VOICE_LIVE_ENDPOINT": endpoint, "AZURE_VOICE_LIVE_API_KEY": "bench",
            "VOICEBRIDGE_UPSTREAM_CONNECTS_PER_MINUTE": "0", **(extra or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "voicebridge", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the app did not start; see {log}")


def run(cycles: int = 3) -> dict:
    from playwright.sync_api import sync_playwright

    from voicebridge.emulator import Emulator, EmulatorConfig

    from . import procstat

    emulator = Emulator(EmulatorConfig(pace=0))
    endpoint = emulator.start("127.0.0.1", 0)
    with tempfile.TemporaryDirectory() as tmp:
        turn = [1.5, "Please tell me a long story about the sea.", 1.4, "Stop, wait, I have a question."]
        wav = speak(Path(tmp) / "bench.wav", *(turn * cycles), 3.0)
        app, url = _serve(endpoint, Path(tmp) / "app.log")
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=chromium_args(wav))
                page = browser.new_context(permissions=["microphone"]).new_page()
                page.goto(url + RAW_MIC)
                page.get_by_role("button", name="Start session").click()
                page.wait_for_function("document.body.dataset.state === 'ready'", timeout=30_000)
                pids = procstat.tree(_browser_pid(wav))
                cpu0, t0 = procstat.cpu_seconds(pids), time.monotonic()
                uplink = []
                done = f"""() => {{ const v = window.voicebridge;
                    return v.stats.clears >= {cycles} && v.state === "ready" && v.stats.samplesQueued === 0; }}"""
                # Sampled while streaming: the page keeps only the latest uplink delay.
                while not page.evaluate(done) and time.monotonic() - t0 < 120:
                    uplink.append(page.evaluate("window.voicebridge.stats.uplinkMs"))
                    page.wait_for_timeout(50)
                cpu = (procstat.cpu_seconds([p for p in pids if Path(f"/proc/{p}").exists()]) - cpu0) / (
                    time.monotonic() - t0
                )
                stats = page.evaluate("window.voicebridge.stats")
                turns = page.evaluate("window.voicebridge.turns")
                browser.close()
        finally:
            app.terminate()
            app.wait(10)
            emulator.stop()

    def med(values):
        values = [v for v in values if v is not None]
        return round(statistics.median(values), 1) if values else None

    return {
        "chunk_ms": stats["chunkMs"],
        "uplink_ms": med(uplink) + stats["chunkMs"] if uplink else None,
        "playout_ms": med(t["playoutMs"] for t in turns),
        "clear_ms": med(t["interruptMs"] for t in turns),
        "response_ms": med(t["responseMs"] for t in turns),
        "browser_cpu_percent": round(cpu * 100, 1),
        "turns": len(turns),
        "interruptions": stats["clears"],
        "underruns": stats["underruns"],
    }


def table(result: dict) -> str:
    rows = [
        ("capture chunk length", result["chunk_ms"], TARGETS_MS["chunk"]),
        ("uplink buffering (oldest sample → sent)", result["uplink_ms"], TARGETS_MS["uplink"]),
        ("first delta received → first sample played", result["playout_ms"], TARGETS_MS["playout"]),
        ("audio.clear → silence", result["clear_ms"], TARGETS_MS["clear"]),
        ("speech end → reply heard (emulator)", result["response_ms"], None),
    ]
    lines = [f"{'browser (median ms)':46} {'value':>8} {'target':>8}  verdict"]
    for name, value, target in rows:
        verdict = "" if target is None or value is None else ("ok" if value <= target else "MISS")
        shown = "–" if value is None else f"{value:.1f}"
        lines.append(f"{name:46} {shown:>8} {f'≤ {target}' if target else '':>8}  {verdict}")
    lines.append(
        f"{'browser CPU while streaming (all processes)':46} {result['browser_cpu_percent']:>7.1f}%"
        f"   turns {result['turns']}, interruptions {result['interruptions']}, underruns {result['underruns']}"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(run()))
