"""A real headless Chromium (Debian's package) with a generated speech WAV as its microphone, driving the
real page served by the real app, which talks to the real emulator started in the test process."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Shared with the browser benchmark (importable because pytest runs from the repository root).
from benchmarks.browser import CHROMIUM, chromium_args, speak
from playwright.sync_api import Browser, Page, Playwright, WebSocketRoute, sync_playwright

from support.page import PHONE

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


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
        before_goto: Callable[[Page], None] | None = None,
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
        if before_goto is not None:
            before_goto(page)  # init scripts, a fake clock: what must be in place before the page's own code runs
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
