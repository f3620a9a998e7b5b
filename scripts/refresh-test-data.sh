#!/usr/bin/env bash
# Rebuilds tests/infra/data/ (the Azure resource type subset and azd's schema the infra tests read) from a
# full copy of the data, or with --check proves the committed subset is what the full data gives, byte for
# byte. Fails when a template declares a type@version the full data does not publish.
#
#   scripts/refresh-test-data.sh [--check] [--dry-run] [--from DIR | --types DIR --schemas DIR]
#
# --from DIR: a folder holding both full copies, as bicep-types/ and schemas/.
#
# DIR defaults: ../shared/bicep-types and ../shared/schemas beside the checkout (this workplace's full
# copies); elsewhere pass a clone of Azure/bicep-types-az with an index.json (see
# tests/infra/data/bicep-types/SOURCE.md) and a folder holding Azure/azure-dev's schemas/v1.0/azure.yaml.json.
set -euo pipefail

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }

main() {
  local repo types schemas check=() dry_run=0
  repo=$(cd "$(dirname "$0")/.." && pwd)
  types="$repo/../shared/bicep-types"
  schemas="$repo/../shared/schemas"
  while [[ $# -gt 0 ]]; do
    case $1 in
      --check) check=(--check) ;;
      --dry-run) dry_run=1 ;;
      --from) types="$2/bicep-types"; schemas="$2/schemas"; shift ;;
      --types) types=$2; shift ;;
      --schemas) schemas=$2; shift ;;
      -h|--help) usage; return 0 ;;
      *) echo "refresh-test-data: unknown argument $1" >&2; usage >&2; return 2 ;;
    esac
    shift
  done
  local python="$repo/.venv/bin/python"
  if [[ $dry_run -eq 1 ]]; then
    echo "would run: make -C $repo .venv/.dev && $python tests/infra/refresh_data.py --types $types --schemas $schemas ${check[*]}"
    return 0
  fi
  make -C "$repo" --no-print-directory .venv/.dev >/dev/null
  "$python" "$repo/tests/infra/refresh_data.py" --types "$types" --schemas "$schemas" "${check[@]}"
}

main "$@"
