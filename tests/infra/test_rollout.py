"""scripts/rollout.sh driven end to end with stand-in az, curl, docker and smoke executables first on PATH.

Azure is unreachable from here, so the stand-ins (tests/infra/fakecli.py) are the one place a stand-in is
right: they record every argv and answer like the real CLIs (the site's two slots, their images, swaps and
what /healthz reports are simulated); the script itself runs for real under bash.
"""

from __future__ import annotations

import json
import shutil

import pytest
from infra_helpers import REPO, FakeCloud, writes_to_production

ROLLOUT = ("scripts/rollout.sh", "--resource-group", "rg-lab", "--app", "app-1", "--registry", "cr1", "--tag", "t1")
STAGING = "app-1-staging.azurewebsites.net"
PROD = "app-1.azurewebsites.net"
IMAGE = "cr1.azurecr.io/voicebridge:t1"
SLOT_ID = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-lab/providers/Microsoft.Web/sites/app-1/slots/staging"
SWAP = ["webapp", "deployment", "slot", "swap", "--resource-group", "rg-lab", "--name", "app-1",
        "--slot", "staging", "--target-slot", "production"]

RELEASE = [
    "az acr show",
    "az webapp show",
    "az webapp show",
    "az acr build",
    "az rest",
    "curl",
    "smoke",
    "az webapp deployment slot swap",
    "curl",
    "smoke",
]


def swaps(cloud) -> list[list[str]]:
    return [c["argv"] for c in cloud.calls() if c["argv"][:4] == ["webapp", "deployment", "slot", "swap"]]


def before_first_swap(cloud) -> list[dict]:
    calls = cloud.calls()
    at = next((i for i, c in enumerate(calls) if c["argv"][:4] == SWAP[:4]), len(calls))
    return calls[:at]


def test_success_builds_stages_gates_swaps_and_verifies(cloud):
    result = cloud.run(*ROLLOUT)
    assert result.returncode == 0, result.stderr
    assert cloud.commands() == RELEASE
    calls = cloud.calls()
    assert calls[3]["argv"] == ["acr", "build", "--registry", "cr1", "--image", "voicebridge:t1",
                                "--build-arg", "VOICEBRIDGE_IMAGE_TAG=t1", "."]
    patch = calls[4]["argv"]
    assert patch[:5] == ["rest", "--method", "patch", "--url", f"{SLOT_ID}/config/web?api-version=2024-04-01"]
    assert json.loads(patch[patch.index("--body") + 1]) == {"properties": {"linuxFxVersion": f"DOCKER|{IMAGE}"}}
    # Staging is gated before the swap, production after it.
    assert calls[5]["argv"][-1] == f"https://{STAGING}/healthz" and calls[6]["argv"] == [f"https://{STAGING}"]
    assert calls[8]["argv"][-1] == f"https://{PROD}/healthz" and calls[9]["argv"] == [f"https://{PROD}"]
    assert swaps(cloud) == [SWAP]
    assert "released" in result.stdout and f"https://{PROD}" in result.stdout and IMAGE in result.stdout
    summary = cloud.summary.read_text()
    assert "released" in summary and IMAGE in summary and f"https://{PROD}" in summary


def test_nothing_writes_to_production_before_the_swap(cloud):
    result = cloud.run(*ROLLOUT)
    assert result.returncode == 0, result.stderr
    assert [why for c in before_first_swap(cloud) if (why := writes_to_production(c))] == []
    assert len(before_first_swap(cloud)) < len(cloud.calls())


def test_the_rollout_before_issue_9_wrote_to_production_before_the_swap(tmp_path):
    # The same check over the old script: `az webapp config set --slot staging --linux-fx-version` (which
    # rewrites production's app settings inside azure-cli) must be caught.
    old = tmp_path / "old"
    shutil.copytree(REPO / "tests/infra/fixtures/before-issue-9/scripts", old / "scripts")
    cloud = FakeCloud(tmp_path)
    result = cloud.run(str(old / "scripts/rollout.sh"), *ROLLOUT[1:])
    assert result.returncode == 0, result.stderr
    found = [why for c in before_first_swap(cloud) if (why := writes_to_production(c))]
    assert found == ["az webapp config set (rewrites production's app settings even with --slot)"]


def test_gate_polls_healthz_until_it_answers_200(cloud):
    cloud.scenario = {"health": {STAGING: ["000", 503, 200]}}
    result = cloud.run(*ROLLOUT, VOICEBRIDGE_GATE_TIMEOUT="60")
    assert result.returncode == 0, result.stderr
    staging_polls = [c for c in cloud.calls() if c["prog"] == "curl" and STAGING in c["argv"][-1]]
    assert len(staging_polls) == 3


def test_gate_waits_until_staging_reports_the_tag_it_just_deployed(cloud):
    # The old container keeps answering 200 while the new image is pulled and started.
    cloud.scenario = {"health": {STAGING: [{"code": 200, "tag": "old"}, {"code": 200, "tag": "old"}, 200]}}
    result = cloud.run(*ROLLOUT, VOICEBRIDGE_GATE_TIMEOUT="60")
    assert result.returncode == 0, result.stderr
    staging_polls = [c for c in cloud.calls() if c["prog"] == "curl" and STAGING in c["argv"][-1]]
    assert len(staging_polls) == 3
    assert "runs t1" in result.stderr


def test_a_healthy_old_container_does_not_pass_the_gate(cloud):
    cloud.scenario = {"health": {STAGING: {"code": 200, "tag": "old"}}}
    result = cloud.run(*ROLLOUT)
    assert result.returncode == 1
    assert swaps(cloud) == []
    assert "image_tag 'old' until the deadline (expected 't1')" in result.stderr
    assert "not swapped" in result.stdout


def test_after_the_swap_production_must_report_the_new_tag(cloud):
    cloud.scenario = {"health": {PROD: {"code": 200, "tag": "old"}}}
    result = cloud.run(*ROLLOUT)
    assert result.returncode == 1
    assert swaps(cloud) == [SWAP, SWAP]
    assert "swapped back" in result.stdout


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
    assert swaps(cloud) == [SWAP, SWAP]
    assert cloud.commands()[-1] == "az webapp deployment slot swap"
    assert "swapped back" in result.stdout


def test_acr_tasks_refused_on_a_free_trial_says_what_to_do_instead(cloud):
    cloud.scenario = {"acr_tasks_refused": True}
    result = cloud.run(*ROLLOUT)
    assert result.returncode == 1
    assert "TasksOperationsNotAllowed" in result.stderr and "--builder docker" in result.stderr
    assert "deploy workflow" in result.stderr
    assert not any(c["argv"][:1] == ["rest"] for c in cloud.calls()) and swaps(cloud) == []
    assert "image build failed; production untouched" in result.stdout


def test_docker_builder_builds_here_and_pushes(cloud):
    result = cloud.run(*ROLLOUT, "--builder", "docker")
    assert result.returncode == 0, result.stderr
    assert [c["prog"] + " " + c["argv"][0] for c in cloud.calls()[3:6]] == ["docker build", "az acr", "docker push"]
    assert cloud.calls()[4]["argv"] == ["acr", "login", "--name", "cr1"]
    assert cloud.calls()[3]["argv"] == ["build", "--build-arg", "VOICEBRIDGE_IMAGE_TAG=t1", "--tag", IMAGE, "."]
    assert cloud.calls()[5]["argv"] == ["push", IMAGE]
    assert "az acr build" not in cloud.commands()


def test_dry_run_prints_every_command_and_runs_none(cloud):
    result = cloud.run(*ROLLOUT, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert cloud.calls() == []
    for command in ("az acr build --registry cr1 --image voicebridge:t1 --build-arg VOICEBRIDGE_IMAGE_TAG=t1 .",
                    "az rest --method patch", "/slots/staging/config/web", "az webapp deployment slot swap",
                    "/healthz"):
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
    body = json.loads(calls[4]["argv"][calls[4]["argv"].index("--body") + 1])
    assert body["properties"]["linuxFxVersion"] == f"DOCKER|cr1.azurecr.io/{image}:t 1"


def test_missing_required_option_is_a_usage_error(cloud):
    result = cloud.run("scripts/rollout.sh", "--app", "app-1", "--registry", "cr1")
    assert result.returncode == 2
    assert "--resource-group" in result.stderr
    assert cloud.calls() == []
