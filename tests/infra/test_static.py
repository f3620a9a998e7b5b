"""Offline checks of the deployment files: checkov, hadolint, shellcheck, yamllint, azd's schema, the image
recipe and the pinned lock. Nothing here can reach Azure, so these are what proves the files right."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml
from infra_helpers import INFRA, REPO, tool
from packaging.requirements import Requirement
from refresh_data import missing_data_message

SCHEMA = Path(__file__).resolve().parent / "data" / "azd" / "azure.yaml.json"


def run(*argv: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_checkov_parses_every_bicep_file_and_leaves_no_failure_unexplained():
    result = run(tool("checkov"), "-d", "infra", "--framework", "bicep", "--skip-download", "-o", "json")
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    summary = report["summary"]
    # A file pycep cannot parse is silently skipped (exit 0, zero checks): that must never pass.
    assert summary["parsing_errors"] == 0, summary
    assert summary["failed"] == 0, [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert summary["passed"] > 0
    skipped = report["results"]["skipped_checks"]
    reasons = {(c["check_id"], c["resource"]): c["check_result"].get("suppress_comment", "").strip() for c in skipped}
    assert all(len(reason) > 20 for reason in reasons.values()), reasons
    # Every inline skip is one checkov used: none is left over from a check that now passes.
    inline = sum(p.read_text().count("checkov:skip=") for p in INFRA.rglob("*.bicep"))
    assert len(skipped) == inline


def test_hadolint_passes_the_dockerfile():
    result = run(tool("hadolint"), "--failure-threshold", "warning", "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def shell_scripts() -> list[Path]:
    ignored = {".venv", "node_modules", ".git"}
    return sorted(p for p in REPO.rglob("*.sh") if not ignored & set(p.relative_to(REPO).parts))


def test_shellcheck_passes_every_script():
    scripts = shell_scripts()
    assert REPO / "azdeploy.sh" in scripts and REPO / "scripts" / "rollout.sh" in scripts
    result = run(tool("shellcheck"), *scripts)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("script", ["azdeploy.sh", "scripts/rollout.sh", "scripts/azd-hooks/preprovision.sh",
                                    "scripts/azd-hooks/predeploy.sh", "scripts/install-system-deps.sh",
                                    "scripts/test-python.sh"])
def test_deployment_scripts_are_strict(script):
    assert "set -euo pipefail" in (REPO / script).read_text()


def test_yamllint_passes_azure_yaml():
    result = run(tool("yamllint"), "-s", "-d", "{extends: default, rules: {line-length: {max: 140}}}", "azure.yaml")
    assert result.returncode == 0, result.stdout


def test_azure_yaml_matches_azds_schema_and_deploys_one_container_service():
    assert SCHEMA.exists(), missing_data_message(str(SCHEMA.relative_to(REPO)))
    document = yaml.safe_load((REPO / "azure.yaml").read_text())
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    assert list(document["services"]) == ["web"]
    web = document["services"]["web"]
    assert (web["host"], web["language"], web["docker"]["remoteBuild"]) == ("appservice", "docker", True)
    assert (REPO / web["docker"]["path"]).exists()
    assert document["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    assert (REPO / document["hooks"]["preprovision"]["run"]).exists()


def test_dockerfile_runs_the_bridge_as_a_non_root_user_with_a_healthcheck():
    text = (REPO / "Dockerfile").read_text()
    instructions = [line.split(None, 1) for line in text.replace("\\\n", " ").splitlines()
                    if line.strip() and not line.startswith("#")]
    args = {op: rest for op, rest in instructions}
    assert re.fullmatch(r"python:3\.\d+-slim\S*", args["FROM"])
    # Dependencies from the lock are installed before the source is copied, so code changes reuse that layer.
    lock = instructions.index(["RUN", "pip install --no-cache-dir -r requirements.txt"])
    source = instructions.index(["COPY", "src ./src"])
    assert ["COPY", "requirements.txt ./"] in instructions[:lock] and lock < source
    assert re.fullmatch(r"\d+:\d+", args["USER"]) and not args["USER"].startswith("0")
    assert "VOICEBRIDGE_HOST=0.0.0.0" in text and "PORT=8000" in text
    assert json.loads(args["CMD"]) == ["python", "-m", "voicebridge", "serve"]
    healthcheck = args["HEALTHCHECK"]
    exec_form = json.loads(healthcheck[healthcheck.index("CMD") + 3:])
    assert isinstance(exec_form, list) and "/healthz" in " ".join(exec_form)


def test_dockerignore_keeps_tests_and_the_venv_out():
    rules = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert rules[0] == "**", "everything is excluded first, then the build inputs are let back in"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "requirements.txt", "src"}


def test_requirements_lock_pins_every_runtime_dependency_within_pyproject_ranges():
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not pinned: {line}"
            pins[name.lower().replace("_", "-")] = version
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    for dependency in map(Requirement, declared):
        name = dependency.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not in requirements.txt"
        assert dependency.specifier.contains(pins[name]), f"{name}=={pins[name]} is outside {dependency.specifier}"


def test_the_image_knows_its_own_tag():
    # scripts/rollout.sh builds with --build-arg VOICEBRIDGE_IMAGE_TAG=<tag>; /healthz reports it.
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"(?m)^ARG VOICEBRIDGE_IMAGE_TAG", text)
    assert "VOICEBRIDGE_IMAGE_TAG=${VOICEBRIDGE_IMAGE_TAG}" in text
    assert text.index("ARG VOICEBRIDGE_IMAGE_TAG") > text.index("COPY src ./src"), "a new tag must reuse every layer"


def test_azure_yaml_requires_an_azd_that_deploys_containers_to_app_service_safely():
    # 1.27 brought container deploys to App Service; 1.29 stopped a deploy overwriting unrelated site configuration.
    required = yaml.safe_load((REPO / "azure.yaml").read_text())["requiredVersions"]["azd"]
    match = re.fullmatch(r">=\s*(\d+)\.(\d+)\.(\d+)", required.strip())
    assert match, required
    assert tuple(map(int, match.groups())) >= (1, 29, 0)


@pytest.mark.parametrize("hook", ["preprovision", "postprovision", "predeploy"])
def test_azd_hooks_are_executable_bash_scripts(hook):
    # azd runs a `shell: sh` hook by its path on Linux and macOS: the shebang and the executable bit decide.
    document = yaml.safe_load((REPO / "azure.yaml").read_text())
    script = REPO / document["hooks"][hook]["run"]
    assert script.read_text().startswith("#!/usr/bin/env bash\n")
    assert script.stat().st_mode & 0o111
    assert document["hooks"][hook]["continueOnError"] is False
