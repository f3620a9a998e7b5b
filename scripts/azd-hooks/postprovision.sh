#!/usr/bin/env bash
# After provisioning (azd's postprovision hook): with VOICEBRIDGE_AUTH=entra, the app registration the
# preprovision hook made or reused learns where the site and its staging slot receive signed-in users
# (/.auth/login/aad/callback). Only now are the host names known: they are the deployment's outputs, which
# azd hands to hooks (SERVICE_WEB_URI, SERVICE_WEB_STAGING_URI). Idempotent: the list is set, not appended.
set -euo pipefail

log() { printf '[postprovision] %s\n' "$*" >&2; }
fail() { log "error: $*"; exit 1; }

callback() { printf '%s/.auth/login/aad/callback' "${1%/}"; }

main() {
  [[ ${VOICEBRIDGE_AUTH:-none} == entra ]] || return 0
  local id=${VOICEBRIDGE_AUTH_CLIENT_ID:-} production staging
  [[ -n $id ]] || fail "VOICEBRIDGE_AUTH is entra but VOICEBRIDGE_AUTH_CLIENT_ID is empty: run azd provision again" \
    "(its preprovision hook creates or finds the app registration)"
  [[ -n ${SERVICE_WEB_URI:-} && -n ${SERVICE_WEB_STAGING_URI:-} ]] ||
    fail "the deployment's outputs SERVICE_WEB_URI and SERVICE_WEB_STAGING_URI are missing"
  production=$(callback "$SERVICE_WEB_URI")
  staging=$(callback "$SERVICE_WEB_STAGING_URI")
  if ! az ad app update --id "$id" --web-redirect-uris "$production" "$staging" --enable-id-token-issuance true; then
    fail "could not update the app registration $id: sign-in fails until it lists the redirect URIs" \
      "$production and $staging (ID tokens on). Its owner or an administrator (Application Developer role) can add" \
      "them under Authentication in the Entra admin center, or run this again"
  fi
  log "sign-in: app registration $id redirects to $production and $staging"
}

main "$@"
