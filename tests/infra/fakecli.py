"""Stand-in for the az, azd, curl, docker and smoke executables the deployment scripts call.

Azure is unreachable from here, so these are the one place a stand-in is right: each call appends its
argv as one JSON line to $FAKE_LOG and answers the way the real CLI does for the commands the scripts use,
as the scenario in $FAKE_SCENARIO (JSON) describes. Invoked as `fakecli.py PROGRAM ARGS...`.

The site is simulated just enough for the rollout's gate to mean something: production and the staging
slot each run an image, a PATCH of a slot's config/web changes the slot's, a swap exchanges them, and
/healthz on each host reports the tag of the image it runs (unless the scenario says otherwise). Every
flag the scripts pass is also checked against the real azure-cli's parser, in test_azure_cli_arguments.py.
"""

from __future__ import annotations

import json
import os
import sys
from urllib.parse import urlparse

DEFAULT_SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"


def option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def logged_calls() -> list[dict]:
    with open(os.environ["FAKE_LOG"], encoding="utf-8") as log:
        return [json.loads(line) for line in log]


def earlier_calls(matches) -> int:
    """How many calls before this one match (the log already holds this call)."""
    return sum(1 for c in logged_calls() if matches(c)) - 1


def images(scenario: dict) -> dict[str, str]:
    """Which image production and the slot run now, replaying the slot PATCHes and swaps logged so far."""
    state = {"production": scenario.get("live_image", "cr1.azurecr.io/voicebridge:old"),
             "staging": scenario.get("staging_image", "cr1.azurecr.io/voicebridge:older")}
    for call in logged_calls()[:-1]:
        argv = call["argv"]
        if call["prog"] != "az":
            continue
        if argv[:1] == ["rest"] and (option(argv, "--method") or "get").lower() in ("patch", "put"):
            url = option(argv, "--url") or option(argv, "--uri") or ""
            if "/slots/staging/config/web" in url:
                fx = json.loads(option(argv, "--body"))["properties"]["linuxFxVersion"]
                state["staging"] = fx.removeprefix("DOCKER|")
            elif "/config/web" in url:
                state["production"] = json.loads(option(argv, "--body"))["properties"]["linuxFxVersion"].removeprefix("DOCKER|")
        if argv[:4] == ["webapp", "deployment", "slot", "swap"]:
            state["production"], state["staging"] = state["staging"], state["production"]
    return state


def az(argv: list[str], scenario: dict) -> int:
    if argv[:2] == ["account", "show"]:
        if option(argv, "--query") == "id":
            print(scenario.get("subscription", DEFAULT_SUBSCRIPTION))
        return 0 if scenario.get("az_logged_in", True) else 1
    if argv[:2] == ["provider", "register"] and scenario.get("register_fails"):
        print("ERROR: (AuthorizationFailed) The client does not have authorization to perform action"
              " 'Microsoft.Resources/subscriptions/providers/register/action'", file=sys.stderr)
        return 1
    if argv[:2] == ["provider", "show"]:
        print(scenario.get("providers", {}).get(option(argv, "--namespace"), "Registered"))
        return 0
    if argv[:3] == ["cognitiveservices", "model", "list"]:
        print(scenario.get("model_offered", "1"))
        return 0
    if argv[:2] == ["acr", "show"]:
        print(f"{option(argv, '--name')}.azurecr.io")
        return 0
    if argv[:2] == ["acr", "build"] and scenario.get("acr_tasks_refused"):
        print("ERROR: (TasksOperationsNotAllowed) ACR Tasks requests for the registry cr1 are not permitted.",
              file=sys.stderr)
        return 1
    if argv[:2] == ["group", "exists"]:
        print("true" if scenario.get("site_exists") else "false")
        return 0
    if argv[:2] == ["webapp", "list"]:
        if scenario.get("site_exists"):
            print("app-1")
        return 0
    if argv[:2] == ["webapp", "show"]:
        name, slot, group = option(argv, "--name"), option(argv, "--slot"), option(argv, "--resource-group")
        site_id = f"/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/{group}/providers/Microsoft.Web/sites/{name}"
        host = f"{name}-{slot}.azurewebsites.net" if slot else f"{name}.azurewebsites.net"
        site_id = f"{site_id}/slots/{slot}" if slot else site_id
        # --query "[id, defaultHostName]" --output tsv: knack prints a list one element per line.
        print({"defaultHostName": host, "id": site_id}.get(option(argv, "--query"), f"{site_id}\n{host}"))
        return 0
    if argv[:3] == ["webapp", "config", "show"]:
        print("DOCKER|" + images(scenario)["staging" if option(argv, "--slot") else "production"])
        return 0
    if argv[:3] == ["appservice", "plan", "list"]:
        print(scenario.get("instances", 1))
        return 0
    if argv[:3] == ["cognitiveservices", "account", "list-deleted"]:
        for name in scenario.get("deleted_ai_accounts", []):
            print(name)
        return 0
    if argv[:2] == ["keyvault", "list-deleted"]:
        for name in scenario.get("deleted_vaults", []):
            print(name)
        return 0
    if argv[:1] == ["rest"] and (option(argv, "--method") or "get").lower() == "get":
        if "/subscriptions/" in (option(argv, "--url") or ""):
            print(scenario.get("quota_id", "PayAsYouGo_2014-09-01"))
        return 0
    if argv[:1] == ["ad"]:
        return entra(argv[1:], scenario)
    # acr build/login, rest PATCH, webapp restart, deployment slot swap, provider register: succeed quietly.
    return 0


INSUFFICIENT = "ERROR: Insufficient privileges to complete the operation."
NEW_APP_ID = "11111111-2222-3333-4444-555555555555"


def entra(argv: list[str], scenario: dict) -> int:
    """Microsoft Graph through `az ad`: the registrations in scenario["apps"] ({display name: appId}); a
    scenario may refuse everything (entra_refused: a guest, or registration off for members) or one verb."""
    refused = scenario.get("entra_refused") or argv[:2] == ["app", scenario.get("app_refused_verb")]
    if refused:
        print(INSUFFICIENT, file=sys.stderr)
        return 1
    apps = scenario.get("apps", {})
    if argv[:2] == ["app", "list"]:
        found = apps.get(option(argv, "--display-name") or "")
        if found:
            print(found)
        return 0
    if argv[:2] == ["app", "show"]:
        if option(argv, "--id") in apps.values():
            print(option(argv, "--id"))
            return 0
        print(f"ERROR: Resource '{option(argv, '--id')}' does not exist or one of its queried reference-property"
              " objects are not present.", file=sys.stderr)
        return 3
    if argv[:2] == ["app", "create"]:
        print(NEW_APP_ID)
        return 0
    if argv[:2] == ["sp", "show"]:
        if scenario.get("sp_exists"):
            print("sp-object-id")
            return 0
        print("ERROR: Service principal not found", file=sys.stderr)
        return 3
    return 0  # app update, sp create


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
    host = urlparse(url).hostname
    reply = answer(scenario.get("health", {}), host, "curl", 200)
    # 200 alone: a healthy container reporting the tag of the image this host runs now; a dict can say
    # that it still reports another tag (an old container that is still healthy).
    if not isinstance(reply, dict):
        reply = {"code": reply}
    code = str(reply["code"])
    running = images(scenario)["staging" if "-staging." in host else "production"]
    tag = reply.get("tag", running.rsplit(":", 1)[-1])
    if code != "000" and option(argv, "--output") != "/dev/null":
        sys.stdout.write(json.dumps({"status": "ok", "version": "0.1.0", "image_tag": tag}))
    sys.stdout.write((option(argv, "--write-out") or "").replace("%{http_code}", code).replace("\\n", "\n"))
    return 7 if code == "000" else 0  # 7: curl could not connect


def smoke(argv: list[str], scenario: dict) -> int:
    status = int(answer(scenario.get("smoke", {}), urlparse(argv[0]).hostname, "smoke", 0))
    print("smoke: ready" if status == 0 else "smoke: session never reached ready", file=sys.stderr)
    return status


def docker(argv: list[str], scenario: dict) -> int:
    return 0


def main() -> int:
    prog, argv = sys.argv[1], sys.argv[2:]
    with open(os.environ["FAKE_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps({"prog": prog, "argv": argv}) + "\n")
    with open(os.environ["FAKE_SCENARIO"], encoding="utf-8") as f:
        scenario = json.load(f)
    return {"az": az, "azd": azd, "curl": curl, "smoke": smoke, "docker": docker}[prog](argv, scenario)


if __name__ == "__main__":
    sys.exit(main())
