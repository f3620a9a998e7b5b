"""scripts/rollout.sh end to end with the real azure-cli against the fake Azure (tests/infra/fakeazure.py): the
site's two slots, their images, swaps and what each slot's /healthz reports are the fake's state; `az acr
build`, docker and the smoke session are the recording stand-ins of standins.py."""

from __future__ import annotations

import shutil

from infra_helpers import REPO, FakeCloud, writes_to_production
from test_deploy_real_cli import LIVE, PREVIOUS, REGISTRY, index, is_swap, lab, writes_production

ROLLOUT = ("scripts/rollout.sh", "--resource-group", "rg-lab", "--app", "app-1", "--registry", REGISTRY, "--tag", "t1")
IMAGE = f"{REGISTRY}.azurecr.io/voicebridge:t1"
SLOT_ID = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-lab/providers/Microsoft.Web/sites/app-1/slots/staging"


def swaps(real) -> int:
    return sum(1 for r in real.azure.requests if is_swap(r))


def polls(real, slot: str) -> int:
    host = "app-1" if slot == "production" else f"app-1-{slot}"
    return sum(1 for r in real.azure.requests if r.path == f"/sites/{host}/healthz")


def test_success_builds_stages_gates_swaps_and_verifies(real):
    site = lab(real, production=LIVE, staging=PREVIOUS)
    result = real.run(*ROLLOUT)
    assert result.returncode == 0, result.stderr
    assert [c["argv"] for c in real.calls()] == [
        ["acr", "build", "--registry", REGISTRY, "--image", "voicebridge:t1", "--build-arg", "VOICEBRIDGE_IMAGE_TAG=t1", "."],
        [real.azure.site_url(site, "staging")], [real.azure.site_url(site)]]
    requests = real.azure.requests
    patch = index(requests, lambda r: r.method == "PATCH")
    assert requests[patch].path == f"{SLOT_ID}/config/web" and requests[patch].query["api-version"] == "2024-04-01"
    assert requests[patch].body == {"properties": {"linuxFxVersion": f"DOCKER|{IMAGE}"}}
    assert patch < index(requests, lambda r: r.path == "/sites/app-1-staging/healthz") < index(requests, is_swap)
    assert index(requests, is_swap) < index(requests, lambda r: r.path == "/sites/app-1/healthz")
    assert swaps(real) == 1 and site.images == {"production": IMAGE, "staging": LIVE}
    assert "released" in result.stdout and real.azure.site_url(site) in result.stdout and IMAGE in result.stdout
    summary = real.summary.read_text()
    assert "released" in summary and IMAGE in summary and real.azure.site_url(site) in summary


def test_nothing_writes_to_production_before_the_swap(real):
    lab(real, production=LIVE, staging=PREVIOUS)
    result = real.run(*ROLLOUT)
    assert result.returncode == 0, result.stderr
    swap = index(real.azure.requests, is_swap)
    assert swap > 0 and [r.path for r in real.azure.requests[:swap] if writes_production(r)] == []


def test_the_rollout_before_issue_9_wrote_to_production_before_the_swap(tmp_path):
    # The same check over the old script: `az webapp config set --slot staging --linux-fx-version` (which
    # rewrites production's app settings inside azure-cli) must be caught. With the recording stand-in az
    # (fakecli.py): the old script reads `az webapp show`'s tsv as tab-joined, so against the real CLI it
    # stops at "cannot read site" before the call this test is about.
    old = tmp_path / "old"
    shutil.copytree(REPO / "tests/infra/fixtures/before-issue-9/scripts", old / "scripts")
    cloud = FakeCloud(tmp_path)
    result = cloud.run(str(old / "scripts/rollout.sh"), "--resource-group", "rg-lab", "--app", "app-1", "--registry", "cr1",
                       "--tag", "t1")
    assert result.returncode == 0, result.stderr
    calls = cloud.calls()
    swap = next(i for i, c in enumerate(calls) if c["argv"][:4] == ["webapp", "deployment", "slot", "swap"])
    found = [why for c in calls[:swap] if (why := writes_to_production(c))]
    assert found == ["az webapp config set (rewrites production's app settings even with --slot)"]


def test_gate_polls_healthz_until_it_answers_200(real):
    site = lab(real, production=LIVE, staging=PREVIOUS)
    site.health["staging"] = [502, 503, 200]
    result = real.run(*ROLLOUT, VOICEBRIDGE_GATE_TIMEOUT="120")
    assert result.returncode == 0, result.stderr
    assert polls(real, "staging") == 3


def test_gate_waits_until_staging_reports_the_tag_it_just_deployed(real):
    # The old container keeps answering 200 while the new image is pulled and started.
    site = lab(real, production=LIVE, staging=PREVIOUS)
    site.health["staging"] = [{"code": 200, "tag": "old"}, {"code": 200, "tag": "old"}, 200]
    result = real.run(*ROLLOUT, VOICEBRIDGE_GATE_TIMEOUT="120")
    assert result.returncode == 0, result.stderr
    assert polls(real, "staging") == 3 and "runs t1" in result.stderr


def test_a_healthy_old_container_does_not_pass_the_gate(real):
    site = lab(real, production=LIVE, staging=PREVIOUS)
    site.health["staging"] = [{"code": 200, "tag": "old"}]
    result = real.run(*ROLLOUT)
    assert result.returncode == 1 and swaps(real) == 0
    assert "image_tag 'old' until the deadline (expected 't1')" in result.stderr and "not swapped" in result.stdout


def test_after_the_swap_production_must_report_the_new_tag(real):
    site = lab(real, production=LIVE, staging=PREVIOUS)
    site.health["production"] = [{"code": 200, "tag": "old"}]
    result = real.run(*ROLLOUT)
    assert result.returncode == 1 and swaps(real) == 2 and "swapped back" in result.stdout
    assert site.images["production"] == LIVE


def test_failed_staging_gate_exits_nonzero_without_swapping(real):
    site = lab(real, production=LIVE, staging=PREVIOUS)
    site.health["staging"] = [503]
    result = real.run(*ROLLOUT)
    assert result.returncode == 1 and swaps(real) == 0 and polls(real, "production") == 0
    assert "not swapped" in result.stdout and "not swapped" in real.summary.read_text()
    assert site.images["production"] == LIVE


def test_failed_smoke_session_on_staging_does_not_swap(real):
    site = lab(real, production=LIVE, staging=PREVIOUS, easy_auth=False)
    result = real.run(*ROLLOUT, VOICEBRIDGE_SMOKE_CMD="false")
    assert result.returncode == 1 and swaps(real) == 0 and site.images["production"] == LIVE


def test_failed_production_verification_swaps_back_and_exits_nonzero(real):
    site = lab(real, production=LIVE, staging=PREVIOUS)
    site.health["production"] = [502]
    result = real.run(*ROLLOUT)
    assert result.returncode == 1 and swaps(real) == 2
    assert is_swap(real.azure.arm()[-1]) and "swapped back" in result.stdout
    assert site.images == {"production": LIVE, "staging": IMAGE}


def test_a_throttled_site_read_fails_before_anything_changes(real):
    site = lab(real, production=LIVE, staging=PREVIOUS)
    real.azure.fail("GET", r"/sites/app-1/slots/staging$", 429, times=50)
    result = real.run(*ROLLOUT)
    assert result.returncode != 0
    assert real.calls() == [] and [r for r in real.azure.arm() if r.method == "PATCH"] == []
    assert "production untouched" in result.stdout and site.images["production"] == LIVE


def test_acr_tasks_refused_on_a_free_trial_says_what_to_do_instead(real):
    site = lab(real, production=LIVE, staging=PREVIOUS)
    result = real.run(*ROLLOUT, STANDIN_ACR_TASKS_REFUSED="1")
    assert result.returncode == 1
    assert "TasksOperationsNotAllowed" in result.stderr and "--builder docker" in result.stderr
    assert "deploy workflow" in result.stderr
    assert [r for r in real.azure.arm() if r.method == "PATCH"] == [] and swaps(real) == 0
    assert "image build failed; production untouched" in result.stdout and site.images["production"] == LIVE


def test_docker_builder_builds_here_and_pushes(real):
    lab(real, production=LIVE, staging=PREVIOUS)
    result = real.run(*ROLLOUT, "--builder", "docker")
    assert result.returncode == 0, result.stderr
    assert [c["argv"] for c in real.calls()][:3] == [
        ["build", "--build-arg", "VOICEBRIDGE_IMAGE_TAG=t1", "--tag", IMAGE, "."],
        ["acr", "login", "--name", REGISTRY], ["push", IMAGE]]


def test_dry_run_prints_every_command_and_runs_none(real):
    lab(real)
    result = real.run(*ROLLOUT, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert real.calls() == [] and real.azure.requests == []
    for command in (f"az acr build --registry {REGISTRY} --image voicebridge:t1 --build-arg VOICEBRIDGE_IMAGE_TAG=t1 .",
                    "az rest --method patch", "/slots/staging/config/web", "az webapp deployment slot swap", "/healthz"):
        assert command in result.stderr


def test_skip_build_rolls_out_an_existing_image(real):
    site = lab(real, production=LIVE, staging=PREVIOUS)
    result = real.run(*ROLLOUT, "--skip-build")
    assert result.returncode == 0, result.stderr
    assert "az acr build" not in real.commands() and site.images["production"] == IMAGE


def test_values_with_spaces_and_quotes_reach_the_cli_unchanged(real):
    group = """rg with 'single' and "double" quotes"""
    image = "voice bridge's \"image\""
    site = real.azure.add_site(group, "app-1", production=LIVE, staging=PREVIOUS)
    real.azure.add_registry(group, REGISTRY)
    result = real.run("scripts/rollout.sh", "--resource-group", group, "--app", "app-1", "--registry", REGISTRY,
                      "--image", image, "--tag", "t 1")
    assert result.returncode == 0, result.stderr
    assert real.calls()[0]["argv"][:6] == ["acr", "build", "--registry", REGISTRY, "--image", f"{image}:t 1"]
    patch = next(r for r in real.azure.arm() if r.method == "PATCH")
    assert f"/resourceGroups/{group}/" in patch.path
    assert patch.body["properties"]["linuxFxVersion"] == f"DOCKER|{REGISTRY}.azurecr.io/{image}:t 1"
    assert site.images["production"] == f"{REGISTRY}.azurecr.io/{image}:t 1"


def test_missing_required_option_is_a_usage_error(real):
    result = real.run("scripts/rollout.sh", "--app", "app-1", "--registry", REGISTRY)
    assert result.returncode == 2 and "--resource-group" in result.stderr
    assert real.azure.requests == []
