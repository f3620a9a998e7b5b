"""The paths a newcomer hits on their own machine or in the dev container (issue 21, item 7)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from support import hostile
from support.apps import ARTIFACTS, AppProcess
from support.hostile import http

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def codespace(request) -> AppProcess:
    """The app as `make run` starts it in a codespace, which sets these two variables."""
    ARTIFACTS.mkdir(exist_ok=True)
    app = AppProcess({"VOICEBRIDGE_WORKERS": "1", "CODESPACE_NAME": "shiny-space-7x9",
                      "GITHUB_CODESPACES_PORT_FORWARDING_DOMAIN": "app.github.dev"},
                     log_path=ARTIFACTS / "app-codespace.log")
    request.addfinalizer(app.stop)
    return app


def upgrade_status(port: int, host: str, origin: str) -> int:
    with hostile.connect(port) as sock:
        sock.sendall(hostile.upgrade_request(port, origin=origin).replace(f"Host: 127.0.0.1:{port}".encode(),
                                                                          f"Host: {host}".encode()))
        return hostile.read_head(sock)[0]


def test_a_codespace_serves_its_own_forwarded_name_and_its_https_page_opens_a_tab(codespace):
    port = codespace.port
    forwarded = f"shiny-space-7x9-{port}.app.github.dev"
    assert http(port, "/healthz", host=forwarded)[0] == 200
    assert upgrade_status(port, forwarded, f"https://{forwarded}") == 101
    # Codespaces' forwarder has been seen to keep Host and rewrite Origin to localhost:<port>: this
    # server's own page either way.
    assert upgrade_status(port, forwarded, f"http://localhost:{port}") == 101


@pytest.mark.parametrize("name", [
    "other-space-{port}.app.github.dev",  # another codespace's name
    "shiny-space-7x9-{port}.app.github.dev.rebind.example",  # a look-alike an attacker owns
    "shiny-space-7x9-1.app.github.dev",  # another port of it: not this server
    "rebind.example.com",
])
def test_a_codespace_still_refuses_every_other_name(codespace, name):
    port = codespace.port
    assert http(port, "/healthz", host=name.format(port=port))[0] == 403


def test_a_codespace_refuses_a_tab_from_another_origin(codespace):
    port = codespace.port
    forwarded = f"shiny-space-7x9-{port}.app.github.dev"
    for origin in ("https://other-space-1.app.github.dev", f"http://localhost:{port + 1}", "https://rebind.example"):
        assert upgrade_status(port, forwarded, origin) == 403, origin


def test_a_port_already_in_use_is_one_clear_line_and_a_non_zero_exit():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "VOICEBRIDGE_"))}
        done = subprocess.run([sys.executable, "-m", "voicebridge", "serve", "--host", "127.0.0.1", "--port", str(port)],
                              env={**env, "VOICEBRIDGE_WORKERS": "1"}, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert f"port {port}" in lines[0] and "already in use" in lines[0] and f"PORT={port + 1}" in lines[0]


def make_run(env: dict[str, str]) -> str:
    """The serve command `make run` would run (make -n: nothing runs)."""
    base = {k: v for k, v in os.environ.items() if k not in ("HOST", "PORT", "VOICEBRIDGE_HOST", "MAKEFLAGS")}
    out = subprocess.run(["make", "-n", "run"], cwd=ROOT, env={**base, **env}, capture_output=True, text=True,
                         timeout=30, check=True).stdout
    (line,) = [line for line in out.splitlines() if "-m voicebridge serve" in line]
    return line


def test_make_run_leaves_the_host_to_voicebridge_host_unless_host_is_given():
    assert "--host" not in make_run({"VOICEBRIDGE_HOST": "0.0.0.0"})  # the app reads VOICEBRIDGE_HOST itself
    assert "--host 0.0.0.0" in make_run({"HOST": "0.0.0.0"})
    assert "--port 9001" in make_run({"PORT": "9001"})
