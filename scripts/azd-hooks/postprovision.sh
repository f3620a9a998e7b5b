#!/usr/bin/env bash
# After provisioning (azd's postprovision hook): with VOICEBRIDGE_AUTH=entra, the app registration the
# preprovision hook made or reused learns where the site and its staging slot receive signed-in users
# (/.auth/login/aad/callback). Only now are the host names known: they are the deployment's outputs, which
# azd hands to hooks (SERVICE_WEB_URI, SERVICE_WEB_STAGING_URI).
# The registration is read first and written only when a callback or ID tokens are missing: writing needs
# ownership (a pipeline holding Application.ReadWrite.OwnedBy, or a second operator, may not own a registration a
# person created), and the redirect URIs already there (a custom domain an administrator added) are kept.
set -euo pipefail

log() { printf '[postprovision] %s\n' "$*" >&2; }
fail() { log "error: $*"; exit 1; }

callback() { printf '%s/.auth/login/aad/callback' "${1%/}"; }

main() {
  [[ ${VOICEBRIDGE_AUTH:-none} == entra ]] || return 0
  local id=${VOICEBRIDGE_AUTH_CLIENT_ID:-} production staging current issuance uri uris=() missing=()
  [[ -n $id ]] || fail "VOICEBRIDGE_AUTH is entra but VOICEBRIDGE_AUTH_CLIENT_ID is empty: run azd provision again" \
    "(its preprovision hook creates or finds the app registration)"
  [[ -n ${SERVICE_WEB_URI:-} && -n ${SERVICE_WEB_STAGING_URI:-} ]] ||
    fail "the deployment's outputs SERVICE_WEB_URI and SERVICE_WEB_STAGING_URI are missing"
  production=$(callback "$SERVICE_WEB_URI")
  staging=$(callback "$SERVICE_WEB_STAGING_URI")
  current=$(az ad app show --id "$id" --query "web.redirectUris" --output tsv) ||
    fail "could not read the app registration $id (the Azure CLI's error is above)"
  issuance=$(az ad app show --id "$id" --query "web.implicitGrantSettings.enableIdTokenIssuance" --output tsv) ||
    fail "could not read the app registration $id (the Azure CLI's error is above)"
  [[ -z $current ]] || mapfile -t uris <<<"$current"
  missing=()
  for uri in "$production" "$staging"; do
    [[ " ${uris[*]} " == *" $uri "* ]] || missing+=("$uri")
  done
  if ((${#missing[@]} == 0)) && [[ $issuance == true ]]; then
    log "sign-in: app registration $id already redirects to $production and $staging"
    return 0
  fi
  if ! az ad app update --id "$id" --web-redirect-uris "${uris[@]}" "${missing[@]}" --enable-id-token-issuance true; then
    fail "could not update the app registration $id: sign-in fails until it lists the redirect URIs" \
      "${missing[*]} (ID tokens on). Its owner or an administrator (Application Developer role) can add" \
      "them under Authentication in the Entra admin center, or run this again"
  fi
  log "sign-in: app registration $id now also redirects to ${missing[*]}"
}

main "$@"
