"""Builds the repository's own copy of the data the infra tests read (issue 18), from a full copy of it.

The tests need two pieces of published data: the Azure resource type definitions the Bicep compiler checks
against (Azure/bicep-types-az) and azd's azure.yaml schema (Azure/azure-dev). A clone of this repository has
nothing beside it, so it carries the part it uses under tests/infra/data/:

* bicep-types/: each upstream `types.json` file that defines a `type@apiVersion` the templates (infra/ and
  tests/infra/fixtures/) or the tests' snippets declare, byte for byte as published, and an index.json that
  names exactly those pairs;
* azd/azure.yaml.json: the schema file as published.

`python tests/infra/refresh_data.py --check` (what `scripts/refresh-test-data.sh --check` runs) rebuilds the
subset in a temporary folder and fails when it differs from the committed one by a single byte; without
`--check` it writes the subset. Either fails when a template declares a type@version the full data lacks.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DATA = HERE / "data"
TYPES_DIR = DATA / "bicep-types"
SCHEMA_FILE = DATA / "azd" / "azure.yaml.json"
REFRESH = "scripts/refresh-test-data.sh"

# Templates: every type@version they declare must be published (else the compiler would refuse them).
TEMPLATES = [REPO / "infra", HERE / "fixtures"]
# Test snippets name types inline; a pair that exists upstream is kept so the snippet checks the real body,
# a pair that does not (a deliberately unpublished version) is left out.
SNIPPETS = sorted(HERE.glob("test_*.py"))
PAIR = re.compile(r"Microsoft\.[A-Za-z]+/[A-Za-z/]+@\d{4}-\d{2}-\d{2}(?:-preview)?")


def missing_data_message(what: str) -> str:
    return (f"{what} is not in the repository's test data (tests/infra/data/): run `{REFRESH}` "
            f"with the full data beside it (see tests/infra/data/bicep-types/SOURCE.md)")


def declared_pairs(templates: list[Path] = TEMPLATES) -> set[str]:
    from bicep_model import read  # tree-sitter: the same parser the type checks use

    return {d.target for root in templates for path in sorted(root.rglob("*.bicep")) for d in read(path).resources}


def snippet_pairs() -> set[str]:
    return {m.group(0) for path in SNIPPETS for m in PAIR.finditer(path.read_text())}


def build(full_types: Path, full_schemas: Path, out: Path, templates: list[Path] = TEMPLATES) -> list[str]:
    """Writes the subset into `out`; returns the problems (an unpublished type@version in a template)."""
    index = json.loads((full_types / "index.json").read_text())
    published = index["resources"]
    declared = declared_pairs(templates)
    problems = [f"{pair} is declared by a template but is not a published type in {full_types}"
                for pair in sorted(declared) if pair not in published]
    wanted = sorted((declared | snippet_pairs()) & published.keys())
    subset = {pair: published[pair] for pair in wanted}
    types_out = out / "bicep-types"
    for relative in sorted({f for files in subset.values() for f in files}):
        target = types_out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(full_types / relative, target)
    shutil.copyfile(full_types / "LICENSE", types_out / "LICENSE")
    (types_out / "index.json").write_text(json.dumps(
        {"source": index["source"], "commit": index["commit"], "resources": subset}, indent=1, sort_keys=True) + "\n")
    (out / "azd").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(full_schemas / "azure.yaml.json", out / "azd" / "azure.yaml.json")
    return problems


def differences(left: Path, right: Path) -> list[str]:
    """Files that are in one tree and not the other, or differ in content (SOURCE.md is hand-written)."""
    def files(root: Path) -> set[str]:
        return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != "SOURCE.md"}

    a, b = files(left), files(right)
    found = [f"only in the committed data: {f}" for f in sorted(a - b)]
    found += [f"missing from the committed data: {f}" for f in sorted(b - a)]
    found += [f"differs: {f}" for f in sorted(a & b) if not filecmp.cmp(left / f, right / f, shallow=False)]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--types", type=Path, required=True, help="a full copy of Azure/bicep-types-az data")
    parser.add_argument("--schemas", type=Path, required=True, help="a folder holding azd's azure.yaml.json")
    parser.add_argument("--check", action="store_true", help="compare only; write nothing")
    args = parser.parse_args(argv)
    for path in (args.types / "index.json", args.schemas / "azure.yaml.json"):
        if not path.exists():
            print(f"refresh-test-data: {path} not found", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        problems = build(args.types, args.schemas, fresh)
        for problem in problems:
            print(f"refresh-test-data: {problem}", file=sys.stderr)
        if problems:
            return 1
        if args.check:
            found = differences(DATA, fresh)
            for line in found:
                print(f"refresh-test-data: {line}", file=sys.stderr)
            if found:
                print(f"refresh-test-data: the committed subset is stale: run `{REFRESH}`", file=sys.stderr)
                return 1
            print("refresh-test-data: tests/infra/data matches the full data byte for byte")
            return 0
        for sub in ("bicep-types", "azd"):
            for old in (DATA / sub).rglob("*"):
                if old.is_file() and old.name != "SOURCE.md":
                    old.unlink()
        shutil.copytree(fresh, DATA, dirs_exist_ok=True)
        for empty in sorted((p for p in DATA.rglob("*") if p.is_dir()), reverse=True):
            if not any(empty.iterdir()):
                empty.rmdir()
    size = sum(p.stat().st_size for p in DATA.rglob("*") if p.is_file())
    print(f"refresh-test-data: wrote tests/infra/data ({size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
