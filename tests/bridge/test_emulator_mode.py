"""`make run` mode: no AZURE_VOICE_LIVE_ENDPOINT, so the app starts the built-in emulator in-process."""

from __future__ import annotations

import json

from conftest import start_app
from support.apps import http_get
from support.audio import silence, speech
from support.tab import Tab


def test_without_an_endpoint_the_app_runs_the_whole_loop_on_the_built_in_emulator(request):
    app = start_app(request, {})
    status, body = http_get(app.url + "/api/info")
    assert status == 200 and json.loads(body)["emulator"] is True
    assert json.loads(http_get(app.url + "/healthz")[1])["emulator"] is True
    tab = Tab(app.url)
    try:
        tab.start()
        tab.wait_state("ready")
        said = speech(600, seed=3)
        tab.speak(silence(200) + said + silence(900))
        tab.wait_state("speaking", timeout=15)
        tab.wait_for(lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"], 15)
        assert tab.audio() and tab.audio() in said
    finally:
        tab.close()
