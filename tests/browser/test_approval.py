"""The approval dialog in a real Chromium (issue 25): the built-in emulator (what `make run` starts) with an
MCP server configured, a real MCP server (the `mcp` SDK over streamable HTTP on 127.0.0.1), and the
emulator's control endpoint scripting the model's call. Allow and Deny by keyboard; the screenshot of the
request in docs/ is taken here (VOICEBRIDGE_SCREENSHOTS=1)."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest
from benchmarks.browser import RAW_MIC

from support import mcpserver
from support.apps import free_port, start_app

pytestmark = pytest.mark.browser
TIMEOUT_MS = 30_000
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="module")
def mcp():
    server = mcpserver.start()
    yield server
    server.stop()


@pytest.fixture
def app_with_mcp(request, mcp):
    emulator_port = free_port()
    servers = [{"label": "orders", "url": mcp.url, "allowed_tools": ["delete_order"], "require_approval": "always"}]
    app = start_app(request, {
        "VOICEBRIDGE_MCP_SERVERS": json.dumps(servers),
        "VOICEBRIDGE_WORKERS": "1",
        "VOICEBRIDGE_EMULATOR_PORT": str(emulator_port),
        "VOICEBRIDGE_APPROVAL_SECONDS": "120",
    })
    app.emulator_port = emulator_port
    return app


def script_call(app, order_id: str) -> None:
    """POST /emulator/mcp-call: the emulator's next answer to a user turn calls delete_order."""
    body = json.dumps({"server": "orders", "name": "delete_order", "arguments": {"order_id": order_id}}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{app.emulator_port}/emulator/mcp-call", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as response:
        assert response.status == 200


def started(page):
    page.get_by_role("button", name="Start session").click()
    page.wait_for_function("() => document.body.dataset.state === 'ready'", timeout=TIMEOUT_MS)
    box = page.get_by_role("textbox", name="Type a message")
    return box


def test_allow_by_keyboard_runs_the_call_and_the_dialog_goes(launch, app_with_mcp, mcp, wavs):
    page = launch(app_with_mcp.url + RAW_MIC, wavs["quiet"])
    box = started(page)
    script_call(app_with_mcp, "A-1")
    box.fill("Please delete my last order.")
    box.press("Enter")
    dialog = page.get_by_role("alertdialog", name="Allow this tool?")
    dialog.wait_for(timeout=TIMEOUT_MS)
    assert dialog.get_by_text("The assistant wants to use delete_order on orders").is_visible()
    allow = dialog.get_by_role("button", name="Allow")
    assert page.evaluate("() => document.activeElement.textContent") == "Allow", "the request takes focus on Allow"
    assert ("delete_order", {"order_id": "A-1"}) not in mcp.called()
    if os.environ.get("VOICEBRIDGE_SCREENSHOTS") == "1":
        page.screenshot(path=str(DOCS / "approval.png"), full_page=True)
    page.keyboard.press("Enter")
    dialog.wait_for(state="detached", timeout=TIMEOUT_MS)
    assert allow.count() == 0
    page.wait_for_selector(".turn.tool[data-tool=delete_order][data-status=done]", timeout=TIMEOUT_MS)
    assert page.locator(".turn.tool[data-tool=delete_order]").inner_text() == "Using delete order on orders — done"
    page.wait_for_function(
        "() => [...document.querySelectorAll('.turn.assistant[data-final=true] p')]"
        ".some((p) => p.textContent.includes('Order A-1 is deleted.'))",
        timeout=TIMEOUT_MS,
    )
    assert ("delete_order", {"order_id": "A-1"}) in mcp.called()


def test_escape_denies_and_the_call_never_runs(launch, app_with_mcp, mcp, wavs):
    page = launch(app_with_mcp.url + RAW_MIC, wavs["quiet"])
    box = started(page)
    script_call(app_with_mcp, "B-2")
    box.fill("Please delete my last order.")
    box.press("Enter")
    dialog = page.get_by_role("alertdialog", name="Allow this tool?")
    dialog.wait_for(timeout=TIMEOUT_MS)
    page.keyboard.press("Tab")  # to Deny, and back with Shift+Tab: both answers are reachable by keyboard
    assert page.evaluate("() => document.activeElement.textContent") == "Deny"
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached", timeout=TIMEOUT_MS)
    # The assistant answers after the denial; the server never saw the call.
    page.wait_for_function("() => document.querySelectorAll('.turn.assistant[data-final=true]').length >= 1",
                           timeout=TIMEOUT_MS)
    assert ("delete_order", {"order_id": "B-2"}) not in mcp.called()
    assert page.locator(".turn.tool").count() == 0
