#!/usr/bin/env bash
# `make test-py`: the whole pytest suite. Only where scripts/install-system-deps.sh could not install the
# browser tests' tools (no apt: macOS, other Linux) are those tests left out, and then it says so before
# and after the run, with what is missing; everything else still runs. Extra arguments go to pytest.
set -euo pipefail

VENV=${VENV:-.venv}
PY=${PY:-$VENV/bin/python}

banner() { printf '\n==== make test: %s ====\n\n' "$*" >&2; }

main() {
  local missing="" status=0
  if [[ -s $VENV/system-deps-missing ]]; then
    missing=$(tr '\n' ' ' <"$VENV/system-deps-missing")
  fi
  if [[ -z ${VOICEBRIDGE_CHROMIUM:-} && -s $VENV/chromium-path ]]; then
    VOICEBRIDGE_CHROMIUM=$(cat "$VENV/chromium-path")
    export VOICEBRIDGE_CHROMIUM
  fi
  if [[ -z $missing ]]; then
    exec "$PY" -m pytest "$@"
  fi
  banner "SKIPPING the browser tests (pytest -m 'not browser'): ${missing}is not installed"
  "$PY" -m pytest -m "not browser" "$@" || status=$?
  banner "the browser tests were NOT run: install ${missing}(see scripts/install-system-deps.sh) and run make test again"
  exit "$status"
}

main "$@"
