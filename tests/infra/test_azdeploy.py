"""azdeploy.sh driven end to end with stand-in az, azd, curl and smoke executables first on PATH.

Azure is unreachable from here and neither CLI can be installed offline, so the stand-ins
(tests/infra/fakecli.py) are the one place a stand-in is right: they record every argv and answer like the
real CLIs. azdeploy.sh, the preprovision hook and scripts/rollout.sh run for real under bash.
"""

from __future__ import annotations

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
ROLLOUT = ["az acr show", "az webapp show", "az webapp show", "az acr build", "az webapp config set",
           "az webapp restart", "curl", "smoke", "az webapp deployment slot swap", "curl", "smoke"]
RECORD_AND_REPORT = ["azd env set SERVICE_WEB_IMAGE_NAME", "azd env get-value SERVICE_WEB_URI"]
LOGIN_CHECKS = ["az account show", "azd auth login"]


def strip_image(commands: list[str]) -> list[str]:
    # The recorded image carries a commit + timestamp tag; the sequence, not the tag, is under test here.
    return [c.rsplit(" ", 1)[0] if c.startswith("azd env set SERVICE_WEB_IMAGE_NAME ") else c for c in commands]


def test_option_1_full_deploy_on_a_new_environment(cloud):
    cloud.scenario = {"env_exists": False, "env": ENV_VALUES}
    result = cloud.run("azdeploy.sh", "--full", "--env", "lab", "--location", "swedencentral", "--yes")
    assert result.returncode == 0, result.stderr
    assert strip_image(cloud.commands()) == [
        *LOGIN_CHECKS,
        *["az provider show"] * PROVIDERS,
        "azd env get-values",
        "az account show",  # subscription id for the new environment
        "azd env new lab",
        # preprovision hook: region offers the model, then the slot azd deploys to
        "az account show",
        "az cognitiveservices model list",
        "azd env get-value AZD_DEPLOY_WEB_SLOT_NAME",
        "azd env set AZD_DEPLOY_WEB_SLOT_NAME production",
        "azd provision",
        *OUTPUTS,
        *ROLLOUT,
        *RECORD_AND_REPORT,
    ]
    new_env = next(c["argv"] for c in cloud.calls() if c["argv"][:2] == ["env", "new"])
    assert new_env == ["env", "new", "lab", "--location", "swedencentral", "--subscription",
                       "00000000-0000-0000-0000-000000000001"]
    image = next(c["argv"][3] for c in cloud.calls() if c["argv"][:3] == ["env", "set", "SERVICE_WEB_IMAGE_NAME"])
    assert image.startswith("cr1.azurecr.io/voicebridge:")
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


def test_option_2_image_only_update(cloud):
    cloud.scenario = {"env": ENV_VALUES}
    result = cloud.run("azdeploy.sh", "--image-only", "--env", "lab")
    assert result.returncode == 0, result.stderr
    assert strip_image(cloud.commands()) == [*LOGIN_CHECKS, "azd env get-values", *OUTPUTS, *ROLLOUT,
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
                    "az webapp deployment slot swap"):
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
