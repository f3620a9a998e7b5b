"""azdeploy.sh, its hooks and the predeploy check, driven end to end with the real azure-cli against the fake
Azure (tests/infra/fakeazure.py). azd and docker are the recording stand-ins of standins.py (neither can run
here); every `az` call but `acr build`/`acr login` is the real CLI. The scenarios issue 20 names are in
test_deploy_real_cli.py; these are the rest of the menu's behaviour."""

from __future__ import annotations

import os
import pty
import subprocess

import pytest
from fakeazure import SUBSCRIPTION
from infra_helpers import REPO
from test_deploy_real_cli import (
    HOOK,
    LIVE,
    POSTPROVISION,
    PREVIOUS,
    REGISTRY,
    hook_env,
    index,
    is_swap,
    lab,
    lab_env,
)


def first_provision_creates_the_site(real) -> dict:
    """The deployment of a new environment: the site (both slots on the placeholder) and the registry appear
    only when `azd provision` runs, which writes the outputs back to the environment."""
    created = {}

    def provision(_values) -> None:
        created["site"] = real.azure.add_site("rg-lab", "app-1")
        real.azure.add_registry("rg-lab", REGISTRY)

    real.azure.on_provision = provision
    placeholder = type("S", (), {"name": "app-1"})()
    real.behaviour["outputs"] = {k: v for k, v in lab_env(real, placeholder).items() if not k.startswith("AZURE_ENV")}
    return created


def test_option_1_on_a_new_environment_creates_it_in_azs_subscription_and_releases(real):
    created = first_provision_creates_the_site(real)
    real.envs["other"] = {"AZURE_ENV_NAME": "other"}  # the stand-in's state exists; `lab` does not
    result = real.run("azdeploy.sh", "--full", "--env", "lab", "--location", "swedencentral", "--yes")
    assert result.returncode == 0, result.stderr
    new = next(c["argv"] for c in real.calls() if c["argv"][:2] == ["env", "new"])
    assert new == ["env", "new", "lab", "--location", "swedencentral", "--subscription", SUBSCRIPTION]
    commands = real.commands()
    assert commands.index("azd hooks run preprovision") < commands.index("azd provision") < commands.index("az acr build")
    (provisioned,) = real.provisioned()
    assert provisioned["SERVICE_WEB_IMAGE_NAME"] == "" and provisioned["AZD_DEPLOY_WEB_SLOT_NAME"] == "production"
    assert created["site"].images["production"] == real.env_values("lab")["SERVICE_WEB_IMAGE_NAME"]
    assert "open to anyone with the URL" in result.stderr and "US$180" in result.stderr


def test_the_menu_asks_for_the_region_of_a_new_environment(real):
    first_provision_creates_the_site(real)
    real.envs["other"] = {"AZURE_ENV_NAME": "other"}
    real.save()
    primary, secondary = pty.openpty()
    environ = {**{k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "AZD_", "VOICEBRIDGE_"))},
               **real.azure.environment(real.config), "PATH": f"{real.bin}{os.pathsep}{os.environ['PATH']}",
               "STANDIN_LOG": str(real.log), "FAKE_AZURE_URL": real.azure.url, "AZD_STATE": str(real.state), "VOICEBRIDGE_SMOKE_CMD": str(real.bin / "smoke"),
               "VOICEBRIDGE_GATE_INTERVAL": "0", "VOICEBRIDGE_GATE_TIMEOUT": "0", "AZURE_ENV_NAME": "lab"}
    process = subprocess.Popen(["bash", "azdeploy.sh"], cwd=REPO, env=environ, stdin=secondary,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    os.close(secondary)
    try:
        # The terminal buffers the answers line by line; each prompt's `read` takes the next one.
        os.write(primary, b"1\nswedencentral\ny\n")
        _, stderr = process.communicate(timeout=240)
    finally:
        os.close(primary)
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "Region for the new environment 'lab'" in stderr
    new = next(c["argv"] for c in real.calls() if c["argv"][:2] == ["env", "new"])
    assert new[:4] == ["env", "new", "lab", "--location"] and new[4] == "swedencentral"


def test_dry_run_needs_neither_az_nor_azd_and_previews_a_first_deployment(real, tmp_path):
    bare = tmp_path / "bare bin"  # bash, the coreutils the scripts use, git and python: no az, azd or curl
    bare.mkdir()
    for tool in ("bash", "env", "dirname", "date", "git", "mktemp", "rm", "sed", "python3", "tr", "cat"):
        found = subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout.strip()
        if found:
            (bare / tool).symlink_to(found)
    result = subprocess.run(["bash", "azdeploy.sh", "--full", "--env", "fresh", "--location", "eastus2", "--dry-run"],
                            cwd=REPO, env={"PATH": str(bare), "HOME": str(tmp_path)}, capture_output=True, text=True,
                            timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    for command in ("azd env new fresh --location eastus2", "azd hooks run preprovision --environment fresh",
                    "azd provision --no-prompt --environment fresh", "az acr build", "az rest --method patch",
                    "az webapp deployment slot swap"):
        assert command in result.stderr
    assert "open to anyone with the URL" in result.stderr


def test_dry_run_of_an_existing_environment_runs_nothing(real):
    lab(real)
    result = real.run("azdeploy.sh", "--full", "--env", "lab", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert real.calls() == [] and real.azure.requests == []
    assert "azd env select lab" in result.stderr and "azd env new" not in result.stderr


def test_provision_is_retried_after_a_transient_failure(real):
    site = lab(real, production=LIVE, staging=PREVIOUS)
    real.envs["lab"] = lab_env(real, site)
    real.behaviour["provision_failures"] = 1
    result = real.run("azdeploy.sh", "--full", "--env", "lab", "--yes")
    assert result.returncode == 0, result.stderr
    assert real.commands().count("azd provision") == 2 and "retrying" in result.stderr


def test_region_without_the_model_stops_before_provisioning(real):
    lab(real)
    real.azure.models["swedencentral"] = ["gpt-4o"]
    result = real.run("azdeploy.sh", "--full", "--env", "lab", "--yes")
    assert result.returncode != 0
    assert "azd provision" not in real.commands()
    assert "does not offer the model 'gpt-realtime'" in result.stderr and "eastus2" in result.stderr


def test_the_model_checked_is_the_environments_not_the_shells(real):
    site = lab(real)
    real.envs["lab"] = lab_env(real, site, VOICE_LIVE_MODEL="gpt-realtime-mini")
    real.azure.models["swedencentral"] = ["gpt-realtime"]
    result = real.run("azdeploy.sh", "--full", "--env", "lab", "--yes", VOICE_LIVE_MODEL="gpt-realtime")
    assert result.returncode != 0
    assert "does not offer the model 'gpt-realtime-mini'" in result.stderr


def test_a_deploy_slot_the_user_chose_is_left_alone(real):
    site = lab(real, production=LIVE, staging=PREVIOUS)
    real.envs["lab"] = lab_env(real, site, AZD_DEPLOY_WEB_SLOT_NAME="staging")
    result = real.run("azdeploy.sh", "--full", "--env", "lab", "--yes")
    assert result.returncode == 0, result.stderr
    assert real.env_values("lab")["AZD_DEPLOY_WEB_SLOT_NAME"] == "staging"


def test_values_with_spaces_and_quotes_reach_the_cli_unchanged(real):
    env_name = """lab 'one' "two\""""
    group = "rg with spaces; $(touch pwned) `and` quotes'"
    site = real.azure.add_site(group, "app-1", production=LIVE, staging=PREVIOUS)
    real.azure.add_registry(group, REGISTRY)
    real.envs[env_name] = {**lab_env(real, site), "AZURE_ENV_NAME": env_name, "AZURE_RESOURCE_GROUP": group}
    result = real.run("azdeploy.sh", "--image-only", "--env", env_name)
    assert result.returncode == 0, result.stderr
    envs = {c["argv"][c["argv"].index("--environment") + 1] for c in real.calls() if "--environment" in c["argv"]}
    assert envs == {env_name}
    assert any(group in r.path for r in real.azure.arm()) and site.images["production"] != LIVE
    assert not (REPO / "pwned").exists()


def test_image_only_needs_an_existing_environment(real):
    real.envs["other"] = {"AZURE_ENV_NAME": "other"}
    result = real.run("azdeploy.sh", "--image-only", "--env", "nowhere")
    assert result.returncode != 0 and "run a full deploy (option 1) first" in result.stderr
    assert real.azure.requests == []


def test_without_a_terminal_or_a_mode_it_asks_for_flags(real):
    result = real.run("azdeploy.sh")
    assert result.returncode != 0 and "--full" in result.stderr and "--image-only" in result.stderr
    assert real.calls() == []


def test_status_shows_both_images_and_healthz(real):
    lab(real, production=LIVE, staging=PREVIOUS)
    result = real.run("azdeploy.sh", "--status", "--env", "lab")
    assert result.returncode == 0, result.stderr
    assert f"production image: DOCKER|{LIVE}" in result.stderr and f"DOCKER|{PREVIOUS}" in result.stderr
    assert '"image_tag": "live"' in result.stderr


def test_teardown_purges_but_keeps_azd_state(real):
    lab(real)
    result = real.run("azdeploy.sh", "--teardown", "--env", "lab", "--yes")
    assert result.returncode == 0, result.stderr
    assert [c["argv"] for c in real.calls() if c["argv"][:1] == ["down"]] == [["down", "--purge", "--force", "--environment", "lab"]]
    assert "option 1" in result.stderr and "soft-deleted" in result.stderr


def test_after_teardown_option_1_recovers_the_vault_and_starts_on_the_placeholder(real):
    # What azd down --purge leaves: no resource group, the vault soft-deleted and holding its name.
    real.envs["lab"] = {**hook_env(real), "SERVICE_WEB_IMAGE_NAME": f"{REGISTRY}.azurecr.io/voicebridge:gone"}
    real.azure.add_deleted_vault("kv-abc123", "lab", "swedencentral")
    real.azure.add_deleted_vault("kv-other", "lab", "eastus2")
    result = real.run(HOOK, **real.envs["lab"])
    assert result.returncode == 0, result.stderr
    values = real.env_values("lab")
    assert values["KEY_VAULT_CREATE_MODE"] == "recover" and values["SERVICE_WEB_IMAGE_NAME"] == ""
    assert "kv-abc123" in result.stderr and "recovers it" in result.stderr


def test_hook_restores_an_ai_account_azd_down_left_soft_deleted(real):
    real.azure.add_deleted_ai_account("cog-abc123", "rg-lab", "swedencentral")
    real.azure.add_deleted_ai_account("cog-elsewhere", "rg-other", "swedencentral")
    result = real.run(HOOK, **hook_env(real))
    assert result.returncode == 0, result.stderr
    values = real.env_values("lab")
    assert values["AI_SERVICES_RESTORE"] == "true" and values["KEY_VAULT_CREATE_MODE"] == "default"
    assert "cog-abc123" in result.stderr


def test_hook_stops_with_a_message_when_a_provider_cannot_be_registered(real):
    real.azure.providers[(SUBSCRIPTION, "Microsoft.Web")] = "NotRegistered"
    real.azure.fail("POST", r"/providers/Microsoft.Web/register$", 403, "AuthorizationFailed",
                    "The client does not have authorization to perform action "
                    "'Microsoft.Resources/subscriptions/providers/register/action'")
    result = real.run(HOOK, **hook_env(real))
    assert result.returncode == 1
    assert "could not register Microsoft.Web" in result.stderr
    assert "az provider register --namespace Microsoft.Web" in result.stderr and "Traceback" not in result.stderr


def test_hook_without_an_azure_cli_login_stops_before_anything_is_reset(real):
    real.config = real.root / "never signed in"
    real.config.mkdir()
    result = real.run(HOOK, **hook_env(real, SERVICE_WEB_IMAGE_NAME=LIVE))
    assert result.returncode == 1 and "az login" in result.stderr
    assert real.env_values("lab")["SERVICE_WEB_IMAGE_NAME"] == LIVE


def test_hook_needs_the_environments_subscription(real):
    values = hook_env(real)
    del values["AZURE_SUBSCRIPTION_ID"]
    result = real.run(HOOK, **values)
    assert result.returncode == 1 and "AZURE_SUBSCRIPTION_ID is not set" in result.stderr
    assert real.azure.arm() == []


def test_predeploy_hook_on_a_free_trial_says_what_works_instead(real):
    real.azure.quota[SUBSCRIPTION] = "FreeTrial_2014-09-01"
    result = real.run("scripts/azd-hooks/predeploy.sh", AZURE_SUBSCRIPTION_ID=SUBSCRIPTION)
    assert result.returncode == 1
    assert "TasksOperationsNotAllowed" in result.stderr and "--builder docker" in result.stderr
    assert "deploy workflow" in result.stderr


def test_predeploy_hook_passes_on_a_pay_as_you_go_subscription(real):
    result = real.run("scripts/azd-hooks/predeploy.sh", AZURE_SUBSCRIPTION_ID=SUBSCRIPTION)
    assert result.returncode == 0, result.stderr


def test_option_2_can_build_with_docker(real):
    site = lab(real, production=LIVE, staging=PREVIOUS)
    result = real.run("azdeploy.sh", "--image-only", "--env", "lab", "--builder", "docker")
    assert result.returncode == 0, result.stderr
    commands = [f"{c['prog']} {c['argv'][0]}" for c in real.calls()]
    assert "az acr build" not in real.commands()
    assert commands.index("docker build") < commands.index("az acr") < commands.index("docker push")
    assert site.images["production"] == real.env_values("lab")["SERVICE_WEB_IMAGE_NAME"]


# --- sign-in (issue 13) -----------------------------------------------------------------------------------

def test_without_sign_in_the_hook_asks_microsoft_graph_nothing(real):
    result = real.run(HOOK, **hook_env(real, VOICEBRIDGE_AUTH="none"))
    assert result.returncode == 0, result.stderr
    assert real.azure.graph() == [] and "VOICEBRIDGE_AUTH_CLIENT_ID" not in real.env_values("lab")


def test_hook_creates_the_app_registration_single_tenant_without_a_secret(real):
    result = real.run(HOOK, **hook_env(real, VOICEBRIDGE_AUTH="entra"))
    assert result.returncode == 0, result.stderr
    (app,) = real.azure.applications
    create = next(r for r in real.azure.graph() if r.method == "POST" and r.path.endswith("/applications"))
    assert create.body["displayName"] == "voicebridge-lab" and create.body["signInAudience"] == "AzureADMyOrg"
    assert create.body["web"]["implicitGrantSettings"]["enableIdTokenIssuance"] is True
    assert not create.body.get("passwordCredentials") and not create.body.get("keyCredentials")
    assert [sp["appId"] for sp in real.azure.service_principals] == [app["appId"]]
    assert real.env_values("lab")["VOICEBRIDGE_AUTH_CLIENT_ID"] == app["appId"]
    assert "created app registration voicebridge-lab" in result.stderr


def test_hook_reuses_the_registration_of_this_environment(real):
    app = real.azure.add_application("voicebridge-lab")
    real.azure.service_principals.append({"id": "sp-1", "appId": app["appId"], "servicePrincipalNames": [app["appId"]]})
    result = real.run(HOOK, **hook_env(real, VOICEBRIDGE_AUTH="entra"))
    assert result.returncode == 0, result.stderr
    assert [r for r in real.azure.graph() if r.method != "GET"] == []
    assert real.env_values("lab")["VOICEBRIDGE_AUTH_CLIENT_ID"] == app["appId"] and "reusing" in result.stderr


def test_two_registrations_with_this_environments_name_are_not_guessed_between(real):
    real.azure.add_application("voicebridge-lab")
    real.azure.add_application("voicebridge-lab")
    result = real.run(HOOK, **hook_env(real, VOICEBRIDGE_AUTH="entra"))
    assert result.returncode == 1 and "more than one app registration is named voicebridge-lab" in result.stderr
    assert "VOICEBRIDGE_AUTH_CLIENT_ID" not in real.env_values("lab")


def test_hook_uses_a_registration_an_administrator_made(real):
    app = real.azure.add_application("made by an admin")
    real.azure.service_principals.append({"id": "sp-1", "appId": app["appId"], "servicePrincipalNames": [app["appId"]]})
    result = real.run(HOOK, **hook_env(real, VOICEBRIDGE_AUTH="entra", VOICEBRIDGE_AUTH_CLIENT_ID=app["appId"]))
    assert result.returncode == 0, result.stderr
    assert [r for r in real.azure.graph() if r.method != "GET"] == []
    assert real.env_values("lab")["VOICEBRIDGE_AUTH_CLIENT_ID"] == app["appId"]


@pytest.mark.parametrize("refusal, step", [
    ({"graph_refused": True}, "list app registrations"),
    ({"may_register": False}, "create the app registration voicebridge-lab"),
])
def test_hook_without_the_right_to_register_applications_says_what_is_needed(real, refusal, step):
    from fakeazure import DEPLOYER

    real.azure.principals[DEPLOYER].update(refusal)
    result = real.run(HOOK, **hook_env(real, VOICEBRIDGE_AUTH="entra"))
    assert result.returncode == 1
    assert f"could not {step} in Microsoft Entra ID" in result.stderr
    assert "Application Developer" in result.stderr and "Application.ReadWrite.OwnedBy" in result.stderr
    assert "azd env set VOICEBRIDGE_AUTH_CLIENT_ID" in result.stderr and "azd env set VOICEBRIDGE_AUTH none" in result.stderr
    assert "VOICEBRIDGE_AUTH_CLIENT_ID" not in real.env_values("lab") and "Traceback" not in result.stderr


def test_hook_refuses_an_unknown_sign_in_mode(real):
    result = real.run(HOOK, **hook_env(real, VOICEBRIDGE_AUTH="google"))
    assert result.returncode == 1 and "use none (no sign-in) or entra" in result.stderr


def test_postprovision_without_sign_in_does_nothing(real):
    site = lab(real)
    result = real.run(POSTPROVISION, **hook_env(real, site))
    assert result.returncode == 0 and real.azure.requests == []


def test_option_1_with_auth_entra_records_it_registers_the_app_and_gates_on_healthz(real):
    site = lab(real, production=LIVE, staging=PREVIOUS, easy_auth=True)
    result = real.run("azdeploy.sh", "--full", "--env", "lab", "--yes", "--auth", "entra")
    assert result.returncode == 0, result.stderr
    commands = real.commands()
    assert commands.index("azd env set VOICEBRIDGE_AUTH entra") < commands.index("azd hooks run preprovision")
    (provisioned,) = real.provisioned()
    assert provisioned["VOICEBRIDGE_AUTH"] == "entra"
    (app,) = real.azure.applications
    assert provisioned["VOICEBRIDGE_AUTH_CLIENT_ID"] == app["appId"]
    # azd's postprovision hook gave the registration both slots' callbacks.
    assert sorted(app["web"]["redirectUris"]) == sorted(
        f"{real.azure.site_url(site, slot)}/.auth/login/aad/callback" for slot in ("production", "staging"))
    # The site requires sign-in: the gate is /healthz (excluded from sign-in), no smoke session.
    assert "smoke" not in commands and index(real.azure.requests, is_swap) >= 0
    assert "a script cannot sign in" in result.stderr and site.images["production"] != LIVE


def test_option_1_refuses_an_unknown_auth_mode_before_touching_anything(real):
    result = real.run("azdeploy.sh", "--full", "--env", "lab", "--yes", "--auth", "basic")
    assert result.returncode != 0 and "--auth is none or entra" in result.stderr
    assert real.calls() == [] and real.azure.requests == []
