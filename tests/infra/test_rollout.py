"""scripts/rollout.sh driven end to end with stand-in az, curl and smoke executables first on PATH.

Azure is unreachable from here, so the stand-ins (tests/infra/fakecli.py) are the one place a stand-in is
right: they record every argv and answer like the real CLIs; the script itself runs for real under bash.
"""

from __future__ import annotations

import pytest

ROLLOUT = ("scripts/rollout.sh", "--resource-group", "rg-lab", "--app", "app-1", "--registry", "cr1", "--tag", "t1")
STAGING = "app-1-staging.azurewebsites.net"
PROD = "app-1.azurewebsites.net"
IMAGE = "cr1.azurecr.io/voicebridge:t1"

RELEASE = [
    "az acr show",
    "az webapp show",
    "az webapp show",
    "az acr build",
    "az webapp config set",
    "az webapp restart",
    "curl",
    "smoke",
    "az webapp deployment slot swap",
    "curl",
    "smoke",
]


def swaps(cloud) -> list[list[str]]:
    return [c["argv"] for c in cloud.calls() if c["argv"][:4] == ["webapp", "deployment", "slot", "swap"]]


def test_success_builds_stages_gates_swaps_and_verifies(cloud):
    result = cloud.run(*ROLLOUT)
    assert result.returncode == 0, result.stderr
    assert cloud.commands() == RELEASE
    calls = cloud.calls()
    assert calls[3]["argv"] == ["acr", "build", "--registry", "cr1", "--image", "voicebridge:t1", "."]
    assert calls[4]["argv"][-4:] == ["--linux-fx-version", f"DOCKER|{IMAGE}", "--output", "none"]
    assert "--slot" in calls[4]["argv"] and "staging" in calls[4]["argv"]
    # Staging is gated before the swap, production after it.
    assert calls[6]["argv"][-1] == f"https://{STAGING}/healthz" and calls[7]["argv"] == [f"https://{STAGING}"]
    assert calls[9]["argv"][-1] == f"https://{PROD}/healthz" and calls[10]["argv"] == [f"https://{PROD}"]
    assert swaps(cloud) == [["webapp", "deployment", "slot", "swap", "--resource-group", "rg-lab", "--name", "app-1",
                             "--slot", "staging", "--target-slot", "production"]]
    assert "released" in result.stdout and f"https://{PROD}" in result.stdout and IMAGE in result.stdout
    summary = cloud.summary.read_text()
    assert "released" in summary and IMAGE in summary and f"https://{PROD}" in summary


def test_gate_polls_healthz_until_it_answers_200(cloud):
    cloud.scenario = {"health": {STAGING: ["000", 503, 200]}}
    result = cloud.run(*ROLLOUT, VOICEBRIDGE_GATE_TIMEOUT="60")
    assert result.returncode == 0, result.stderr
    staging_polls = [c for c in cloud.calls() if c["prog"] == "curl" and STAGING in c["argv"][-1]]
    assert len(staging_polls) == 3


@pytest.mark.parametrize(
    "scenario",
    [{"health": {STAGING: 503}}, {"smoke": {STAGING: 1}}],
    ids=["healthz-never-200", "smoke-session-fails"],
)
def test_failed_staging_gate_exits_nonzero_without_swapping(cloud, scenario):
    cloud.scenario = scenario
    result = cloud.run(*ROLLOUT)
    assert result.returncode == 1
    assert swaps(cloud) == []
    assert not any(PROD in arg for c in cloud.calls() if c["prog"] in ("curl", "smoke") for arg in c["argv"])
    assert "not swapped" in result.stdout and "not swapped" in cloud.summary.read_text()


@pytest.mark.parametrize(
    "scenario",
    [{"health": {PROD: 502}}, {"smoke": {PROD: 3}}],
    ids=["healthz-never-200", "smoke-session-fails"],
)
def test_failed_production_verification_swaps_back_and_exits_nonzero(cloud, scenario):
    cloud.scenario = scenario
    result = cloud.run(*ROLLOUT)
    assert result.returncode == 1
    swap = ["webapp", "deployment", "slot", "swap", "--resource-group", "rg-lab", "--name", "app-1",
            "--slot", "staging", "--target-slot", "production"]
    assert swaps(cloud) == [swap, swap]
    assert cloud.commands()[-1] == "az webapp deployment slot swap"
    assert "swapped back" in result.stdout


def test_dry_run_prints_every_command_and_runs_none(cloud):
    result = cloud.run(*ROLLOUT, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert cloud.calls() == []
    for command in ("az acr build --registry cr1 --image voicebridge:t1 .", "az webapp restart",
                    "az webapp deployment slot swap", "/healthz"):
        assert command in result.stderr


def test_skip_build_rolls_out_an_existing_image(cloud):
    result = cloud.run(*ROLLOUT, "--skip-build")
    assert result.returncode == 0, result.stderr
    assert "az acr build" not in cloud.commands()
    assert "az webapp deployment slot swap" in cloud.commands()


def test_values_with_spaces_and_quotes_reach_the_cli_unchanged(cloud):
    group = """rg with 'single' and "double" quotes"""
    image = "voice bridge's \"image\""
    result = cloud.run("scripts/rollout.sh", "--resource-group", group, "--app", "app-1", "--registry", "cr1",
                       "--image", image, "--tag", "t 1")
    assert result.returncode == 0, result.stderr
    calls = cloud.calls()
    assert calls[3]["argv"][:6] == ["acr", "build", "--registry", "cr1", "--image", f"{image}:t 1"]
    az_calls = [c["argv"] for c in calls if c["prog"] == "az" and c["argv"][0] == "webapp"]
    assert az_calls and all(argv[argv.index("--resource-group") + 1] == group for argv in az_calls)
    assert f"DOCKER|cr1.azurecr.io/{image}:t 1" in calls[4]["argv"]


def test_missing_required_option_is_a_usage_error(cloud):
    result = cloud.run("scripts/rollout.sh", "--app", "app-1", "--registry", "cr1")
    assert result.returncode == 2
    assert "--resource-group" in result.stderr
    assert cloud.calls() == []
