"""Issue 19 finding 10: failures a person and an operator can act on. The real app, the real SDK and the
real azure-identity, over real sockets: no credential at all, a name that does not resolve, a TLS
handshake with something that is not TLS. Each reaches the tab with its own words and the log with its
cause and the endpoint's host at WARNING; the startup line says what sessions will talk to."""

from __future__ import annotations

import re

import pytest

from support.apps import start_app
from support.tab import Tab


def failed_start(app) -> dict:
    tab = Tab(app.url)
    try:
        tab.start()
        error = tab.wait_for(lambda m: m["type"] == "error", 30)
        tab.wait_state("error", 10)
        return error
    finally:
        tab.close()


def warnings(app) -> list[str]:
    return [line for line in app.log_path.read_text().splitlines() if " WARNING " in line or "WARNING" in line[:40]]


def test_keyless_without_a_signed_in_identity_is_upstream_auth_with_the_fix(request, emulator, tmp_path):
    """README: "a key, or nothing for keyless". With nothing and no `az login`, the tab hears what to do
    (not "unexpected error"), and no session crashes."""
    app = start_app(request, {
        "AZURE_VOICE_LIVE_ENDPOINT": f"http://127.0.0.1:{emulator.port}",
        "HOME": str(tmp_path), "AZURE_CONFIG_DIR": str(tmp_path / ".azure"),
        "VOICEBRIDGE_CONNECT_TIMEOUT_SECONDS": "30",
    })
    error = failed_start(app)
    assert error["code"] == "upstream_auth"
    assert "az login" in error["message"] and "AZURE_VOICE_LIVE_API_KEY" in error["message"]
    log = app.log_path.read_text()
    assert "session.crashed" not in log and "Traceback" not in log
    assert re.search(rf"WARNING.*event=upstream.auth_failed host=127.0.0.1:{emulator.port}.*ClientAuthenticationError", log)


def test_a_name_that_does_not_resolve_says_dns(request):
    app = start_app(request, {
        "AZURE_VOICE_LIVE_ENDPOINT": "https://no-such-voicebridge-resource.invalid/",
        "AZURE_VOICE_LIVE_API_KEY": "test-key",
    })
    error = failed_start(app)
    assert error["code"] == "upstream_unavailable"
    assert "DNS" in error["message"] and "no-such-voicebridge-resource.invalid" in error["message"]
    assert re.search(r"WARNING.*event=upstream.connect_failed host=no-such-voicebridge-resource.invalid",
                     app.log_path.read_text())


def test_a_failed_tls_handshake_says_tls(request, emulator):
    """https:// to a server that speaks plain HTTP: the handshake fails, and the message says so."""
    app = start_app(request, {
        "AZURE_VOICE_LIVE_ENDPOINT": f"https://127.0.0.1:{emulator.port}/",
        "AZURE_VOICE_LIVE_API_KEY": "test-key",
    })
    error = failed_start(app)
    assert error["code"] == "upstream_unavailable"
    assert "TLS" in error["message"]
    assert re.search(rf"WARNING.*event=upstream.connect_failed host=127.0.0.1:{emulator.port}.*SSL",
                     app.log_path.read_text())


@pytest.mark.parametrize("tools", ["", "voicebridge.tools.clock"])
def test_the_startup_line_names_endpoint_model_credential_and_tools(request, emulator, tools):
    app = start_app(request, {
        "AZURE_VOICE_LIVE_ENDPOINT": f"http://127.0.0.1:{emulator.port}",
        "AZURE_VOICE_LIVE_API_KEY": "test-key",
        "VOICEBRIDGE_TOOLS": tools,
    })
    line = next(li for li in app.log_path.read_text().splitlines() if "event=startup.upstream" in li)
    assert f"endpoint=127.0.0.1:{emulator.port}" in line and "model=gpt-realtime" in line
    assert "credential='AZURE_VOICE_LIVE_API_KEY" in line or "credential='" in line
    assert "transcription=gpt-4o-transcribe" in line
    assert ("tools=get_current_time" in line) if tools else ("tools=none" in line)
