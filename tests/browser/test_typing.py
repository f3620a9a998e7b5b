"""The page's text box and tool lines in a real Chromium (issue 11): typed turns and a function call
made by the built-in emulator, which calls a declared tool when typed text names one of its words."""

from __future__ import annotations

import pytest
from benchmarks.browser import RAW_MIC

from support.apps import start_app

pytestmark = pytest.mark.browser
TIMEOUT_MS = 30_000


@pytest.fixture
def app_with_clock(request):
    # The built-in emulator (no endpoint set), exactly what `make run` starts, with the clock tool on.
    return start_app(request, {"VOICEBRIDGE_TOOLS": "voicebridge.tools.clock"})


def test_typing_sends_a_turn_and_a_tool_call_shows_in_the_conversation(launch, app_with_clock, wavs):
    page = launch(app_with_clock.url + RAW_MIC, wavs["quiet"])
    box = page.get_by_role("textbox", name="Type a message")
    assert box.is_disabled(), "typing needs a session"
    page.get_by_role("button", name="Start session").click()
    page.wait_for_function("() => document.body.dataset.state === 'ready'", timeout=TIMEOUT_MS)

    box.fill("Hello from the keyboard")
    box.press("Enter")
    page.wait_for_selector(".turn.assistant[data-final=true]:not([data-interrupted])", timeout=TIMEOUT_MS)
    assert box.input_value() == "", "a sent message leaves the box"
    user = page.locator(".turn.user[data-final=true] p").first.inner_text()
    assert user == "Hello from the keyboard"
    assistant = page.locator(".turn.assistant[data-final=true] p").first.inner_text()
    assert assistant == "You wrote: Hello from the keyboard"

    box.fill("What time is it?")
    page.get_by_role("button", name="Send").click()
    tool = page.locator(".turn.tool[data-tool=get_current_time]")
    tool.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_selector(".turn.tool[data-status=done]", timeout=TIMEOUT_MS)
    assert tool.inner_text() == "Checking the time — done"
    page.wait_for_function(
        "() => [...document.querySelectorAll('.turn.assistant[data-final=true] p')]"
        ".some((p) => p.textContent.startsWith('The tool answered:'))",
        timeout=TIMEOUT_MS,
    )
    # Chronological: the call shows after the question that caused it.
    order = page.evaluate("[...document.querySelectorAll('#transcript li:not([hidden])')].map((li) => li.className)")
    assert order.index("turn tool") > order.index("turn user")
