"""Limits on the page in a real Chromium (issue 13): who is signed in, the time limit's warning, and the
limit's own message kept when the session stops (not the generic "ended by the server")."""

from __future__ import annotations

import pytest
from benchmarks.browser import RAW_MIC

from support import apps

pytestmark = pytest.mark.browser
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def limited(request, emulator) -> apps.AppProcess:
    app = apps.AppProcess(
        {
            "AZURE_VOICE_LIVE_ENDPOINT": f"http://127.0.0.1:{emulator.port}",
            "AZURE_VOICE_LIVE_API_KEY": "test-key",
            # Easy Auth's headers are trusted as behind App Service with sign-in; the test sends them itself.
            "VOICEBRIDGE_TRUST_EASY_AUTH": "true",
            "VOICEBRIDGE_MAX_SESSION_SECONDS": "2",
            "VOICEBRIDGE_MAX_AUDIO_RATE": "1.5",  # a real microphone never meets it
        },
        log_path=apps.ARTIFACTS / "app-page-limits.log",
    )
    request.addfinalizer(app.stop)
    return app


def test_the_page_shows_who_is_signed_in_warns_and_explains_the_time_limit(launch, limited, wavs):
    page = launch(limited.url + RAW_MIC, wavs["quiet"])
    assert page.locator("#signed-in").count() == 0, "nobody is signed in without Easy Auth's headers"
    page.set_extra_http_headers({"X-MS-CLIENT-PRINCIPAL-ID": "0000-ann", "X-MS-CLIENT-PRINCIPAL-NAME": "ann@example.com"})
    page.reload()
    assert page.locator("#signed-in").inner_text() == "Signed in as ann@example.com"

    page.get_by_role("button", name="Start session").click()
    # A limit shorter than a minute is announced at once.
    page.wait_for_function("() => document.getElementById('notice').textContent.includes('ends in 2 seconds')",
                           timeout=TIMEOUT_MS)
    page.wait_for_function("() => document.body.dataset.state === 'stopped'", timeout=TIMEOUT_MS)
    alert = page.get_by_role("alert")
    assert alert.get_attribute("data-code") == "session_time_limit"
    assert "The session reached its time limit" in alert.inner_text()
    assert page.get_by_role("button", name="Start session").is_enabled()
