"""Issue 19 on the page, in a real Chromium: a reply the service could not give (throttled) is shown,
and the conversation goes on; a turn typed while the assistant speaks is answered (the service's
cancellation is asynchronous: the emulator, strict by default, keeps the cancelled reply active until its
response.done)."""

from __future__ import annotations

import pytest
from benchmarks.browser import RAW_MIC

from support.apps import start_app
from support.upstreams import emulator_env

pytestmark = pytest.mark.browser
TIMEOUT_MS = 30_000


@pytest.fixture
def app(request, emulator):
    yield start_app(request, emulator_env(emulator))
    emulator.update_config(reply_outcome="completed")


def ready(page):
    page.get_by_role("button", name="Start session").click()
    page.wait_for_function("() => document.body.dataset.state === 'ready'", timeout=TIMEOUT_MS)


def test_a_throttled_reply_is_shown_and_the_next_turn_is_answered(launch, app, emulator, wavs):
    page = launch(app.url + RAW_MIC, wavs["quiet"])
    ready(page)
    emulator.update_config(reply_outcome="failed")
    box = page.get_by_role("textbox", name="Type a message")
    box.fill("Are you there?")
    box.press("Enter")
    # A notice in the page's own words for the reason (the session goes on), not the problem box.
    notice = page.locator("#notice[data-code=reply_failed]")
    notice.wait_for(timeout=TIMEOUT_MS)
    assert "busy" in notice.inner_text()
    assert page.locator("#error").is_hidden()
    page.wait_for_function("() => document.body.dataset.state === 'ready'", timeout=TIMEOUT_MS)
    emulator.update_config(reply_outcome="completed")
    box.fill("And now?")
    box.press("Enter")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.turn.assistant[data-final=true] p')]"
        ".some((p) => p.textContent === 'You wrote: And now?')",
        timeout=TIMEOUT_MS,
    )


def test_a_reply_cut_at_the_longest_allowed_keeps_its_words_and_says_so(request, launch, emulator, wavs):
    app = start_app(request, emulator_env(emulator, VOICE_LIVE_MAX_RESPONSE_TOKENS="30"))
    page = launch(app.url + RAW_MIC, wavs["quiet"])
    ready(page)
    box = page.get_by_role("textbox", name="Type a message")
    box.fill("Tell me about the sea, the tides, the winds, the fish, the boats and the people who sail them.")
    box.press("Enter")
    notice = page.locator("#notice[data-code=reply_failed]")
    notice.wait_for(timeout=TIMEOUT_MS)
    assert notice.inner_text() == "The reply was cut short: it reached the longest reply allowed."
    cut = page.locator(".turn.assistant[data-final=true] p").first
    assert cut.inner_text().startswith("You wrote: Tell me") and not cut.inner_text().endswith("sail them.")
    page.wait_for_function("() => document.body.dataset.state === 'ready'", timeout=TIMEOUT_MS)


def test_a_turn_typed_while_the_assistant_speaks_is_answered(launch, app, wavs):
    page = launch(app.url + RAW_MIC, wavs["turn"])
    ready(page)
    page.wait_for_function("() => document.body.dataset.state === 'speaking'", timeout=TIMEOUT_MS)
    box = page.get_by_role("textbox", name="Type a message")
    box.fill("Sorry, one question")
    box.press("Enter")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.turn.assistant[data-final=true] p')]"
        ".some((p) => p.textContent === 'You wrote: Sorry, one question')",
        timeout=TIMEOUT_MS,
    )
    assert page.locator("#error").is_hidden()
