"""The deploy scripts against the real azure-cli and a fake Azure on 127.0.0.1 (tests/infra/fakeazure.py).

The CLI's own argument parsing, `--query`, `--output tsv`, `--subscription` handling, retries and exit codes
run for real; the fake only answers HTTP as ARM, Graph and the sites do, keeps their state and records every
request. azd, docker, `az acr build`/`az acr login` and the smoke session are recording stand-ins
(standins.py says why each cannot run here)."""

from __future__ import annotations

from fakeazure import OTHER_SUBSCRIPTION, SUBSCRIPTION

REGISTRY = "crlab0001"
LIVE = f"{REGISTRY}.azurecr.io/voicebridge:live"
PREVIOUS = f"{REGISTRY}.azurecr.io/voicebridge:prev"


def lab_env(real, site, **extra) -> dict:
    """The azd environment `lab` as a provision leaves it (its outputs), plus `extra`."""
    return {"AZURE_ENV_NAME": "lab", "AZURE_LOCATION": "swedencentral", "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
            "AZURE_RESOURCE_GROUP": "rg-lab", "SERVICE_WEB_NAME": site.name,
            "AZURE_CONTAINER_REGISTRY_NAME": REGISTRY, "SERVICE_WEB_URI": real.azure.site_url(site),
            "SERVICE_WEB_STAGING_URI": real.azure.site_url(site, "staging"), **extra}


def lab(real, **site_args):
    site = real.azure.add_site("rg-lab", "app-1", **site_args)
    real.azure.add_registry("rg-lab", REGISTRY)
    real.envs["lab"] = lab_env(real, site)
    return site


def index(requests, predicate) -> int:
    return next((i for i, r in enumerate(requests) if predicate(r)), -1)


def is_swap(r) -> bool:
    return r.method == "POST" and r.path.lower().endswith("/slots/staging/slotsswap")


def writes_production(r) -> bool:
    """A request that changes the production site (reading publishing profiles is part of `az webapp show`)."""
    path = r.path.lower()
    return (r.api == "arm" and "/providers/microsoft.web/sites/app-1" in path and "/slots/" not in path
            and r.method in ("PUT", "PATCH", "POST", "DELETE") and not path.endswith("/publishxml"))


def test_option_2_stages_gates_and_swaps_with_the_real_cli(real):
    site = lab(real, production=LIVE, staging=PREVIOUS)
    result = real.run("azdeploy.sh", "--image-only", "--env", "lab")
    assert result.returncode == 0, result.stderr
    released = real.env_values("lab")["SERVICE_WEB_IMAGE_NAME"]
    assert released.startswith(f"{REGISTRY}.azurecr.io/voicebridge:") and released != LIVE
    tag = released.rsplit(":", 1)[1]
    requests = real.azure.requests
    patch = index(requests, lambda r: r.method == "PATCH" and r.path.lower().endswith("/slots/staging/config/web"))
    gate = index(requests, lambda r: r.path == "/sites/app-1-staging/healthz")
    swap = index(requests, is_swap)
    verify = index(requests, lambda r: r.path == "/sites/app-1/healthz")
    assert 0 <= patch < gate < swap < verify
    assert requests[patch].body == {"properties": {"linuxFxVersion": f"DOCKER|{released}"}}
    assert requests[swap].body["targetSlot"] == "production"
    # Production is not written before the swap; afterwards it runs the new image, staging the old one.
    assert [r.path for r in requests[:swap] if writes_production(r)] == []
    assert site.images == {"production": released, "staging": LIVE}
    assert ["acr", "build", "--registry", REGISTRY, "--subscription", SUBSCRIPTION, "--image", f"voicebridge:{tag}",
            "--build-arg", f"VOICEBRIDGE_IMAGE_TAG={tag}", "."] in [c["argv"] for c in real.calls() if c["prog"] == "az"]
    assert "released" in result.stdout and real.azure.site_url(site) in result.stdout


def test_a_failing_gate_does_not_swap_and_leaves_production_alone(real):
    site = lab(real, production=LIVE, staging=PREVIOUS)
    site.health["staging"] = [503]
    result = real.run("azdeploy.sh", "--image-only", "--env", "lab")
    assert result.returncode != 0
    assert index(real.azure.requests, is_swap) == -1
    assert [r.path for r in real.azure.requests if writes_production(r)] == []
    assert site.images["production"] == LIVE
    assert "SERVICE_WEB_IMAGE_NAME" not in real.env_values("lab")
    assert "not swapped, production untouched" in result.stdout


def test_option_1_rolls_out_after_provisioning(real):
    # A first provision leaves both slots on the placeholder image; option 1 then releases the build.
    site = real.azure.add_site("rg-lab", "app-1")
    real.azure.add_registry("rg-lab", REGISTRY)
    real.envs["lab"] = lab_env(real, site)
    result = real.run("azdeploy.sh", "--full", "--env", "lab", "--yes")
    assert result.returncode == 0, result.stderr
    commands = real.commands()
    assert commands.index("azd provision") < commands.index("az acr build")
    released = real.env_values("lab")["SERVICE_WEB_IMAGE_NAME"]
    assert site.images["production"] == released and released.startswith(f"{REGISTRY}.azurecr.io/voicebridge:")


# --- the preprovision hook ----------------------------------------------------------------------------

HOOK = "scripts/azd-hooks/preprovision.sh"
POSTPROVISION = "scripts/azd-hooks/postprovision.sh"


def hook_env(real, site=None, **extra) -> dict:
    """What azd hands a hook: the environment's values (seeded into the azd stand-in too, for `env set`)."""
    values = lab_env(real, site) if site else {"AZURE_ENV_NAME": "lab", "AZURE_LOCATION": "swedencentral",
                                               "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION}
    values.update(extra)
    real.envs["lab"] = dict(values)
    return values


def arm_subscriptions(real) -> set[str]:
    return {r.path.split("/")[2].lower() for r in real.azure.arm() if r.path.lower().startswith("/subscriptions/")}


def test_preprovision_works_in_the_environments_subscription_not_azs_current_one(real):
    site = lab(real, production=LIVE, staging=PREVIOUS, instances=2)
    assert real.az("account", "set", "--subscription", OTHER_SUBSCRIPTION).returncode == 0
    result = real.run(HOOK, **hook_env(real, site))
    assert result.returncode == 0, result.stderr
    assert arm_subscriptions(real) == {SUBSCRIPTION}
    values = real.env_values("lab")
    # The group exists in the environment's subscription, so what runs there is carried over.
    assert (values["SERVICE_WEB_IMAGE_NAME"], values["SERVICE_WEB_STAGING_IMAGE_NAME"],
            values["APP_SERVICE_INSTANCE_COUNT"]) == (LIVE, PREVIOUS, "2")


def test_preprovision_registers_providers_in_the_environments_subscription(real):
    real.azure.providers[(SUBSCRIPTION, "Microsoft.CognitiveServices")] = "NotRegistered"
    assert real.az("account", "set", "--subscription", OTHER_SUBSCRIPTION).returncode == 0
    result = real.run(HOOK, **hook_env(real))
    assert result.returncode == 0, result.stderr
    registers = [r.path for r in real.azure.arm() if r.method == "POST" and r.path.endswith("/register")]
    assert registers == [f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.CognitiveServices/register"]
    assert real.azure.providers[(SUBSCRIPTION, "Microsoft.CognitiveServices")] == "Registered"


def test_re_provision_carries_the_live_images_over(real):
    site = lab(real, production=LIVE, staging=PREVIOUS, instances=3)
    real.envs["lab"] = {**lab_env(real, site), "SERVICE_WEB_IMAGE_NAME": "stale"}
    result = real.run("azdeploy.sh", "--full", "--env", "lab", "--yes")
    assert result.returncode == 0, result.stderr
    (values,) = real.provisioned()
    assert (values["SERVICE_WEB_IMAGE_NAME"], values["SERVICE_WEB_STAGING_IMAGE_NAME"],
            values["APP_SERVICE_INSTANCE_COUNT"]) == (LIVE, PREVIOUS, "3")
    assert "azd provision" in real.commands()


def test_a_throttled_read_stops_the_hook_instead_of_resetting_production(real):
    site = lab(real, production=LIVE, staging=PREVIOUS)
    real.envs["lab"] = {**lab_env(real, site), "SERVICE_WEB_IMAGE_NAME": LIVE}
    # More 429s than the CLI's own retries: az exits non-zero.
    real.azure.fail("GET", r"/sites/app-1/config/web$", 429, times=50)
    result = real.run("azdeploy.sh", "--full", "--env", "lab", "--yes")
    assert result.returncode != 0
    assert "could not read production's image" in result.stderr
    assert "azd provision" not in real.commands()
    assert real.env_values("lab")["SERVICE_WEB_IMAGE_NAME"] == LIVE


def test_a_failing_group_check_stops_the_hook(real):
    site = lab(real, production=LIVE, staging=PREVIOUS)
    real.azure.fail("HEAD", r"/resourcegroups/rg-lab$", 401, "ExpiredAuthenticationToken",
                    "The access token expiry UTC time is earlier than current UTC time.")
    result = real.run(HOOK, **hook_env(real, site, SERVICE_WEB_IMAGE_NAME=LIVE))
    assert result.returncode != 0
    assert "could not read whether resource group rg-lab exists" in result.stderr
    assert real.env_values("lab")["SERVICE_WEB_IMAGE_NAME"] == LIVE


def test_a_first_provision_starts_on_the_placeholder(real):
    result = real.run(HOOK, **hook_env(real))
    assert result.returncode == 0, result.stderr
    values = real.env_values("lab")
    assert (values["SERVICE_WEB_IMAGE_NAME"], values["SERVICE_WEB_STAGING_IMAGE_NAME"]) == ("", "")
    assert values["AZD_DEPLOY_WEB_SLOT_NAME"] == "production"


# --- sign-in: the app registration -----------------------------------------------------------------------

def graph_writes(real) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in real.azure.graph() if r.method in ("POST", "PATCH", "DELETE")]


def test_provisioning_lab_neither_reuses_nor_modifies_voicebridge_lab2(real):
    colleague = "c0000000-0000-0000-0000-00000000000c"
    lab2 = real.azure.add_application("voicebridge-lab2", owners=(colleague,),
                                      redirect_uris=["https://lab2.example/.auth/login/aad/callback"])
    site = lab(real)
    result = real.run(HOOK, **hook_env(real, site, VOICEBRIDGE_AUTH="entra"))
    assert result.returncode == 0, result.stderr
    client_id = real.env_values("lab")["VOICEBRIDGE_AUTH_CLIENT_ID"]
    assert client_id != lab2["appId"]
    created = next(a for a in real.azure.applications if a["appId"] == client_id)
    assert created["displayName"] == "voicebridge-lab"
    result = real.run(POSTPROVISION, **{**real.env_values("lab")})
    assert result.returncode == 0, result.stderr
    assert not any(lab2["id"] in path for _, path in graph_writes(real))
    assert lab2["web"]["redirectUris"] == ["https://lab2.example/.auth/login/aad/callback"]
    assert sorted(created["web"]["redirectUris"]) == sorted(
        f"{real.azure.site_url(site, slot)}/.auth/login/aad/callback" for slot in ("production", "staging"))


def test_the_service_principal_is_created_despite_graph_replication_lag(real):
    site = lab(real)
    real.azure.sp_lag["*"] = 2  # the next two service-principal creations meet replication lag
    result = real.run(HOOK, **hook_env(real, site, VOICEBRIDGE_AUTH="entra"))
    assert result.returncode == 0, result.stderr
    client_id = real.env_values("lab")["VOICEBRIDGE_AUTH_CLIENT_ID"]
    assert [sp["appId"] for sp in real.azure.service_principals] == [client_id]
    assert "Microsoft Graph replication" in result.stderr


def person_made_registration(real, site):
    """A registration a person created, already redirecting to both slots, and its service principal."""
    callbacks = [f"{real.azure.site_url(site, slot)}/.auth/login/aad/callback" for slot in ("production", "staging")]
    app = real.azure.add_application("voicebridge-lab", owners=("a person",),
                                     redirect_uris=["https://voice.contoso.example/.auth/login/aad/callback", *callbacks])
    real.azure.service_principals.append({"id": "sp-1", "appId": app["appId"], "servicePrincipalNames": [app["appId"]]})
    return app


def sign_in_as_pipeline(real) -> None:
    from fakeazure import PIPELINE
    from realcloud import sign_in

    real.config = real.root / "pipeline config"
    sign_in(real.config, real.azure, PIPELINE)


def test_the_pipeline_principal_provisions_with_a_registration_it_does_not_own(real):
    site = lab(real, production=LIVE, staging=PREVIOUS)
    app = person_made_registration(real, site)
    sign_in_as_pipeline(real)
    values = hook_env(real, site, VOICEBRIDGE_AUTH="entra", VOICEBRIDGE_AUTH_CLIENT_ID=app["appId"])
    assert real.run(HOOK, **values).returncode == 0
    result = real.run(POSTPROVISION, **values)
    assert result.returncode == 0, result.stderr
    assert graph_writes(real) == []
    assert "already redirects" in result.stderr


def test_postprovision_keeps_redirect_uris_an_administrator_added(real):
    site = lab(real)
    app = real.azure.add_application("voicebridge-lab", redirect_uris=["https://voice.contoso.example/.auth/login/aad/callback"])
    values = hook_env(real, site, VOICEBRIDGE_AUTH="entra", VOICEBRIDGE_AUTH_CLIENT_ID=app["appId"])
    result = real.run(POSTPROVISION, **values)
    assert result.returncode == 0, result.stderr
    assert app["web"]["redirectUris"][0] == "https://voice.contoso.example/.auth/login/aad/callback"
    assert len(app["web"]["redirectUris"]) == 3 and app["web"]["implicitGrantSettings"]["enableIdTokenIssuance"]


def test_a_pipeline_that_may_not_add_a_missing_callback_says_which_to_add(real):
    site = lab(real)
    app = real.azure.add_application("voicebridge-lab", owners=("a person",))
    sign_in_as_pipeline(real)
    values = hook_env(real, site, VOICEBRIDGE_AUTH="entra", VOICEBRIDGE_AUTH_CLIENT_ID=app["appId"])
    result = real.run(POSTPROVISION, **values)
    assert result.returncode == 1
    assert f"{real.azure.site_url(site, 'staging')}/.auth/login/aad/callback" in result.stderr
    assert "Insufficient privileges" in result.stderr and "Application Developer" in result.stderr


# --- .github/workflows/deploy.yml -----------------------------------------------------------------------

def workflow_env(values: dict, outputs: dict, variables: dict) -> dict:
    """A step's `env:` with the two kinds of expression deploy.yml uses filled in as GitHub would."""
    import re

    def fill(value):
        value = str(value)
        value = re.sub(r"\$\{\{\s*vars\.(\w+)\s*\}\}", lambda m: variables.get(m[1], ""), value)
        value = re.sub(r"\$\{\{\s*steps\.(\w+)\.outputs\.(\w+)\s*\}\}", lambda m: outputs.get(m[2], ""), value)
        # Any other expression: evaluated as GitHub would for the one form deploy.yml used before issue 20
        # (`vars.X == 'v' && 'a' || ''`), else the test must learn it.
        value = re.sub(r"\$\{\{\s*vars\.(\w+) == '([^']*)' && '([^']*)' \|\| '([^']*)'\s*\}\}",
                       lambda m: m[3] if variables.get(m[1], "") == m[2] else m[4], value)
        assert "${{" not in value, f"an expression this test does not evaluate: {value}"
        return value

    return {k: fill(v) for k, v in (values or {}).items()}


def test_deploy_workflow_releases_with_sign_in_on_without_any_variable_saying_so(real):
    """deploy.yml's own steps, run as the runner would. `azure/login` cannot run here: the test's az is
    already signed in to the fake Azure, which is what that action leaves behind. Option B's setup sets no
    VOICEBRIDGE_AUTH variable, so none is given."""
    import yaml
    from infra_helpers import REPO

    site = lab(real, production=LIVE, staging=PREVIOUS, easy_auth=True)
    job = yaml.safe_load((REPO / ".github/workflows/deploy.yml").read_text())["jobs"]["rollout"]
    variables = {"AZURE_RESOURCE_GROUP": "rg-lab", "AZURE_WEBAPP_NAME": "app-1",
                 "AZURE_CONTAINER_REGISTRY_NAME": REGISTRY}
    github_output = real.root / "github-output"
    outputs: dict[str, str] = {}
    ran = []
    for step in job["steps"]:
        if "run" not in step or step["run"].startswith("python -m pip install"):
            continue  # actions, and installing voicebridge for the smoke session (a stand-in here)
        github_output.write_text("")
        env = {**workflow_env(job.get("env"), outputs, variables), **workflow_env(step.get("env"), outputs, variables)}
        script = real.root / f"step-{len(ran)}.sh"
        script.write_text("set -eo pipefail\n" + step["run"] + "\n")
        result = real.run(str(script), GITHUB_OUTPUT=str(github_output), **env)
        assert result.returncode == 0, f"{step.get('name')}: {result.stderr}"
        outputs.update(line.split("=", 1) for line in github_output.read_text().splitlines() if "=" in line)
        ran.append(step.get("name"))
    assert len(ran) == 2, ran
    sha = outputs["sha"]
    assert site.images["production"] == f"{REGISTRY}.azurecr.io/voicebridge:{sha}"
    assert outputs["result"] == "released" and outputs["url"] == real.azure.site_url(site)
    assert "smoke" not in real.commands()
    assert index(real.azure.requests, lambda r: r.path == "/sites/app-1-staging/healthz") < index(real.azure.requests, is_swap)


def test_option_2_releases_in_the_environments_subscription_not_azs_current_one(real):
    site = lab(real, production=LIVE, staging=PREVIOUS)
    assert real.az("account", "set", "--subscription", OTHER_SUBSCRIPTION).returncode == 0
    result = real.run("azdeploy.sh", "--image-only", "--env", "lab")
    assert result.returncode == 0, result.stderr
    assert arm_subscriptions(real) == {SUBSCRIPTION}
    assert site.images["production"] == real.env_values("lab")["SERVICE_WEB_IMAGE_NAME"]
    build = next(c["argv"] for c in real.calls() if c["argv"][:2] == ["acr", "build"])
    assert build[build.index("--subscription") + 1] == SUBSCRIPTION
