"""Recording stand-ins for what cannot run here: azd (no binary can be installed offline), docker (no daemon),
`az acr build` / `az acr login` (ACR Tasks uploads the source to blob storage and streams the run's log from it;
acr login hands a token to docker) and the smoke session (the real one is `python -m voicebridge smoke`, tested
against the real app elsewhere; here a site is the fake Azure's, so the stand-in asks the site over HTTPS whether
it would let a browser in: 200 yes, a 302 to the sign-in page no). Every other `az` call runs the real azure-cli.

azd is modelled on azd 1.31's own rules: `env get-value` of an unknown key fails ("key 'X' not found in the
environment values"), `env get-values` prints dotenv lines, `env new` records AZURE_ENV_NAME, AZURE_LOCATION and
AZURE_SUBSCRIPTION_ID, and `hooks run NAME` runs azure.yaml's hook with bash (azd's executor for `shell: sh`)
and the environment's values added to the process environment, as azd does for every hook. `provision` records
the values main.parameters.json would be filled from, lets the fake Azure create what the deployment would
(POST /_test/provision), writes the outputs back, and runs the preprovision and postprovision hooks around
that, as azd does (a failing preprovision hook stops it; a deployment failure comes after the hook).

Invoked as `standins.py PROGRAM ARGS...`; each call appends {"prog", "argv"} to $STANDIN_LOG. The azd state
(environments and their values) lives in $AZD_STATE (JSON), which the tests read and seed.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv and argv.index(name) + 1 < len(argv) else None


class _State:
    def __init__(self) -> None:
        self.path = Path(os.environ["AZD_STATE"])
        self.data = json.loads(self.path.read_text()) if self.path.exists() else {"envs": {}, "default": None}
        self.behaviour = self.data.setdefault("behaviour", {})

    def save(self) -> None:
        self.path.write_text(json.dumps(self.data, indent=1))

    def env(self, argv: list[str]) -> tuple[str, dict] | None:
        name = option(argv, "--environment") or option(argv, "-e") or self.data.get("default")
        if name is None or name not in self.data["envs"]:
            print(f"ERROR: environment '{name}' does not exist", file=sys.stderr)
            return None
        return name, self.data["envs"][name]


def azd(argv: list[str]) -> int:
    state = _State()
    if argv[:3] == ["auth", "login", "--check-status"]:
        print("Logged in to Azure as deployer")
        return 0
    if argv[:2] == ["env", "new"]:
        name = argv[2]
        state.data["envs"][name] = {"AZURE_ENV_NAME": name, "AZURE_LOCATION": option(argv, "--location") or "",
                                    "AZURE_SUBSCRIPTION_ID": option(argv, "--subscription") or ""}
        state.data["default"] = name
        state.save()
        return 0
    if argv[:2] == ["env", "select"]:
        if argv[2] not in state.data["envs"]:
            print(f"ERROR: environment '{argv[2]}' does not exist", file=sys.stderr)
            return 1
        state.data["default"] = argv[2]
        state.save()
        return 0
    found = state.env(argv)
    if found is None:
        return 1
    name, values = found
    if argv[:2] == ["env", "get-value"]:
        if argv[2] not in values:
            print(f"ERROR: key '{argv[2]}' not found in the environment values", file=sys.stderr)
            return 1
        print(values[argv[2]])
        return 0
    if argv[:2] == ["env", "get-values"]:
        for key, value in values.items():
            print(f"{key}={json.dumps(value)}")
        return 0
    if argv[:2] == ["env", "set"]:
        values[argv[2]] = argv[3]
        state.save()
        return 0
    if argv[:2] == ["hooks", "run"]:
        return run_hook(argv[2], values)
    if argv[:1] == ["provision"]:
        return provision(argv)
    return 0  # down, deploy: recorded


def provision(argv: list[str]) -> int:
    """azd provision: the preprovision hook, then the deployment (which may fail), then postprovision."""
    status = run_hook("preprovision", _State().env(argv)[1])
    if status:
        return status
    state = _State()  # the hook changed the environment; azd reloads it before deploying
    name, values = state.env(argv)
    failures = state.behaviour.get("provision_failures", 0)
    if failures:
        state.behaviour["provision_failures"] = failures - 1
        state.save()
        print("ERROR: deployment failed: transient", file=sys.stderr)
        return 1
    # What main.parameters.json would be filled from, and the outputs a deployment writes back.
    state.data.setdefault("provisioned", []).append(dict(values))
    # The fake Azure creates what the test says the deployment creates.
    context = ssl.create_default_context(cafile=os.environ["REQUESTS_CA_BUNDLE"])
    request = urllib.request.Request(os.environ["FAKE_AZURE_URL"] + "/_test/provision", method="POST",
                                     data=json.dumps(values).encode(), headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, context=context, timeout=30).close()
    values.update(state.behaviour.get("outputs", {}))
    state.save()
    return run_hook("postprovision", values)


def run_hook(name: str, values: dict) -> int:
    import yaml

    hook = yaml.safe_load((REPO / "azure.yaml").read_text())["hooks"][name]
    environ = {**os.environ, **values}
    return subprocess.run(["bash", hook["run"]], cwd=REPO, env=environ, timeout=240).returncode


def acr(argv: list[str]) -> int:
    if argv[:2] == ["acr", "build"] and os.environ.get("STANDIN_ACR_TASKS_REFUSED"):
        print("ERROR: (TasksOperationsNotAllowed) ACR Tasks requests for the registry are not permitted.",
              file=sys.stderr)
        return 1
    return 0


def smoke(argv: list[str]) -> int:
    context = ssl.create_default_context(cafile=os.environ["REQUESTS_CA_BUNDLE"])

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), NoRedirect)
    try:
        with opener.open(argv[0].rstrip("/") + "/", timeout=10) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    if status == 200:
        print("smoke: ready", file=sys.stderr)
        return 0
    print(f"smoke: the page answered {status} (a WebSocket upgrade would too): session never reached ready",
          file=sys.stderr)
    return 1


def main() -> int:
    prog, argv = sys.argv[1], sys.argv[2:]
    with open(os.environ["STANDIN_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps({"prog": prog, "argv": argv}) + "\n")
    if prog == "azd":
        return azd(argv)
    if prog == "az":
        return acr(argv)
    if prog == "smoke":
        return smoke(argv)
    return 0  # docker


if __name__ == "__main__":
    sys.exit(main())
