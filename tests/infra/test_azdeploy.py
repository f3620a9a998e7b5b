"""azdeploy.sh driven end to end with stand-in az, azd, curl and smoke executables first on PATH.

Azure is unreachable from here and neither CLI can be installed offline, so the stand-ins
(tests/infra/fakecli.py) are the one place a stand-in is right: they record every argv and answer like the
real CLIs. azdeploy.sh, the preprovision hook and scripts/rollout.sh run for real under bash.
"""

from __future__ import annotations

import pytest
from infra_helpers import REPO

PROVIDERS = 7
ENV_VALUES = {
    "AZURE_LOCATION": "swedencentral",
    "AZURE_RESOURCE_GROUP": "rg-lab",
    "SERVICE_WEB_NAME": "app-1",
    "AZURE_CONTAINER_REGISTRY_NAME": "cr1",
    "SERVICE_WEB_URI": "https://app-1.azurewebsites.net",
}
OUTPUTS = ["azd env get-value AZURE_RESOURCE_GROUP", "azd env get-value SERVICE_WEB_NAME",
           "azd env get-value AZURE_CONTAINER_REGISTRY_NAME"]
ROLLOUT = ["az acr show", "az webapp show", "az webapp show", "az acr build", "az rest", "curl", "smoke",
           "az webapp deployment slot swap", "curl", "smoke"]
RECORD_AND_REPORT = ["azd env set SERVICE_WEB_IMAGE_NAME", "azd env get-value SERVICE_WEB_URI"]
LOGIN_CHECKS = ["az account show", "azd auth login"]
# The sign-in mode the environment holds (VOICEBRIDGE_AUTH; none when unset), read once per run.
AUTH_MODE = ["azd env get-value VOICEBRIDGE_AUTH"]
# scripts/azd-hooks/preprovision.sh on a subscription with nothing deployed yet.
HOOK_FIRST_TIME = [
    "az account show",
    *["az provider show"] * PROVIDERS,
    "az group exists",
    "azd env set SERVICE_WEB_IMAGE_NAME",
    "azd env set SERVICE_WEB_STAGING_IMAGE_NAME",
    "azd env set APP_SERVICE_INSTANCE_COUNT",
    "az keyvault list-deleted",
    "azd env set KEY_VAULT_CREATE_MODE",
    "az cognitiveservices account list-deleted",
    "azd env set AI_SERVICES_RESTORE",
    "az cognitiveservices model list",
    "azd env set AZD_DEPLOY_WEB_SLOT_NAME",
]
HOOK = ("scripts/azd-hooks/preprovision.sh",)
HOOK_ENV = {"AZURE_ENV_NAME": "lab", "AZURE_LOCATION": "swedencentral"}


def strip_image(commands: list[str]) -> list[str]:
    # Values set in the azd environment (a tag carries a timestamp) are checked separately: the sequence is
    # under test here.
    return [" ".join(c.split(" ")[:4]) if c.startswith("azd env set ") else c for c in commands]


def env_sets(cloud) -> dict[str, str]:
    return {c["argv"][2]: c["argv"][3] for c in cloud.calls() if c["prog"] == "azd" and c["argv"][:2] == ["env", "set"]}


def test_option_1_full_deploy_on_a_new_environment(cloud):
    cloud.scenario = {"env_exists": False, "env": ENV_VALUES}
    result = cloud.run("azdeploy.sh", "--full", "--env", "lab", "--location", "swedencentral", "--yes")
    assert result.returncode == 0, result.stderr
    assert strip_image(cloud.commands()) == [
        *LOGIN_CHECKS,
        "azd env get-values",
        "az account show",  # subscription id for the new environment
        "azd env new lab",
        *AUTH_MODE,
        *HOOK_FIRST_TIME,
        "azd provision",
        *OUTPUTS,
        *ROLLOUT,
        *RECORD_AND_REPORT,
    ]
    new_env = next(c["argv"] for c in cloud.calls() if c["argv"][:2] == ["env", "new"])
    assert new_env == ["env", "new", "lab", "--location", "swedencentral", "--subscription",
                       "00000000-0000-0000-0000-000000000001"]
    images = [c["argv"][3] for c in cloud.calls() if c["argv"][:3] == ["env", "set", "SERVICE_WEB_IMAGE_NAME"]]
    # Cleared by the hook (nothing deployed yet), then the released image is recorded.
    assert images[0] == "" and images[-1].startswith("cr1.azurecr.io/voicebridge:")
    assert "https://app-1.azurewebsites.net" in result.stderr


def test_option_1_on_an_existing_environment_selects_it_and_registers_missing_providers(cloud):
    cloud.scenario = {"env": ENV_VALUES, "providers": {"Microsoft.CognitiveServices": "NotRegistered"}}
    result = cloud.run("azdeploy.sh", "--full", "--env", "lab", "--yes")
    assert result.returncode == 0, result.stderr
    commands = cloud.commands()
    assert "azd env new" not in " ".join(commands)
    assert commands.index("azd env select lab") < commands.index("azd provision")
    register = [c["argv"] for c in cloud.calls() if c["argv"][:2] == ["provider", "register"]]
    assert register == [["provider", "register", "--namespace", "Microsoft.CognitiveServices", "--wait"]]
    assert "Microsoft.CognitiveServices is NotRegistered" in result.stderr


def test_option_1_re_provisions_with_what_runs_now(cloud):
    # A release by the deploy workflow: the azd environment still records an older image.
    cloud.scenario = {"env": {**ENV_VALUES, "SERVICE_WEB_IMAGE_NAME": "cr1.azurecr.io/voicebridge:stale"},
                      "site_exists": True, "instances": 3,
                      "live_image": "cr1.azurecr.io/voicebridge:live", "staging_image": "cr1.azurecr.io/voicebridge:prev"}
    result = cloud.run("azdeploy.sh", "--full", "--env", "lab", "--yes")
    assert result.returncode == 0, result.stderr
    commands = cloud.commands()
    provision = commands.index("azd provision")
    sets = [c["argv"][2:4] for c in cloud.calls()[:provision] if c["argv"][:2] == ["env", "set"]]
    assert ["SERVICE_WEB_IMAGE_NAME", "cr1.azurecr.io/voicebridge:live"] in sets
    assert ["SERVICE_WEB_STAGING_IMAGE_NAME", "cr1.azurecr.io/voicebridge:prev"] in sets
    assert ["APP_SERVICE_INSTANCE_COUNT", "3"] in sets


def test_option_2_image_only_update(cloud):
    cloud.scenario = {"env": ENV_VALUES}
    result = cloud.run("azdeploy.sh", "--image-only", "--env", "lab")
    assert result.returncode == 0, result.stderr
    assert strip_image(cloud.commands()) == [*LOGIN_CHECKS, "azd env get-values", *OUTPUTS, *AUTH_MODE, *ROLLOUT,
                                             *RECORD_AND_REPORT]


def test_provision_is_retried_after_a_transient_failure(cloud):
    cloud.scenario = {"env": ENV_VALUES, "provision_failures": 1}
    result = cloud.run("azdeploy.sh", "--full", "--env", "lab", "--yes")
    assert result.returncode == 0, result.stderr
    assert cloud.commands().count("azd provision") == 2
    assert "retrying" in result.stderr


def test_failing_health_gate_stops_before_the_swap(cloud):
    cloud.scenario = {"env": ENV_VALUES, "health": {"app-1-staging.azurewebsites.net": 503}}
    result = cloud.run("azdeploy.sh", "--image-only", "--env", "lab")
    assert result.returncode != 0
    commands = cloud.commands()
    assert "az webapp deployment slot swap" not in commands
    # The site keeps its image, so the environment must not record the failed one for re-provisioning.
    assert not any(c.startswith("azd env set SERVICE_WEB_IMAGE_NAME") for c in commands)
    assert "did not complete" in result.stderr


def test_region_without_the_model_stops_before_provisioning(cloud):
    cloud.scenario = {"env": ENV_VALUES, "model_offered": "0"}
    result = cloud.run("azdeploy.sh", "--full", "--env", "lab", "--yes")
    assert result.returncode != 0
    assert "azd provision" not in cloud.commands()
    assert "does not offer the model 'gpt-realtime'" in result.stderr and "eastus2" in result.stderr


def test_dry_run_prints_every_command_and_runs_none(cloud):
    cloud.scenario = {"env": ENV_VALUES}
    result = cloud.run("azdeploy.sh", "--full", "--env", "lab", "--location", "eastus2", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert cloud.calls() == []
    for command in ("azd provision --no-prompt --environment lab", "preprovision.sh", "az acr build",
                    "az rest --method patch", "az webapp deployment slot swap"):
        assert command in result.stderr


def test_values_with_spaces_and_quotes_reach_the_cli_unchanged(cloud):
    env_name = """lab 'one' "two\""""
    group = "rg with spaces; $(touch pwned) `and` quotes'"
    cloud.scenario = {"env": {**ENV_VALUES, "AZURE_RESOURCE_GROUP": group}}
    result = cloud.run("azdeploy.sh", "--image-only", "--env", env_name)
    assert result.returncode == 0, result.stderr
    calls = cloud.calls()
    azd_env_args = [c["argv"][c["argv"].index("--environment") + 1] for c in calls if "--environment" in c["argv"]]
    assert azd_env_args and set(azd_env_args) == {env_name}
    webapp = [c["argv"] for c in calls if c["argv"][:1] == ["webapp"]]
    assert webapp and all(argv[argv.index("--resource-group") + 1] == group for argv in webapp)
    assert not (REPO / "pwned").exists()


def test_image_only_needs_an_existing_environment(cloud):
    cloud.scenario = {"env_exists": False}
    result = cloud.run("azdeploy.sh", "--image-only", "--env", "nowhere")
    assert result.returncode != 0
    assert "run a full deploy (option 1) first" in result.stderr
    assert "az acr build" not in cloud.commands()


def test_without_a_terminal_or_a_mode_it_asks_for_flags(cloud):
    result = cloud.run("azdeploy.sh")
    assert result.returncode != 0
    assert "--full" in result.stderr and "--image-only" in result.stderr
    assert cloud.calls() == []


def test_teardown_purges_but_keeps_azd_state(cloud):
    cloud.scenario = {"env": ENV_VALUES}
    result = cloud.run("azdeploy.sh", "--teardown", "--env", "lab", "--yes")
    assert result.returncode == 0, result.stderr
    assert [c["argv"] for c in cloud.calls() if c["argv"][:1] == ["down"]] == [
        ["down", "--purge", "--force", "--environment", "lab"]
    ]
    assert not any(c["argv"][:2] in (["env", "remove"], ["env", "delete"]) for c in cloud.calls())
    assert "option 1" in result.stderr and "soft-deleted" in result.stderr


def test_option_4_then_option_1_recovers_the_purge_protected_vault(cloud):
    cloud.scenario = {"env": {**ENV_VALUES, "SERVICE_WEB_IMAGE_NAME": "cr1.azurecr.io/voicebridge:gone"}}
    assert cloud.run("azdeploy.sh", "--teardown", "--env", "lab", "--yes").returncode == 0
    # What azd down --purge leaves: no resource group, the vault soft-deleted and still holding its name.
    cloud.scenario = {**cloud.scenario, "deleted_vaults": ["kv-abc123"], "site_exists": False}
    result = cloud.run("azdeploy.sh", "--full", "--env", "lab", "--yes")
    assert result.returncode == 0, result.stderr
    sets = env_sets(cloud)
    assert sets["KEY_VAULT_CREATE_MODE"] == "recover"
    # The recorded image lived in the deleted registry: the new site starts on the placeholder.
    assert [c["argv"][3] for c in cloud.calls() if c["argv"][:3] == ["env", "set", "SERVICE_WEB_IMAGE_NAME"]][0] == ""
    assert "kv-abc123" in result.stderr and "recovers it" in result.stderr
    assert "azd provision" in cloud.commands()


def test_hook_sets_default_create_mode_when_no_vault_is_soft_deleted(cloud):
    result = cloud.run(*HOOK, **HOOK_ENV)
    assert result.returncode == 0, result.stderr
    assert strip_image(cloud.commands()) == HOOK_FIRST_TIME
    assert env_sets(cloud) == {"SERVICE_WEB_IMAGE_NAME": "", "SERVICE_WEB_STAGING_IMAGE_NAME": "",
                               "APP_SERVICE_INSTANCE_COUNT": "1", "KEY_VAULT_CREATE_MODE": "default",
                               "AI_SERVICES_RESTORE": "false", "AZD_DEPLOY_WEB_SLOT_NAME": "production"}


def test_hook_restores_an_ai_account_azd_down_left_soft_deleted(cloud):
    cloud.scenario = {"deleted_ai_accounts": ["cog-abc123"]}
    result = cloud.run(*HOOK, **HOOK_ENV)
    assert result.returncode == 0, result.stderr
    assert env_sets(cloud)["AI_SERVICES_RESTORE"] == "true"
    assert "cog-abc123" in result.stderr
    query = next(c["argv"] for c in cloud.calls() if c["argv"][:3] == ["cognitiveservices", "account", "list-deleted"])
    assert "/resourceGroups/rg-lab/" in query[query.index("--query") + 1]


def test_hook_leaves_a_chosen_deploy_slot_alone(cloud):
    result = cloud.run(*HOOK, **HOOK_ENV, AZD_DEPLOY_WEB_SLOT_NAME="staging")
    assert result.returncode == 0, result.stderr
    assert "AZD_DEPLOY_WEB_SLOT_NAME" not in env_sets(cloud)


def test_hook_stops_with_a_message_when_a_provider_cannot_be_registered(cloud):
    cloud.scenario = {"providers": {"Microsoft.Web": "NotRegistered"}, "register_fails": True}
    result = cloud.run(*HOOK, **HOOK_ENV)
    assert result.returncode == 1
    assert "could not register Microsoft.Web" in result.stderr and "az provider register --namespace Microsoft.Web" in result.stderr
    assert "Traceback" not in result.stderr


def test_hook_without_an_azure_cli_login_stops_before_anything_is_reset(cloud):
    cloud.scenario = {"az_logged_in": False}
    result = cloud.run(*HOOK, **HOOK_ENV)
    assert result.returncode == 1
    assert "az login" in result.stderr
    assert env_sets(cloud) == {}


def test_predeploy_hook_on_a_free_trial_says_what_works_instead(cloud):
    cloud.scenario = {"quota_id": "FreeTrial_2014-09-01"}
    result = cloud.run("scripts/azd-hooks/predeploy.sh", AZURE_SUBSCRIPTION_ID="sub-1")
    assert result.returncode == 1
    assert "TasksOperationsNotAllowed" in result.stderr and "--builder docker" in result.stderr
    assert "deploy workflow" in result.stderr
    rest = next(c["argv"] for c in cloud.calls() if c["argv"][:1] == ["rest"])
    assert rest[rest.index("--url") + 1] == "/subscriptions/sub-1?api-version=2022-12-01"


def test_predeploy_hook_passes_on_a_pay_as_you_go_subscription(cloud):
    result = cloud.run("scripts/azd-hooks/predeploy.sh", AZURE_SUBSCRIPTION_ID="sub-1")
    assert result.returncode == 0, result.stderr


def test_option_2_can_build_with_docker(cloud):
    cloud.scenario = {"env": ENV_VALUES}
    result = cloud.run("azdeploy.sh", "--image-only", "--env", "lab", "--builder", "docker")
    assert result.returncode == 0, result.stderr
    assert "az acr build" not in cloud.commands()
    assert any(c["prog"] == "docker" and c["argv"][0] == "push" for c in cloud.calls())


# --- sign-in (issue 13): the app registration, its redirect URIs, azdeploy.sh --auth ----------------------

ENTRA_HOOK_ENV = {**HOOK_ENV, "VOICEBRIDGE_AUTH": "entra"}
POSTPROVISION = ("scripts/azd-hooks/postprovision.sh",)
OUTPUT_ENV = {"SERVICE_WEB_URI": "https://app-1.azurewebsites.net",
              "SERVICE_WEB_STAGING_URI": "https://app-1-staging.azurewebsites.net"}


def ad_calls(cloud) -> list[list[str]]:
    return [c["argv"] for c in cloud.calls() if c["prog"] == "az" and c["argv"][:1] == ["ad"]]


def test_without_sign_in_the_hook_asks_microsoft_graph_nothing(cloud):
    result = cloud.run(*HOOK, **HOOK_ENV, VOICEBRIDGE_AUTH="none")
    assert result.returncode == 0, result.stderr
    assert ad_calls(cloud) == [] and "VOICEBRIDGE_AUTH_CLIENT_ID" not in env_sets(cloud)


def test_hook_creates_the_app_registration_once_single_tenant_and_without_a_secret(cloud):
    result = cloud.run(*HOOK, **ENTRA_HOOK_ENV)
    assert result.returncode == 0, result.stderr
    calls = ad_calls(cloud)
    assert calls[0][:2] == ["ad", "app"] and calls[0][2] == "list" and "voicebridge-lab" in calls[0]
    (create,) = [c for c in calls if c[:3] == ["ad", "app", "create"]]
    assert create[create.index("--display-name") + 1] == "voicebridge-lab"
    assert create[create.index("--sign-in-audience") + 1] == "AzureADMyOrg"
    assert create[create.index("--enable-id-token-issuance") + 1] == "true"
    assert not any("credential" in " ".join(c) or "secret" in " ".join(c) for c in calls), "no secret is made"
    assert ["ad", "sp", "create", "--id", "11111111-2222-3333-4444-555555555555", "--output", "none"] in calls
    assert env_sets(cloud)["VOICEBRIDGE_AUTH_CLIENT_ID"] == "11111111-2222-3333-4444-555555555555"
    assert "created app registration voicebridge-lab" in result.stderr


def test_hook_reuses_the_registration_of_this_environment(cloud):
    cloud.scenario = {"apps": {"voicebridge-lab": "aaaa-1"}, "sp_exists": True}
    result = cloud.run(*HOOK, **ENTRA_HOOK_ENV)
    assert result.returncode == 0, result.stderr
    assert not any(c[:3] in (["ad", "app", "create"], ["ad", "sp", "create"]) for c in ad_calls(cloud))
    assert env_sets(cloud)["VOICEBRIDGE_AUTH_CLIENT_ID"] == "aaaa-1" and "reusing" in result.stderr


def test_hook_uses_a_registration_an_administrator_made(cloud):
    cloud.scenario = {"apps": {"made by an admin": "bbbb-2"}, "sp_exists": True}
    result = cloud.run(*HOOK, **ENTRA_HOOK_ENV, VOICEBRIDGE_AUTH_CLIENT_ID="bbbb-2")
    assert result.returncode == 0, result.stderr
    assert ad_calls(cloud) == [["ad", "app", "show", "--id", "bbbb-2", "--query", "appId", "--output", "tsv"],
                               ["ad", "sp", "show", "--id", "bbbb-2", "--query", "id", "--output", "tsv"]]
    assert env_sets(cloud)["VOICEBRIDGE_AUTH_CLIENT_ID"] == "bbbb-2"


@pytest.mark.parametrize("scenario, step", [
    ({"entra_refused": True}, "list app registrations"),
    ({"app_refused_verb": "create"}, "create the app registration voicebridge-lab"),
])
def test_hook_without_the_right_to_register_applications_says_what_is_needed(cloud, scenario, step):
    cloud.scenario = scenario
    result = cloud.run(*HOOK, **ENTRA_HOOK_ENV)
    assert result.returncode == 1
    assert f"could not {step} in Microsoft Entra ID" in result.stderr
    assert "Application Developer" in result.stderr and "Application.ReadWrite.OwnedBy" in result.stderr
    assert "azd env set VOICEBRIDGE_AUTH_CLIENT_ID" in result.stderr and "azd env set VOICEBRIDGE_AUTH none" in result.stderr
    assert "VOICEBRIDGE_AUTH_CLIENT_ID" not in env_sets(cloud)
    assert "Traceback" not in result.stderr


def test_hook_refuses_an_unknown_sign_in_mode(cloud):
    result = cloud.run(*HOOK, **HOOK_ENV, VOICEBRIDGE_AUTH="google")
    assert result.returncode == 1 and "use none (no sign-in) or entra" in result.stderr


def test_postprovision_gives_the_registration_both_slots_callbacks(cloud):
    result = cloud.run(*POSTPROVISION, VOICEBRIDGE_AUTH="entra", VOICEBRIDGE_AUTH_CLIENT_ID="aaaa-1", **OUTPUT_ENV)
    assert result.returncode == 0, result.stderr
    assert ad_calls(cloud) == [["ad", "app", "update", "--id", "aaaa-1", "--web-redirect-uris",
                                "https://app-1.azurewebsites.net/.auth/login/aad/callback",
                                "https://app-1-staging.azurewebsites.net/.auth/login/aad/callback",
                                "--enable-id-token-issuance", "true"]]


def test_postprovision_without_sign_in_does_nothing(cloud):
    result = cloud.run(*POSTPROVISION, **OUTPUT_ENV)
    assert result.returncode == 0 and cloud.calls() == []


def test_postprovision_that_may_not_update_the_registration_names_the_uris_to_add(cloud):
    cloud.scenario = {"app_refused_verb": "update"}
    result = cloud.run(*POSTPROVISION, VOICEBRIDGE_AUTH="entra", VOICEBRIDGE_AUTH_CLIENT_ID="aaaa-1", **OUTPUT_ENV)
    assert result.returncode == 1
    assert "https://app-1-staging.azurewebsites.net/.auth/login/aad/callback" in result.stderr
    assert "Application Developer" in result.stderr


def test_option_1_with_auth_entra_records_it_registers_the_app_and_gates_on_healthz(cloud):
    cloud.scenario = {"env": ENV_VALUES}
    result = cloud.run("azdeploy.sh", "--full", "--env", "lab", "--yes", "--auth", "entra")
    assert result.returncode == 0, result.stderr
    commands = cloud.commands()
    assert commands.index("azd env set VOICEBRIDGE_AUTH entra") < commands.index("azd provision")
    # The hook ran before azd with the mode chosen here (azd would pass it from the environment).
    assert "az ad app create" in commands and commands.index("az ad app create") < commands.index("azd provision")
    # A script cannot sign in: the gate is /healthz (excluded from sign-in), no smoke session.
    assert "smoke" not in commands and "az webapp deployment slot swap" in commands
    assert "the smoke session cannot sign in" in result.stderr


def test_option_1_keeps_the_mode_the_environment_has(cloud):
    cloud.scenario = {"env": {**ENV_VALUES, "VOICEBRIDGE_AUTH": "entra", "VOICEBRIDGE_AUTH_CLIENT_ID": "aaaa-1"},
                      "apps": {"voicebridge-lab": "aaaa-1"}, "sp_exists": True}
    result = cloud.run("azdeploy.sh", "--full", "--env", "lab", "--yes")
    assert result.returncode == 0, result.stderr
    assert not any(c.startswith("azd env set VOICEBRIDGE_AUTH ") for c in cloud.commands())
    assert ["ad", "app", "show", "--id", "aaaa-1", "--query", "appId", "--output", "tsv"] in ad_calls(cloud)
    assert "smoke" not in cloud.commands()


def test_option_1_refuses_an_unknown_auth_mode_before_touching_anything(cloud):
    result = cloud.run("azdeploy.sh", "--full", "--env", "lab", "--yes", "--auth", "basic")
    assert result.returncode != 0 and "--auth is none or entra" in result.stderr
    assert cloud.calls() == []
