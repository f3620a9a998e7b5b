"""Shared helpers for the deployment tests: repository paths, the linters next to the interpreter, and FakeCloud,
a PATH of recording stand-in az/azd/curl/smoke executables (fakecli.py). The flows run on the real azure-cli
(realcloud.py); FakeCloud is left to test_azure_cli_arguments.py's argv scenarios and the pre-issue-9 replay.

A uniquely named module rather than conftest.py, so `from ... import` cannot pick up another test
directory's conftest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
FAKECLI = Path(__file__).with_name("fakecli.py")


def tool(name: str) -> Path:
    """A linter installed into the same environment as the running interpreter."""
    path = Path(sys.executable).parent / name
    assert path.exists(), f"{name} is missing next to {sys.executable}: install the dev extras"
    return path


def body(resource: dict) -> dict:
    """A resource's own properties, unwrapping `if (...)` and `[for ...]` declarations."""
    config = resource["config"]
    return config["config"] if "loop_type" in config or "condition" in config else config


@dataclass
class FakeCloud:
    """Runs a script with stand-ins first on PATH and reads back what they were asked."""

    root: Path
    scenario: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A space in the directory proves the scripts quote the paths they are given.
        self.bin = self.root / "fake bin"
        self.bin.mkdir()
        for prog in ("az", "azd", "curl", "smoke", "docker"):
            wrapper = self.bin / prog
            wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKECLI}" {prog} "$@"\n')
            wrapper.chmod(0o755)
        self.log = self.root / "calls.jsonl"
        self.log.touch()
        self.summary = self.root / "step-summary.md"

    def run(self, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
        scenario_file = self.root / "scenario.json"
        scenario_file.write_text(json.dumps(self.scenario))
        environ = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "AZD_", "VOICEBRIDGE_", "GITHUB_"))},
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "FAKE_LOG": str(self.log),
            "FAKE_SCENARIO": str(scenario_file),
            "VOICEBRIDGE_SMOKE_CMD": str(self.bin / "smoke"),
            "VOICEBRIDGE_GATE_INTERVAL": "0",
            "VOICEBRIDGE_GATE_TIMEOUT": "0",
            "VOICEBRIDGE_RETRY_DELAY": "0",
            "GITHUB_STEP_SUMMARY": str(self.summary),
            **env,
        }
        return subprocess.run(
            ["bash", *argv], cwd=REPO, env=environ, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=60,
        )

    def calls(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def commands(self) -> list[str]:
        """Each call as its program and leading sub-commands, e.g. 'az webapp deployment slot swap'."""
        out = []
        for call in self.calls():
            words = [call["prog"]]
            for arg in call["argv"]:
                if arg.startswith("-") or call["prog"] in ("curl", "smoke"):
                    break
                words.append(arg)
            out.append(" ".join(words))
        return out


# az commands that only read. Anything else changes something in Azure.
READ_ONLY_AZ = ("account show", "acr show", "webapp show", "webapp list", "webapp config show", "group exists",
                "provider show", "appservice plan list", "keyvault list-deleted", "cognitiveservices model list",
                "cognitiveservices account list-deleted")


def writes_to_production(call: dict, slot: str = "staging") -> str | None:
    """Why this call changes the production site, or None. `az webapp config set` and
    `az webapp config container set` count even with --slot: azure-cli then updates the app settings
    without the slot, i.e. production's (update_site_configs), which restarts production."""
    if call["prog"] != "az":
        return None
    argv = call["argv"]
    leading = []
    for arg in argv:
        if arg.startswith("-"):
            break
        leading.append(arg)
    words = " ".join(leading)
    if any(words.startswith(r) for r in READ_ONLY_AZ):
        return None
    if argv[:1] == ["rest"]:
        options = dict(zip(argv, argv[1:], strict=False))
        method = (options.get("--method") or "get").lower()
        url = options.get("--url") or options.get("--uri") or ""
        if method in ("get", "head"):
            return None
        return None if f"/slots/{slot}/" in url else f"az rest --method {method} {url}"
    if words.startswith(("webapp config set", "webapp config container set")):
        return f"az {words} (rewrites production's app settings even with --slot)"
    if words.startswith("webapp") and "--slot" not in argv:
        return f"az {words} without --slot"
    return None
