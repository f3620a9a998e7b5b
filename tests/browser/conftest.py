"""A real headless Chromium (Debian's package) with a generated speech WAV as its microphone, driving the
real page served by the real app, which talks to the real emulator started in the test process."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Shared with the browser benchmark (importable because pytest runs from the repository root).
from benchmarks.browser import CHROMIUM, chromium_args, speak
from playwright.sync_api import Browser, Page, Playwright, WebSocketRoute, sync_playwright

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# axe-core from npm, pinned by package-lock.json next to this file (`make test-py` runs `npm ci` here).
AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}


class Wire:
    """Playwright's proxy in front of the page's real socket: everything passes both ways, and the test
    can also speak as the server (`to_page`), or hold back what the server sends until it releases it."""

    def __init__(self) -> None:
        self.routes: list[WebSocketRoute] = []
        self.servers: list[WebSocketRoute] = []
        self.from_page: list[dict] = []
        self.held: list[str | bytes] = []
        self.holding = False

    def __call__(self, route: WebSocketRoute) -> None:
        server = route.connect_to_server()
        self.routes.append(route)
        self.servers.append(server)

        def up(message: str | bytes) -> None:
            if isinstance(message, str):
                self.from_page.append(json.loads(message))
            server.send(message)

        def down(message: str | bytes) -> None:
            if self.holding:
                self.held.append(message)
            else:
                route.send(message)

        route.on_message(up)
        server.on_message(down)

    def to_page(self, message: dict) -> None:
        self.routes[-1].send(json.dumps(message))

    def hold(self) -> None:
        self.holding = True

    def drop(self) -> None:
        """Stop holding and forget what was held (it belonged to a connection that is gone)."""
        self.holding = False
        self.held = []

    def release(self) -> None:
        self.holding = False
        held, self.held = self.held, []
        for message in held:
            self.routes[-1].send(message)


def axe_violations(page: Page, where: str) -> list[str]:
    """Serious and critical axe-core violations on the page as it is now, one line each."""
    assert AXE.exists(), "axe-core is missing: run `make test-py` (or `npm ci --prefix tests/browser`)"
    if not page.evaluate("() => Boolean(window.axe)"):
        page.add_script_tag(content=AXE.read_text())
    found = page.evaluate("""async () => {
      const result = await axe.run(document, { resultTypes: ["violations"] });
      return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.map((n) => `${n.target.join(" ")}: ${n.failureSummary}`) }));
    }""")
    return [
        f"{where}: {v['id']} ({v['impact']}) {v['help']}: {'; '.join(v['nodes'])}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    report = yield
    if report.failed:
        item.browser_failed = True
    return report


@pytest.fixture(scope="session")
def wavs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    assert CHROMIUM and not missing, "run `make system-deps` (Debian chromium, espeak-ng, sox)"
    folder = tmp_path_factory.mktemp("speech")
    return {
        # Leading silence longer than connecting takes, so the start of speech reaches the server.
        "turn": speak(folder / "turn.wav", 1.5, "Hello, what is the weather like today?", 3.0),
        # The pause lets the reply start; the second sentence then talks over it.
        "barge_in": speak(
            folder / "barge.wav",
            1.5,
            "Please tell me a long story about the sea.",
            1.4,
            "Stop, wait a moment please, I have a question.",
            3.0,
        ),
        "quiet": speak(folder / "quiet.wav", 8.0),
    }


# Module scope: the sync API runs an event loop on this thread while it is open, which would break
# every later test that calls asyncio.run().
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture
def launch(playwright: Playwright, request: pytest.FixtureRequest) -> Iterator[Callable[..., Page]]:
    """Opens the page in a fresh Chromium whose microphone plays `wav`; on failure leaves a screenshot
    and the console log in test-artifacts/."""
    opened: list[tuple[Browser, Page, list[str]]] = []

    def open_page(
        url: str,
        wav: Path | None,
        allow_mic: bool = True,
        route_ws: Callable[[WebSocketRoute], None] | None = None,
        color_scheme: str = "light",
        viewport: dict | None = None,
    ) -> Page:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=chromium_args(wav, allow_mic))
        context = browser.new_context(
            permissions=["microphone"] if allow_mic else [],
            color_scheme=color_scheme,
            viewport=viewport or {"width": 1280, "height": 720},
            is_mobile=viewport == PHONE,
            has_touch=viewport == PHONE,
        )
        page = context.new_page()
        if route_ws is not None:
            page.route_web_socket("**/ws", route_ws)
        console: list[str] = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        opened.append((browser, page, console))
        page.goto(url)
        return page

    yield open_page
    failed = getattr(request.node, "browser_failed", False)
    for n, (browser, page, console) in enumerate(opened):
        if failed:
            ARTIFACTS.mkdir(exist_ok=True)
            stem = ARTIFACTS / f"browser-{request.node.name}-{n}"
            try:
                page.screenshot(path=f"{stem}.png", full_page=True)
            finally:
                Path(f"{stem}.console.log").write_text("\n".join(console) + "\n")
        browser.close()
