"""A lost upstream that cannot be restored ends with a clear error after a bounded time."""

from __future__ import annotations

from support.apps import start_app
from support.tab import Tab
from voicebridge.emulator import Emulator, EmulatorConfig


def test_reconnecting_gives_up_with_an_error_when_voice_live_stays_away(request):
    emulator = Emulator(EmulatorConfig())
    emulator.start(host="127.0.0.1", port=0)
    request.addfinalizer(emulator.stop)
    app = start_app(
        request,
        {
            "AZURE_VOICE_LIVE_ENDPOINT": f"http://127.0.0.1:{emulator.port}",
            "AZURE_VOICE_LIVE_API_KEY": "test-key",
            "VOICEBRIDGE_RECONNECT_SECONDS": "1.5",
        },
    )
    tab = Tab(app.url)
    request.addfinalizer(tab.close)
    tab.start()
    tab.wait_state("ready")
    emulator.stop()  # the service goes away entirely: every reconnect attempt is refused
    tab.wait_state("reconnecting")
    error = tab.wait_for(lambda m: m["type"] == "error", timeout=15)
    assert error["code"] == "upstream_lost"
    assert "could not restore it" in error["message"]
    tab.wait_state("error")
    assert "ready" not in tab.states()[tab.states().index("reconnecting"):]
