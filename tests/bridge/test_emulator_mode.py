"""`make run` mode: no AZURE_VOICE_LIVE_ENDPOINT, so the app starts the built-in emulator in-process."""

from __future__ import annotations

import json

from support.apps import http_get, start_app
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
        sent = silence(200) + said + silence(900)
        tab.speak(sent)
        tab.wait_state("speaking", timeout=15)
        tab.wait_for(lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"], 15)
        assert tab.audio() and tab.audio() in sent  # the emulator echoes the utterance (with its padding)
    finally:
        tab.close()


def test_healthz_reports_the_version_and_the_image_tag_it_runs(request):
    # The rollout gate waits for the tag it deployed: an old container that is still healthy must not pass.
    from voicebridge import __version__

    app = start_app(request, {"VOICEBRIDGE_IMAGE_TAG": "0123abc-20261130"})
    health = json.loads(http_get(app.url + "/healthz")[1])
    assert health["status"] == "ok"
    assert health["version"] == __version__ and health["image_tag"] == "0123abc-20261130"
