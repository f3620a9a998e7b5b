"""The page for everyone (issue 22), in a real Chromium on the real app and the emulator: no serious or
critical axe-core violation in any state (light and dark, desktop and a phone), the keyboard focus handed
on when the buttons change, a typed conversation when the microphone is refused, and on a phone a text
box that stays on screen with its placeholder whole."""

from __future__ import annotations

import pytest
from benchmarks.browser import RAW_MIC
from test_page import TIMEOUT_MS, wait_state

from support.page import PHONE, Wire, axe_violations

pytestmark = pytest.mark.browser
# Long enough (20 words) that the emulator's reply lasts seconds: time to look at the page while it speaks.
LONG = "Please tell me everything you know about the sea, the tides, the winds, the fish and the boats on it today."


def focused(page) -> str:
    return page.evaluate("() => document.activeElement?.id || document.activeElement?.tagName")


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_serious_accessibility_violation_in_any_state(launch, app, wavs, scheme, viewport):
    wire = Wire()
    page = launch(app.url + RAW_MIC, wavs["quiet"], route_ws=wire, color_scheme=scheme, viewport=viewport)
    found = axe_violations(page, "idle")

    page.get_by_role("button", name="Start session").click()
    wait_state(page, "ready")
    found += axe_violations(page, "ready")

    # Speaking: the server's next frames (the end of the reply) wait until axe has looked.
    page.get_by_role("textbox", name="Type a message").fill(LONG)
    page.get_by_role("button", name="Send").click()
    wait_state(page, "speaking")
    page.wait_for_selector(".turn.assistant p:not(:empty)", timeout=TIMEOUT_MS)
    wire.hold()
    found += axe_violations(page, "speaking")
    assert page.evaluate("document.body.dataset.state") == "speaking"
    wire.release()

    # A notice (an error after which the session goes on), then a problem that ends the session.
    wire.to_page({"type": "warning", "code": "session_time_limit", "seconds": 60, "message": "The session ends in 60 seconds."})
    page.locator("#notice").wait_for(timeout=TIMEOUT_MS)
    found += axe_violations(page, "notice")
    wire.to_page({"type": "error", "code": "upstream_lost", "message": "Lost."})
    wire.to_page({"type": "state", "state": "error"})
    wait_state(page, "error")
    found += axe_violations(page, "error")

    refused = launch(app.url + RAW_MIC, wavs["quiet"], allow_mic=False, color_scheme=scheme, viewport=viewport)
    refused.get_by_role("button", name="Start session").click()
    wait_state(refused, "error")
    found += axe_violations(refused, "microphone refused")
    assert found == [], "\n".join(found)


def test_focus_follows_start_and_stop(launch, app, wavs):
    page = launch(app.url + RAW_MIC, wavs["quiet"])
    page.get_by_role("button", name="Start session").focus()
    page.keyboard.press("Enter")
    wait_state(page, "ready")
    assert focused(page) == "stop", "after Start the keyboard is on Stop, not the page body"
    # The state change was said in the polite live region, for screen readers.
    announce = page.get_by_role("status")
    assert announce.get_attribute("aria-live") == "polite"
    assert announce.text_content() == "Ready. Go ahead and speak."

    page.keyboard.press("Enter")
    wait_state(page, "stopped")
    assert focused(page) == "start", "after Stop the keyboard is back on Start"


def test_without_a_microphone_typed_turns_are_answered(launch, app, emulator, wavs):
    page = launch(app.url + RAW_MIC, None, allow_mic=False)
    page.get_by_role("button", name="Start session").focus()
    page.keyboard.press("Enter")
    wait_state(page, "error")
    alert = page.get_by_role("alert")
    assert alert.get_attribute("data-code") == "mic_denied"
    assert page.locator("#state-text").inner_text() == "Could not start", "nothing had started to be stopped"
    assert "type instead" in alert.inner_text().lower(), "the problem says a typed conversation is possible"
    offer = page.get_by_role("button", name="Type instead (no microphone)")
    assert focused(page) == "type-instead", "the keyboard lands on what the problem offers"

    offer.press("Enter")
    wait_state(page, "ready")
    box = page.get_by_role("textbox", name="Type a message")
    assert box.is_enabled() and focused(page) == "say", "the text box is ready and has the keyboard"
    assert page.locator("#state-hint").inner_text() == "Type a message below and press Enter."
    assert page.get_by_role("alert").is_hidden()
    page.keyboard.type("Hello without a microphone")
    page.keyboard.press("Enter")
    page.wait_for_selector(".turn.assistant[data-final=true]", timeout=TIMEOUT_MS)
    assert page.locator(".turn.user p").first.inner_text() == "Hello without a microphone"
    assert page.locator(".turn.assistant p").first.inner_text() == "You wrote: Hello without a microphone"
    # The reply's audio still plays, and nothing was captured or sent.
    page.wait_for_function("() => window.voicebridge.stats.samplesPlayed > 0", timeout=TIMEOUT_MS)
    s = page.evaluate("window.voicebridge.stats")
    assert s["samplesCaptured"] == 0 and s["samplesSent"] == 0, s


def test_on_a_phone_the_text_box_stays_on_screen(launch, app, wavs):
    wire = Wire()
    page = launch(app.url + RAW_MIC, wavs["quiet"], route_ws=wire, viewport=PHONE)
    page.get_by_role("button", name="Start session").click()
    wait_state(page, "ready")
    # A long conversation, told to the page as the server tells it.
    for n in range(12):
        role = "user" if n % 2 == 0 else "assistant"
        text = f"Message number {n}, long enough to wrap onto a second line on a phone screen like this one."
        wire.to_page({"type": "transcript", "role": role, "item_id": f"i{n}", "text": text, "final": True})
    page.wait_for_selector(".turn[data-item=i11]", timeout=TIMEOUT_MS)
    box = page.get_by_role("textbox", name="Type a message")
    top, bottom = page.evaluate(
        "() => { const r = document.getElementById('say').getBoundingClientRect(); return [r.top, r.bottom]; }"
    )
    assert 0 <= top and bottom <= PHONE["height"], f"the text box is at {top}..{bottom}, off a {PHONE} screen"
    assert page.locator(".turn[data-item=i11]").is_visible()
    # The placeholder fits the box: measured in the box's own font, against its inner width.
    spare = box.evaluate("""(el) => {
      const style = getComputedStyle(el), ctx = document.createElement("canvas").getContext("2d");
      ctx.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
      const inner = el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
      return inner - ctx.measureText(el.placeholder).width;
    }""")
    assert spare >= 0, f"the placeholder is cut by {-spare:.0f} px"
