"""A deployment can be made yours (issue 20): every setting a person tunes is an azd environment value that
main.parameters.json maps to an app setting through the Bicep, listed in one table in docs/deploy.md; and the
operator's own tools travel in the package the image installs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile

import yaml
from infra_helpers import INFRA, REPO

# Settings the app reads that are not the operator's to tune, and why.
NOT_TUNABLE = {
    "AZURE_VOICE_LIVE_ENDPOINT": "the AI Services account the template creates",
    "AZURE_VOICE_LIVE_API_KEY": "never an app setting: the key (if any) is read from Key Vault",
    "AZURE_KEY_VAULT_ENDPOINT": "the vault the template creates",
    "VOICE_LIVE_KEY_SECRET_NAME": "the secret the template writes",
    "AZURE_CLIENT_ID": "the managed identity the template creates",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "the component the template creates",
    "VOICEBRIDGE_HOST": "the container listens on all interfaces (Dockerfile)",
    "PORT": "the container's port, WEBSITES_PORT",
    "VOICEBRIDGE_TRUST_EASY_AUTH": "follows VOICEBRIDGE_AUTH",
    "VOICEBRIDGE_TRUST_FORWARDED": "always true behind App Service's front end",
    "VOICEBRIDGE_EMULATOR_PORT": "the emulator runs locally only",
    "VOICEBRIDGE_UPSTREAM_QUOTA_WINDOW_SECONDS": "the service counts per minute; shorter windows scale the quota down for tests and benchmarks",
    "VOICEBRIDGE_IMAGE_TAG": "baked into the image by the build",
    "CODESPACE_NAME": "set by GitHub Codespaces for local development only",
    "GITHUB_CODESPACES_PORT_FORWARDING_DOMAIN": "set by GitHub Codespaces for local development only",
}


def settings_read() -> set[str]:
    source = (REPO / "src/voicebridge/settings.py").read_text()
    return set(re.findall(r'env\.\w+\(\s*"([A-Z][A-Z0-9_]+)"', source))


def app_setting_sources() -> dict[str, str]:
    """App setting name -> the azd environment variable that feeds it, read from the files azd uses."""
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    bicep = (INFRA / "main.bicep").read_text()
    web = bicep[bicep.index("module web "):bicep.index("module easyAuth")]
    sources = {}
    for setting, value in parameters["appTuning"]["value"].items():
        if m := re.fullmatch(r"\$\{([A-Z0-9_]+)=[^}]*\}", value):
            sources[setting] = m[1]
    for setting, param in re.findall(r"^\s+([A-Z][A-Z0-9_]+): (?:\w+ \? '' : )?([a-z]\w*)$", web, re.M):
        value = parameters.get(param, {}).get("value", "")
        if m := re.fullmatch(r"\$\{([A-Z0-9_]+)(=[^}]*)?\}", str(value)):
            sources[setting] = m[1]
    return sources


def test_every_setting_a_person_tunes_comes_from_the_azd_environment():
    assert "tuning: appTuning" in (INFRA / "main.bicep").read_text()
    sources = app_setting_sources()
    tunable = settings_read() - set(NOT_TUNABLE)
    assert {"VOICE_LIVE_INSTRUCTIONS", "VOICE_LIVE_VOICE", "VOICE_LIVE_MODEL", "VOICE_LIVE_TURN_DETECTION",
            "VOICE_LIVE_TRANSCRIPTION_MODEL", "VOICEBRIDGE_TOOLS", "VOICEBRIDGE_MAX_SESSIONS"} <= tunable
    assert sorted(name for name in tunable if sources.get(name) != name) == []


def test_every_tunable_setting_is_stored_by_the_pipeline_and_documented_in_one_table():
    tunable = settings_read() - set(NOT_TUNABLE)
    listed = set(yaml.safe_load((REPO / "azure.yaml").read_text())["pipeline"]["variables"])
    assert sorted(tunable - listed) == []
    docs = (REPO / "docs/deploy.md").read_text()
    table = docs[docs.index("## Make it yours"):]
    rows = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", table, re.M))
    assert sorted(tunable - rows) == []
    assert "azd env set VOICE_LIVE_INSTRUCTIONS" in table


def test_the_operators_tool_folder_is_in_the_built_package_and_loads_from_it(tmp_path):
    # The package exactly as the image installs it (Dockerfile: pip install . from src/).
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(REPO)],
                           capture_output=True, text=True, timeout=600, check=False)
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("voicebridge-*.whl")
    assert "voicebridge_tools/example.py" in zipfile.ZipFile(wheel).namelist()
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); from voicebridge.settings import Settings; "
             "from voicebridge.tools import Toolbox; import voicebridge_tools.example as m; "
             "assert m.__file__.startswith(sys.argv[1]), m.__file__; "
             "s = Settings.from_env({'VOICEBRIDGE_TOOLS': 'voicebridge_tools.example'}); "
             "print(sorted(Toolbox.load(s.tools).tools))")
    loaded = subprocess.run([sys.executable, "-c", probe, str(target)], capture_output=True, text=True, timeout=120,
                            check=False, cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "['order_status']"
