"""Every variable infra/main.parameters.json reads reaches every workflow that provisions (issue 9).

azd substitutes `${VAR}` from its environment; in a pipeline that environment is the job's `env:`, fed
from the repository variables `azd pipeline config` stores (azure.yaml `pipeline.variables`). A variable
left out is silently replaced by the template's default: a run would point production at the placeholder
image and undo the settings the user chose.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
BEFORE = ROOT / "tests" / "infra" / "fixtures" / "before-issue-9"
# azd fills this one in itself from the logged-in principal when it provisions.
FILLED_BY_AZD = {"AZURE_PRINCIPAL_ID"}
# `azd pipeline config` stores these itself, whatever azure.yaml lists.
STORED_BY_AZD = {"AZURE_ENV_NAME", "AZURE_LOCATION", "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_SUBSCRIPTION_ID"}


def parameter_variables() -> set[str]:
    text = (ROOT / "infra" / "main.parameters.json").read_text()
    json.loads(text)  # it must stay valid JSON
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:=[^}]*)?\}", text))


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def provisioning_jobs(workflow: dict) -> list[dict]:
    return [job for job in workflow["jobs"].values()
            if any(re.search(r"\bazd (provision|up)\b", step.get("run", "")) for step in job.get("steps", []))]


def missing_variables(workflow: dict) -> dict[str, list[str]]:
    """Per provisioning job: the parameter-file variables its azd steps do not receive."""
    needed = parameter_variables() - FILLED_BY_AZD
    found = {}
    for name, job in workflow["jobs"].items():
        if job not in provisioning_jobs(workflow):
            continue
        for step in job["steps"]:
            if re.search(r"\bazd (provision|up)\b", step.get("run", "")):
                given = set(workflow.get("env") or {}) | set(job.get("env") or {}) | set(step.get("env") or {})
                if needed - given:
                    found[name] = sorted(needed - given)
    return found


def provisioning_workflows() -> list[Path]:
    return [p for p in sorted(WORKFLOWS.glob("*.yml")) if provisioning_jobs(load(p))]


def test_the_parameters_file_reads_the_variables_users_choose():
    assert {"SERVICE_WEB_IMAGE_NAME", "VOICE_LIVE_MODEL", "APP_SERVICE_SKU", "AZURE_ENV_NAME"} <= parameter_variables()


def test_at_least_the_azd_workflow_provisions():
    assert [p.name for p in provisioning_workflows()] == ["azure-dev.yml"]


@pytest.mark.parametrize("path", provisioning_workflows(), ids=lambda p: p.name)
def test_every_parameter_variable_reaches_every_provisioning_job(path):
    assert missing_variables(load(path)) == {}


@pytest.mark.parametrize("path", provisioning_workflows(), ids=lambda p: p.name)
def test_each_variable_comes_from_the_repository_variable_of_the_same_name(path):
    for job in provisioning_jobs(load(path)):
        for name in parameter_variables() - FILLED_BY_AZD:
            value = job["env"][name]
            assert value in (f"${{{{ vars.{name} }}}}", "ServicePrincipal"), (name, value)
        assert job["env"]["AZURE_PRINCIPAL_TYPE"] == "ServicePrincipal", "the pipeline deploys as a service principal"


def test_azure_yaml_lists_every_mapped_variable_for_azd_pipeline_config():
    listed = set(load(ROOT / "azure.yaml")["pipeline"]["variables"])
    mapped = set()
    for path in provisioning_workflows():
        for job in provisioning_jobs(load(path)):
            mapped |= {name for name, value in job["env"].items() if value == f"${{{{ vars.{name} }}}}"}
    wanted = (mapped & parameter_variables()) - STORED_BY_AZD
    assert wanted - listed == set()
    assert listed - parameter_variables() == set(), "only variables the parameters file reads"


def test_the_workflow_before_issue_9_is_caught():
    missing = missing_variables(load(BEFORE / "azure-dev.yml"))
    assert "SERVICE_WEB_IMAGE_NAME" in missing["azd"] and "APP_SERVICE_SKU" in missing["azd"]
    assert "VOICE_LIVE_MODEL" in missing["azd"]


def test_the_hooks_that_read_the_live_site_can_use_the_azure_cli():
    workflow = load(WORKFLOWS / "azure-dev.yml")
    (job,) = provisioning_jobs(workflow)
    uses = [step.get("uses", "").split("@")[0].lower() for step in job["steps"]]
    runs = [step.get("run", "") for step in job["steps"]]
    login = uses.index("azure/login")
    provision = next(i for i, run in enumerate(runs) if run.startswith("azd provision"))
    assert login < provision
