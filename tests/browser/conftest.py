"""A real headless Chromium (Debian's package) with a generated speech WAV as its microphone, driving the
real page served by the real app, which talks to the real emulator started in the test process."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = next((p for p in ("/usr/lib/chromium/chromium", "/usr/bin/chromium") if Path(p).exists()), None)
# The machine's network is closed: keep Chromium from phoning home and stalling on it.
QUIET_FLAGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--no-first-run",
    "--metrics-recording-only",
]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    report = yield
    if report.failed:
        item.browser_failed = True
    return report


def _speak(path: Path, *parts: str | float) -> Path:
    """Renders text parts and float pauses (seconds) into one 24 kHz 16-bit mono WAV (absolute path)."""
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
    # -D: no dither, so the bytes (and the assertions on them) are the same on every run.
    subprocess.run(
        ["sox", "-D", *pieces, "-r", "24000", "-c", "1", "-b", "16", "-e", "signed-integer", str(path)],
        check=True,
    )
    return path.resolve()


@pytest.fixture(scope="session")
def wavs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    assert CHROMIUM and not missing, "run `make system-deps` (Debian chromium, espeak-ng, sox)"
    folder = tmp_path_factory.mktemp("speech")
    return {
        # Leading silence longer than connecting takes, so the start of speech reaches the server.
        "turn": _speak(folder / "turn.wav", 1.5, "Hello, what is the weather like today?", 3.0),
        # The pause lets the reply start; the second sentence then talks over it.
        "barge_in": _speak(
            folder / "barge.wav",
            1.5,
            "Please tell me a long story about the sea.",
            1.4,
            "Stop, wait a moment please, I have a question.",
            3.0,
        ),
        "quiet": _speak(folder / "quiet.wav", 8.0),
    }


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture
def launch(playwright: Playwright, request: pytest.FixtureRequest) -> Iterator[Callable[..., Page]]:
    """Opens the page in a fresh Chromium whose microphone plays `wav`; on failure leaves a screenshot
    and the console log in test-artifacts/."""
    opened: list[tuple[Browser, Page, list[str]]] = []

    def open_page(url: str, wav: Path | None, allow_mic: bool = True) -> Page:
        args = [*QUIET_FLAGS, "--use-fake-device-for-media-stream"]
        if allow_mic:
            args.append("--use-fake-ui-for-media-stream")
        if wav:
            args.append(f"--use-file-for-fake-audio-capture={wav}%noloop")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        context = browser.new_context(permissions=["microphone"] if allow_mic else [])
        page = context.new_page()
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
