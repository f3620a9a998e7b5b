"""The repository carries the data its infra tests read (issue 18), and the refresh tool keeps it honest.

These run on a clone with nothing beside it. The byte-for-byte comparison with the full upstream data is
`scripts/refresh-test-data.sh --check`, which .ci/run runs wherever the full copy exists.
"""

from __future__ import annotations

import json
import shutil

from infra_helpers import REPO
from refresh_data import DATA, REFRESH, TYPES_DIR, build, declared_pairs, differences, missing_data_message


def test_every_pair_a_template_declares_is_in_the_repositorys_subset():
    index = json.loads((TYPES_DIR / "index.json").read_text())["resources"]
    missing = sorted(declared_pairs() - index.keys())
    assert missing == [], missing_data_message(", ".join(missing))
    # Only what is used: every file in the subset defines a pair in use.
    used_files = {f for files in index.values() for f in files}
    on_disk = {str(p.relative_to(TYPES_DIR)) for p in TYPES_DIR.rglob("types.json")}
    assert on_disk == used_files


def test_the_subset_is_rebuilt_from_itself_byte_for_byte(tmp_path):
    # The subset is closed under the refresh: built from the committed data as if it were the full copy, it
    # comes out identical. (Against the real full copy: `scripts/refresh-test-data.sh --check`.)
    problems = build(TYPES_DIR, DATA / "azd", tmp_path)
    assert problems == []
    assert differences(DATA, tmp_path) == []


def test_the_comparison_sees_one_changed_byte_and_a_missing_file(tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(DATA, copy)
    victim = next(copy.rglob("types.json"))
    raw = bytearray(victim.read_bytes())
    raw[-2] = ord(" ") if raw[-2] != ord(" ") else ord("\n")
    victim.write_bytes(bytes(raw))
    (copy / "azd" / "azure.yaml.json").unlink()
    found = differences(copy, DATA)
    assert f"differs: {victim.relative_to(copy)}" in found
    assert "missing from the committed data: azd/azure.yaml.json" in found


def test_a_template_with_an_unpublished_type_version_fails_the_refresh(tmp_path):
    templates = tmp_path / "infra"
    templates.mkdir()
    (templates / "main.bicep").write_text(
        "resource site 'Microsoft.Web/sites@2099-01-01' = {\n  name: 'a'\n  location: 'l'\n}\n")
    problems = build(TYPES_DIR, DATA / "azd", tmp_path / "out", templates=[templates])
    assert problems == [f"Microsoft.Web/sites@2099-01-01 is declared by a template but is not a published type in {TYPES_DIR}"]


def test_nothing_the_tests_or_ci_read_lies_outside_the_repository():
    needle = "shared" + "/"  # split so that this file does not match itself
    offenders = [str(p.relative_to(REPO)) for folder in ("tests", "src", ".ci", ".github")
                 for p in (REPO / folder).rglob("*") if p.is_file() and p.suffix in {".py", ".sh", ".yml", ".yaml", ""}
                 and any(f"../{needle}{kind}" in line or f'"{needle.rstrip("/")}" / "{kind}"' in line
                         for line in p.read_text(errors="ignore").splitlines() for kind in ("bicep-types", "schemas"))]
    assert offenders == [], f"{offenders} read data from beside the checkout; vendor it with {REFRESH}"
