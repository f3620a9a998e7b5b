"""Greeting benchmark (issue 24): how soon the agent is heard after the page says `ready`.

The real page in headless Chromium, the real app with VOICEBRIDGE_GREETING set, the emulator speaking
in real time (pace 1). For each of a few fresh sessions the page is instrumented from outside (an init
script): when its state became `ready`, when the first assistant audio frame arrived on the socket, and
the page's own figure for that frame's first sample played (its `turns[0].playoutMs`). The figure is
ready → first greeting sample played; the target is 1.5 s. A MISS is a finding, not a failure.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from .browser import CHROMIUM, RAW_MIC, _serve, chromium_args, speak

TARGET_MS = 1500
GREETING = "Hello, I am the Contoso assistant. How can I help you today?"
# Times on the page's own clock (performance.now): `ready` shown, and the first audio frame received.
PROBE = """
window.__greeting = { ready: null, audio: null };
new MutationObserver(() => {
  if (window.__greeting.ready === null && document.body?.dataset.state === "ready") {
    window.__greeting.ready = performance.now();
  }
}).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-state"] });
const NativeSocket = window.WebSocket;
window.WebSocket = class extends NativeSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener("message", (e) => {
      if (window.__greeting.audio === null && typeof e.data === "string" && e.data.startsWith('{"type":"audio"')) {
        window.__greeting.audio = performance.now();
      }
    });
  }
};
"""


def run(sessions: int = 5) -> dict:
    from playwright.sync_api import sync_playwright

    from voicebridge.emulator import Emulator, EmulatorConfig

    emulator = Emulator(EmulatorConfig(pace=1.0))
    endpoint = emulator.start("127.0.0.1", 0)
    figures: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        wav = speak(Path(tmp) / "quiet.wav", 10.0)
        app, url = _serve(endpoint, Path(tmp) / "app.log", {"VOICEBRIDGE_GREETING": GREETING})
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=chromium_args(wav))
                for _ in range(sessions):
                    context = browser.new_context(permissions=["microphone"])
                    page = context.new_page()
                    page.add_init_script(PROBE)
                    page.goto(url + RAW_MIC)
                    page.get_by_role("button", name="Start session").click()
                    page.wait_for_function("() => window.voicebridge.turns.length > 0", timeout=30_000)
                    seen = page.evaluate("({ ...window.__greeting, playout: window.voicebridge.turns[0].playoutMs })")
                    figures.append(seen["audio"] + seen["playout"] - seen["ready"])
                    page.get_by_role("button", name="Stop session").click()
                    context.close()
                browser.close()
        finally:
            app.terminate()
            app.wait(10)
            emulator.stop()
    return {
        "ready_to_greeting_heard_ms": round(statistics.median(figures), 1),
        "worst_ms": round(max(figures), 1),
        "sessions": len(figures),
    }


def table(result: dict) -> str:
    value, worst = result["ready_to_greeting_heard_ms"], result["worst_ms"]
    verdict = "ok" if worst <= TARGET_MS else "MISS"
    return "\n".join([
        f"{'greeting (median ms)':46} {'value':>8} {'target':>8}  verdict",
        f"{'ready → first greeting sample played':46} {value:>8.1f} {f'≤ {TARGET_MS}':>8}  {verdict}"
        f"   worst {worst:.1f} of {result['sessions']} sessions",
    ])


if __name__ == "__main__":
    print(table(run()))
