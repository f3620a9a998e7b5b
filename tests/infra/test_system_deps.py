"""`make test` on a machine without apt (macOS, other Linux): it still runs everything it can and says clearly
what it skipped and how to install it. On Debian (CI, the dev container) nothing is ever skipped."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from infra_helpers import REPO

INSTALL = REPO / "scripts" / "install-system-deps.sh"
RUN_TESTS = REPO / "scripts" / "test-python.sh"


def bin_without_apt(tmp_path: Path) -> Path:
    """A PATH holding only the basic tools: no apt-get, dpkg-query, espeak-ng or sox."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in ("bash", "cat", "rm", "tr", "grep"):
        (folder / tool).symlink_to(shutil.which(tool))
    return folder


def run(script: Path, tmp_path: Path, path: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "VOICEBRIDGE_CHROMIUM"}
    environ.update(PATH=path, VENV=str(tmp_path / "venv"), **env)
    return subprocess.run([shutil.which("bash"), str(script)], cwd=REPO, env=environ, capture_output=True,
                          text=True, timeout=60)


def test_without_apt_it_names_what_is_missing_and_how_to_get_it(tmp_path):
    (tmp_path / "venv").mkdir()  # no bin/python: Playwright's Chromium cannot be fetched either
    result = run(INSTALL, tmp_path, str(bin_without_apt(tmp_path)))
    assert result.returncode == 0, result.stderr
    missing = (tmp_path / "venv" / "system-deps-missing").read_text().split()
    assert {"espeak-ng", "sox"} <= set(missing)
    assert "no apt-get on this machine" in result.stderr and "brew install" in result.stderr
    assert "SKIPS the browser tests" in result.stderr


def test_with_apt_nothing_is_recorded_as_missing(tmp_path):
    # Debian with every package installed (stand-in dpkg-query and apt-get, so no real apt runs here).
    folder = bin_without_apt(tmp_path)
    (folder / "dpkg-query").write_text("#!/bin/sh\nprintf 'install ok installed'\n")
    (folder / "apt-get").write_text(f"#!/bin/sh\ntouch {tmp_path}/apt-ran\n")
    for tool in ("dpkg-query", "apt-get"):
        (folder / tool).chmod(0o755)
    (tmp_path / "venv").mkdir()
    (tmp_path / "venv" / "system-deps-missing").write_text("sox\n")
    result = run(INSTALL, tmp_path, str(folder))
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "venv" / "system-deps-missing").exists()
    assert not (tmp_path / "apt-ran").exists(), "nothing to install"


def fake_pytest(tmp_path: Path, status: int) -> Path:
    fake = tmp_path / "python"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{tmp_path}/argv"\nexit {status}\n')
    fake.chmod(0o755)
    return fake


def test_the_browser_tests_are_left_out_only_when_recorded_missing_and_it_says_so(tmp_path):
    (tmp_path / "venv").mkdir()
    (tmp_path / "venv" / "system-deps-missing").write_text("espeak-ng\nsox\n")
    result = run(RUN_TESTS, tmp_path, os.environ["PATH"], PY=str(fake_pytest(tmp_path, 3)))
    assert result.returncode == 3, "the test run's own failure still fails make test"
    assert (tmp_path / "argv").read_text().split("\n")[:4] == ["-m", "pytest", "-m", "not browser"]
    assert "SKIPPING the browser tests" in result.stderr and "espeak-ng sox" in result.stderr
    assert "the browser tests were NOT run" in result.stderr


def test_with_everything_installed_the_whole_suite_runs(tmp_path):
    (tmp_path / "venv").mkdir()
    result = run(RUN_TESTS, tmp_path, os.environ["PATH"], PY=str(fake_pytest(tmp_path, 0)))
    assert result.returncode == 0
    assert (tmp_path / "argv").read_text().split() == ["-m", "pytest"]
    assert "SKIPPING" not in result.stderr


def test_the_dev_container_has_the_tools_azd_up_and_make_test_need():
    import json

    config = json.loads((REPO / ".devcontainer" / "devcontainer.json").read_text())
    assert "bookworm" in config["image"], "Debian: install-system-deps.sh installs chromium, espeak-ng, sox with apt"
    features = {name.rsplit(":", 1)[0]: options for name, options in config["features"].items()}
    assert features["ghcr.io/devcontainers/features/azure-cli"] == {"installBicep": True}
    assert {"ghcr.io/azure/azure-dev/azd", "ghcr.io/devcontainers/features/node",
            "ghcr.io/devcontainers/features/docker-in-docker"} <= set(features)
    assert config["postCreateCommand"].startswith("bash scripts/install-system-deps.sh")
    assert "--shm-size=1g" in config["runArgs"], "Chromium crashes tabs in Docker's default 64 MB /dev/shm"
