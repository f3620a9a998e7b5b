"""The deploy scripts against the real azure-cli and a fake Azure on 127.0.0.1 (tests/infra/fakeazure.py).

The CLI's own argument parsing, `--query`, `--output tsv`, `--subscription` handling, retries and exit codes
run for real; the fake only answers HTTP as ARM, Graph and the sites do, keeps their state and records every
request. azd, docker, `az acr build`/`az acr login` and the smoke session are recording stand-ins
(standins.py says why each cannot run here)."""

from __future__ import annotations

import json

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
    assert ["acr", "build", "--registry", REGISTRY, "--image", f"voicebridge:{tag}",
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
