"""`voicebridge smoke` (the deploy gate) against the real app process, over real sockets."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from support.apps import free_port, start_app
from voicebridge.emulator import Emulator, EmulatorConfig

# A smoke timeout far beyond the test's patience: a run that ends in time did not wait on it.
NEVER_S = 600
PATIENCE_S = 60


def smoke(url: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voicebridge", "smoke", url, "--timeout", str(timeout)],
        capture_output=True, text=True, timeout=min(timeout, PATIENCE_S) + 30,
    )


def upstream(emu: Emulator, key: str) -> dict[str, str]:
    return {"AZURE_VOICE_LIVE_ENDPOINT": f"http://127.0.0.1:{emu.port}", "AZURE_VOICE_LIVE_API_KEY": key}


@pytest.fixture
def strict_emulator() -> Iterator[Emulator]:
    emu = Emulator(EmulatorConfig(pace=1.0, required_key="right"))
    emu.start("127.0.0.1", 0)
    yield emu
    emu.stop()


def test_passes_against_the_app_on_its_built_in_emulator(request):
    app = start_app(request, {})
    result = smoke(app.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("smoke OK:"), result.stdout
    assert len(result.stdout.strip().splitlines()) == 1


def test_a_passing_run_closes_the_one_upstream_session_it_opened(request, strict_emulator):
    emu = strict_emulator
    app = start_app(request, upstream(emu, "right"))
    result = smoke(app.url)
    assert result.returncode == 0, result.stdout + result.stderr
    # The gate also runs against production: it must not leave a billed Voice Live session behind.
    assert emu.wait_until(lambda: len(emu.sessions()) == 1 and not emu.sessions()[0].open, 10), emu.sessions()


def test_fails_with_the_credentials_message_when_voice_live_rejects_the_key(request, strict_emulator):
    app = start_app(request, upstream(strict_emulator, "wrong"))
    result = smoke(app.url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Voice Live rejected the app's credentials" in result.stderr
    assert "upstream_auth" in result.stderr
    assert result.stdout == ""


def test_fails_fast_against_a_dead_url():
    # Nobody listens on a port just released: the connection is refused at once, so the run must end
    # long before its own timeout (subprocess.run raises TimeoutExpired otherwise).
    result = smoke(f"http://127.0.0.1:{free_port()}", timeout=NEVER_S)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot reach" in result.stderr
