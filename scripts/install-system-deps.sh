#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks need (a real Chromium, espeak-ng, sox),
# only when one is missing. Idempotent; a no-op on a machine that has them all.
set -euo pipefail

packages=(chromium espeak-ng sox)

missing() {
  local pkg
  for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      printf '%s\n' "$pkg"
    fi
  done
}

main() {
  local todo
  mapfile -t todo < <(missing)
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

main "$@"
