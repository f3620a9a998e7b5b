"""The deploy scripts run under bash with the real azure-cli against tests/infra/fakeazure.py.

`az` on the scripts' PATH is the real CLI (.venv/azure-cli, built by make) signed in to the fake Azure as a
service principal through a custom cloud; only `az acr build` and `az acr login` go to the recording stand-in
(see standins.py for why), as do azd, docker and the smoke session."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from fakeazure import DEPLOYER, DEPLOYER_SECRET, TENANT, FakeAzure
from infra_helpers import REPO

AZ = REPO / ".venv" / "azure-cli" / "bin" / "az"
STANDINS = Path(__file__).with_name("standins.py")


def az_cli(config_dir: Path, azure: FakeAzure, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "AZD_"))},
           **azure.environment(config_dir)}
    return subprocess.run([str(AZ), *argv], env=env, capture_output=True, text=True, timeout=180, check=False)


def sign_in(config_dir: Path, azure: FakeAzure, client_id: str = DEPLOYER) -> None:
    """What a person does once: register the cloud, turn off instance discovery (it asks
    login.microsoftonline.com about the authority), sign in."""
    config_dir.mkdir(parents=True, exist_ok=True)
    for argv in (("cloud", "register", "--name", "FakeAzure", "--endpoint-resource-manager", azure.url + "/"),
                 ("cloud", "set", "--name", "FakeAzure"),
                 ("config", "set", "core.instance_discovery=false", "--only-show-errors"),
                 ("login", "--service-principal", "--username", client_id, "--password", DEPLOYER_SECRET,
                  "--tenant", TENANT, "--output", "none")):
        result = az_cli(config_dir, azure, *argv)
        assert result.returncode == 0, f"az {' '.join(argv)}: {result.stderr}"


@dataclass
class RealCloud:
    """One test's world: the fake Azure (reset), a signed-in az config dir of its own, the stand-ins."""

    root: Path
    azure: FakeAzure
    config_template: Path

    def __post_init__(self) -> None:
        self.config = self.root / "azure config"
        shutil.copytree(self.config_template, self.config)
        self.bin = self.root / "fake bin"  # a space: the scripts must quote the paths they are given
        self.bin.mkdir()
        for prog in ("azd", "docker", "smoke"):
            self._wrapper(prog, f'exec "{sys.executable}" "{STANDINS}" {prog} "$@"\n')
        self._wrapper("az", 'case "$1 $2" in\n'
                            f'  "acr build" | "acr login") exec "{sys.executable}" "{STANDINS}" az "$@" ;;\n'
                            'esac\n'
                            f'exec "{AZ}" "$@"\n')
        self.log = self.root / "standins.jsonl"
        self.log.touch()
        self.state = self.root / "azd.json"
        self.summary = self.root / "step-summary.md"
        self.envs: dict[str, dict] = {}
        self.behaviour: dict = {}

    def _wrapper(self, prog: str, body: str) -> None:
        path = self.bin / prog
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)

    def az(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """The real CLI with this test's config (to arrange things, e.g. `account set`)."""
        return az_cli(self.config, self.azure, *argv)

    def env_values(self, name: str) -> dict:
        return json.loads(self.state.read_text())["envs"][name]

    def provisioned(self) -> list[dict]:
        """The environment's values at each `azd provision` (what main.parameters.json is filled from)."""
        return json.loads(self.state.read_text()).get("provisioned", [])

    def save(self) -> None:
        """Hand the environments and behaviour the test arranged to the azd stand-in."""
        previous = json.loads(self.state.read_text()) if self.state.exists() else {"envs": {}, "default": None}
        previous["envs"].update(self.envs)
        previous["behaviour"] = self.behaviour
        self.state.write_text(json.dumps(previous))
        self.envs = {}

    def run(self, *argv: str, timeout: int = 300, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        self.save()
        environ = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "AZD_", "VOICEBRIDGE_", "GITHUB_"))},
            **self.azure.environment(self.config),
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "STANDIN_LOG": str(self.log),
            "FAKE_AZURE_URL": self.azure.url,
            "AZD_STATE": str(self.state),
            "VOICEBRIDGE_SMOKE_CMD": str(self.bin / "smoke"),
            "VOICEBRIDGE_GATE_INTERVAL": "0",
            "VOICEBRIDGE_GATE_TIMEOUT": "0",
            "VOICEBRIDGE_RETRY_DELAY": "0",
            "GITHUB_STEP_SUMMARY": str(self.summary),
            **env,
        }
        return subprocess.run(["bash", *argv], cwd=REPO, env=environ, input=stdin,
                              stdin=None if stdin is not None else subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def calls(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def commands(self) -> list[str]:
        out = []
        for call in self.calls():
            words = [call["prog"]]
            for arg in call["argv"]:
                if arg.startswith("-") or call["prog"] == "smoke":
                    break
                words.append(arg)
            out.append(" ".join(words))
        return out
