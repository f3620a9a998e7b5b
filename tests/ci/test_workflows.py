"""The GitHub Actions workflows: linted the way GitHub would read them, then checked for the properties a
release depends on (tests gate deploys, OIDC only, the tested commit ships, one rollout implementation)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GITHUB = ROOT / ".github"
WORKFLOWS = GITHUB / "workflows"
BIN = Path(sys.executable).parent
# `on:` is a key, not a boolean; GitHub's files never start with `---`.
YAMLLINT_CONFIG = "{extends: default, rules: {truthy: {check-keys: false}, document-start: disable, line-length: {max: 120}}}"


def load(name: str) -> dict:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 (PyYAML) reads the bare key `on` as the boolean True.
    doc["on"] = doc.pop(True)
    return doc


def expression(text: str) -> str:
    return "${{ " + text + " }}"


def steps(doc: dict) -> list[dict]:
    return [step for job in doc["jobs"].values() for step in job.get("steps", [])]


def step_running(doc: dict, pattern: str) -> dict:
    found = [step for step in steps(doc) if re.search(pattern, step.get("run", ""))]
    assert len(found) == 1, f"expected one step running {pattern!r}, found {len(found)}"
    return found[0]


def step_using(doc: dict, action: str) -> dict:
    found = [step for step in steps(doc) if step.get("uses", "").split("@")[0].lower() == action.lower()]
    assert len(found) == 1, f"expected one step using {action}, found {len(found)}"
    return found[0]


def only_job(doc: dict) -> dict:
    (job,) = doc["jobs"].values()
    return job


def test_the_three_workflows_exist():
    assert {p.name for p in WORKFLOWS.glob("*.y*ml")} == {"ci.yml", "deploy.yml", "azure-dev.yml"}


def test_actionlint_with_shellcheck_passes():
    paths = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    result = subprocess.run(
        [BIN / "actionlint", "-no-color", "-shellcheck", BIN / "shellcheck", *paths],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_yamllint_passes_strict():
    paths = sorted(str(p) for p in GITHUB.rglob("*.yml"))
    result = subprocess.run(
        [sys.executable, "-m", "yamllint", "--strict", "-f", "parsable", "-d", YAMLLINT_CONFIG, *paths],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_make_test_from_a_clean_clone_on_every_push_and_pull_request():
    ci = load("ci.yml")
    assert {"push", "pull_request"} <= set(ci["on"])
    assert "branches" not in (ci["on"]["push"] or {}), "ci must run on every branch"
    # GitHub runs what CI runs here: .ci/run, which runs `make test` in a clone with nothing beside it and
    # then README's quick start.
    step_running(ci, r"(?m)^bash \.ci/run$")
    script = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"(?m)^\s*make -C \"\$clone\" --no-print-directory test$", script)
    assert re.search(r"(?m)^\s*fresh_clone \"\$repo\" \"\$clone\"$", script)
    assert "make --no-print-directory run PORT=" in script and '"/healthz"' in script


def test_ci_compiles_and_lints_the_bicep_with_the_azure_cli():
    ci = load("ci.yml")
    step_running(ci, r"\baz bicep build --file infra/main\.bicep\b")
    step_running(ci, r"\baz bicep lint --file infra/main\.bicep\b")


def test_ci_uploads_test_artifacts_when_it_fails():
    ci = load("ci.yml")
    upload = step_using(ci, "actions/upload-artifact")
    assert upload["if"] == "failure()"
    assert upload["with"]["path"].rstrip("/") == "test-artifacts"
    # The junit report has to land inside the uploaded folder.
    # (an absolute path: the suite runs in a clone under /tmp).
    assert "--junitxml=${{ github.workspace }}/test-artifacts/" in step_running(ci, r"\.ci/run")["env"]["PYTEST_ADDOPTS"]


@pytest.mark.parametrize("name", ["deploy.yml", "azure-dev.yml"])
def test_deploys_wait_for_ci_on_main_or_run_by_hand(name):
    doc = load(name)
    ci_name = load("ci.yml")["name"]
    trigger = doc["on"]["workflow_run"]
    assert trigger["workflows"] == [ci_name]
    assert trigger["types"] == ["completed"]
    assert trigger["branches"] == ["main"]
    assert "workflow_dispatch" in doc["on"]
    condition = only_job(doc)["if"]
    assert "github.event.workflow_run.conclusion == 'success'" in condition
    # Pull requests from forks also report a head_branch, which can be "main".
    assert "github.event.workflow_run.event == 'push'" in condition


@pytest.mark.parametrize("name", ["deploy.yml", "azure-dev.yml"])
def test_deploys_use_oidc_and_no_stored_secret(name):
    doc = load(name)
    assert doc["permissions"] == {"id-token": "write", "contents": "read"}
    assert "secrets." not in (WORKFLOWS / name).read_text()


@pytest.mark.parametrize("name", ["deploy.yml", "azure-dev.yml"])
def test_deploys_are_serialised_in_one_group_behind_the_production_environment(name):
    doc = load(name)
    assert doc["concurrency"] == {"group": "deploy-production", "cancel-in-progress": False}
    environment = only_job(doc)["environment"]
    assert (environment["name"] if isinstance(environment, dict) else environment) == "production"


def test_only_one_pipeline_deploys_on_push():
    flag = "vars.DEPLOY_WITH_AZD"
    assert f"{flag} != 'true'" in only_job(load("deploy.yml"))["if"]
    assert f"{flag} == 'true'" in only_job(load("azure-dev.yml"))["if"]


def test_deploy_logs_in_with_ids_from_repository_variables():
    login = step_using(load("deploy.yml"), "azure/login")
    assert login["with"] == {
        "client-id": expression("vars.AZURE_CLIENT_ID"),
        "tenant-id": expression("vars.AZURE_TENANT_ID"),
        "subscription-id": expression("vars.AZURE_SUBSCRIPTION_ID"),
    }


def test_deploy_ships_the_commit_ci_tested_tagged_by_its_sha():
    deploy = load("deploy.yml")
    checkout = step_using(deploy, "actions/checkout")
    assert "github.event.workflow_run.head_sha" in checkout["with"]["ref"]
    resolve = step_running(deploy, r"git rev-parse HEAD")
    rollout = step_running(deploy, r"scripts/rollout\.sh")
    assert '--tag "$SHA"' in rollout["run"]
    assert rollout["env"]["SHA"] == expression(f"steps.{resolve['id']}.outputs.sha")


def test_deploy_delegates_every_rollout_step_to_the_script():
    deploy = load("deploy.yml")
    rollout = step_running(deploy, r"scripts/rollout\.sh")
    for flag, variable in [
        ("--resource-group", "AZURE_RESOURCE_GROUP"),
        ("--app", "AZURE_WEBAPP_NAME"),
        ("--registry", "AZURE_CONTAINER_REGISTRY_NAME"),
    ]:
        assert f'{flag} "${variable}"' in rollout["run"]
        assert only_job(deploy)["env"][variable] == expression(f"vars.{variable}")
    # Build, slot update, swap and rollback exist once, in scripts/rollout.sh.
    text = (WORKFLOWS / "deploy.yml").read_text()
    for duplicate in ("az acr build", "az webapp config container", "slot swap"):
        assert duplicate not in text


def test_rollout_script_accepts_the_deploy_step_as_written(tmp_path):
    # Azure is unreachable here: the script's own --dry-run prints each az command instead of running it.
    step = step_running(load("deploy.yml"), r"scripts/rollout\.sh")
    sha = "0123456789abcdef0123456789abcdef01234567"
    outputs = tmp_path / "github_output"
    env = {name: value for name, value in os.environ.items() if not name.startswith("GITHUB_")}
    env.update(
        AZURE_RESOURCE_GROUP="rg-test", AZURE_WEBAPP_NAME="app-test", AZURE_CONTAINER_REGISTRY_NAME="crtest",
        SHA=sha, GITHUB_OUTPUT=str(outputs),
    )
    result = subprocess.run(
        ["bash", "-c", step["run"] + " --dry-run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"docker build --build-arg VOICEBRIDGE_IMAGE_TAG={sha} --tag" in result.stderr
    assert "az acr login --name crtest" in result.stderr and "docker push" in result.stderr
    assert "az rest --method patch" in result.stderr and "/slots/staging/config/web" in result.stderr
    assert "az webapp deployment slot swap --resource-group rg-test --name app-test" in result.stderr
    assert re.search(r"(?m)^url=https://\S+$", outputs.read_text()), outputs.read_text()


def test_azure_dev_logs_in_federated_and_names_the_slot():
    azd = load("azure-dev.yml")
    job = only_job(azd)
    assert job["env"]["AZD_DEPLOY_WEB_SLOT_NAME"]
    step_running(azd, r"azd auth login .*--federated-credential-provider github")
    step_running(azd, r"^azd provision --no-prompt$")
    step_running(azd, r"^azd deploy web --no-prompt$")
    step_using(azd, "Azure/setup-azd")


def test_azure_dev_smoke_checks_what_it_deployed():
    azd = load("azure-dev.yml")
    names = [step.get("run", "") for step in steps(azd)]
    deploy = next(i for i, run in enumerate(names) if run.startswith("azd deploy"))
    check = step_running(azd, r"python -m voicebridge smoke \"\$url\"")
    assert steps(azd).index(check) > deploy
    assert "SERVICE_WEB_URI" in check["run"] and "SERVICE_WEB_STAGING_URI" in check["run"]
