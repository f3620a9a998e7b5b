"""Every environment variable settings.py reads is in the README's configuration table."""

from __future__ import annotations

import re
from pathlib import Path

import voicebridge.settings

ROOT = Path(__file__).resolve().parents[2]


def read_variables() -> set[str]:
    """The variables Settings.from_env reads: every `env.<kind>("NAME", …)` call in settings.py."""
    source = Path(voicebridge.settings.__file__).read_text(encoding="utf-8")
    return set(re.findall(r'env\.\w+\(\s*"([A-Z][A-Z0-9_]+)"', source))


def documented_variables(readme: str) -> set[str]:
    section = re.search(r"^## Configuration\n(.*?)(?=^## )", readme, re.M | re.S)
    assert section, "README.md has no Configuration section"
    rows = [line.split("|")[1] for line in section.group(1).splitlines() if line.startswith("| `")]
    return {name for first_cell in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", first_cell)}


def undocumented(readme: str) -> list[str]:
    return sorted(read_variables() - documented_variables(readme))


def test_every_setting_is_in_the_readme_configuration_table():
    variables = read_variables()
    assert "AZURE_VOICE_LIVE_ENDPOINT" in variables and len(variables) > 20, "settings.py is read as it should be"
    assert undocumented((ROOT / "README.md").read_text(encoding="utf-8")) == []


def test_the_check_catches_a_missing_row():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    without = re.sub(r"^\| `VOICEBRIDGE_DRAIN_SECONDS` .*\n", "", readme, flags=re.M)
    assert without != readme
    assert undocumented(without) == ["VOICEBRIDGE_DRAIN_SECONDS"]
