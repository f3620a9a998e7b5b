#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks need (a real Chromium, espeak-ng, sox),
# only when one is missing. Idempotent; a no-op on a machine that has them all.
#
# Without apt (macOS, other Linux) nothing is installed with a system package manager: the script says
# which tools are missing and how to get them, tries Playwright's own Chromium (needs its download host),
# and records what is still missing in $VENV/system-deps-missing. scripts/test-python.sh then runs every
# test except the browser ones and says, loudly, that it skipped them. On Debian that file never exists:
# a failed apt install fails `make test`.
set -euo pipefail

packages=(chromium espeak-ng sox)
VENV=${VENV:-.venv}
MISSING_FILE="$VENV/system-deps-missing"
CHROMIUM_FILE="$VENV/chromium-path"

say() { printf '[system-deps] %s\n' "$*" >&2; }

missing_debian() {
  local pkg
  for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      printf '%s\n' "$pkg"
    fi
  done
}

install_debian() {
  local todo
  mapfile -t todo < <(missing_debian)
  if [ "${#todo[@]}" -eq 0 ]; then
    return 0
  fi
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
  fi
  echo "installing Debian packages: ${todo[*]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${todo[@]}" >/dev/null
}

has_chromium() {
  [[ -n ${VOICEBRIDGE_CHROMIUM:-} && -x ${VOICEBRIDGE_CHROMIUM:-} ]] && return 0
  [[ -x /usr/lib/chromium/chromium || -x /usr/bin/chromium ]] && return 0
  [[ -s $CHROMIUM_FILE && -x $(cat "$CHROMIUM_FILE") ]]
}

# Playwright's own Chromium build, downloaded from Playwright's host: works where that host is reachable.
playwright_chromium() {
  local python="$VENV/bin/python" path
  [[ -x $python ]] || return 1
  say "no system Chromium: trying Playwright's own (python -m playwright install chromium)"
  "$python" -m playwright install chromium >&2 || return 1
  path=$("$python" -c 'from playwright.sync_api import sync_playwright
with sync_playwright() as p:
    print(p.chromium.executable_path)') || return 1
  [[ -x $path ]] || return 1
  printf '%s\n' "$path" >"$CHROMIUM_FILE"
  say "using Playwright's Chromium: $path"
}

report_without_apt() {
  local missing=() tool
  for tool in espeak-ng sox; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  has_chromium || playwright_chromium || missing+=(chromium)
  if [ "${#missing[@]}" -eq 0 ]; then
    rm -f "$MISSING_FILE"
    return 0
  fi
  say "no apt-get on this machine, so these are not installed: ${missing[*]}"
  say "  macOS: brew install espeak-ng sox; brew install --cask chromium (or let Playwright fetch its own)"
  say "  other Linux: your package manager's espeak-ng, sox and chromium packages"
  say "  (or set VOICEBRIDGE_CHROMIUM to a Chromium executable)"
  say "make test runs every other test and SKIPS the browser tests until they are installed"
  if [[ -d $VENV ]]; then
    printf '%s\n' "${missing[@]}" >"$MISSING_FILE"
  fi
}

main() {
  if command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then
    rm -f "$MISSING_FILE"
    install_debian
  else
    report_without_apt
  fi
}

main "$@"
