"""Stand-in for the az, azd, curl and smoke executables the deployment scripts call.

Azure is unreachable from here, so these are the one place a stand-in is right: each call appends its
argv as one JSON line to $FAKE_LOG and answers the way the real CLI does for the commands the scripts use,
as the scenario in $FAKE_SCENARIO (JSON) describes. Invoked as `fakecli.py PROGRAM ARGS...`.
"""

from __future__ import annotations

import json
import os
import sys
from urllib.parse import urlparse


def option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def earlier_calls(matches) -> int:
    """How many calls before this one match (the log already holds this call)."""
    with open(os.environ["FAKE_LOG"], encoding="utf-8") as log:
        calls = [json.loads(line) for line in log]
    return sum(1 for c in calls if matches(c)) - 1


def az(argv: list[str], scenario: dict) -> int:
    if argv[:2] == ["account", "show"]:
        if option(argv, "--query") == "id":
            print(scenario.get("subscription", "00000000-0000-0000-0000-000000000001"))
        return 0 if scenario.get("az_logged_in", True) else 1
    if argv[:2] == ["provider", "show"]:
        print(scenario.get("providers", {}).get(option(argv, "--namespace"), "Registered"))
        return 0
    if argv[:3] == ["cognitiveservices", "model", "list"]:
        print(scenario.get("model_offered", "1"))
        return 0
    if argv[:2] == ["acr", "show"]:
        print(f"{option(argv, '--name')}.azurecr.io")
        return 0
    if argv[:2] == ["webapp", "show"]:
        name, slot = option(argv, "--name"), option(argv, "--slot")
        print(f"{name}-{slot}.azurewebsites.net" if slot else f"{name}.azurewebsites.net")
        return 0
    # acr build, webapp config set / restart, deployment slot swap, provider register: succeed quietly.
    return 0


def azd(argv: list[str], scenario: dict) -> int:
    if argv[:2] == ["env", "get-values"]:
        return 0 if scenario.get("env_exists", True) else 1
    if argv[:2] == ["env", "get-value"]:
        values = scenario.get("env", {})
        if argv[2] not in values:
            print(f"ERROR: key '{argv[2]}' not found in the environment values", file=sys.stderr)
            return 1
        print(values[argv[2]])
        return 0
    provisions = earlier_calls(lambda c: c["prog"] == "azd" and c["argv"][:1] == ["provision"])
    if argv[:1] == ["provision"] and provisions < scenario.get("provision_failures", 0):
        print("ERROR: deployment failed: transient", file=sys.stderr)
        return 1
    return 0


def answer(values: dict, host: str, prog: str, default):
    """A host's answer: one value, or a list answered in turn (the last one repeats)."""
    value = values.get(host, default)
    if isinstance(value, list):
        calls = earlier_calls(lambda c: c["prog"] == prog and any(host in a for a in c["argv"]))
        value = value[min(calls, len(value) - 1)]
    return value


def curl(argv: list[str], scenario: dict) -> int:
    url = next(a for a in reversed(argv) if a.startswith("http"))
    code = str(answer(scenario.get("health", {}), urlparse(url).hostname, "curl", 200))
    sys.stdout.write(code)  # --write-out '%{http_code}'
    return 7 if code == "000" else 0  # 7: curl could not connect


def smoke(argv: list[str], scenario: dict) -> int:
    status = int(answer(scenario.get("smoke", {}), urlparse(argv[0]).hostname, "smoke", 0))
    print("smoke: ready" if status == 0 else "smoke: session never reached ready", file=sys.stderr)
    return status


def main() -> int:
    prog, argv = sys.argv[1], sys.argv[2:]
    with open(os.environ["FAKE_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps({"prog": prog, "argv": argv}) + "\n")
    with open(os.environ["FAKE_SCENARIO"], encoding="utf-8") as f:
        scenario = json.load(f)
    return {"az": az, "azd": azd, "curl": curl, "smoke": smoke}[prog](argv, scenario)


if __name__ == "__main__":
    sys.exit(main())
