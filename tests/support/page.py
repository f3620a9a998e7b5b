"""What the real-browser tests share besides fixtures: the wire proxy, axe-core, the phone viewport.

A module of its own (not conftest.py): `from conftest import …` picks whichever conftest.py pytest
imported first under that name, which depends on the folders collected.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from playwright.sync_api import Page, WebSocketRoute

# axe-core from npm, pinned by package-lock.json next to this file (`make test-py` runs `npm ci` here).
AXE = Path(__file__).resolve().parents[1] / "browser" / "node_modules" / "axe-core" / "axe.min.js"
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

    def wait_connected(self, page: Page, timeout_ms: float) -> None:
        """Until the page's socket reached this proxy. Playwright calls the route handler only while the
        test is inside a Playwright call, so this keeps Playwright's event loop turning, with a deadline."""
        deadline = time.monotonic() + timeout_ms / 1000
        while not self.routes:
            assert time.monotonic() < deadline, "the page did not open its socket"
            page.wait_for_timeout(20)  # turns Playwright's loop: the handler runs in here

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


