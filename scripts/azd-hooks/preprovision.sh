#!/usr/bin/env bash
# Before provisioning (azd's preprovision hook, and azdeploy.sh's preflight): stop early, with the regions to
# pick from, when the chosen region does not offer the Voice Live model; and choose the slot `azd deploy`
# targets, because azd refuses to guess once the site has a staging slot.
set -euo pipefail

# Regions offering gpt-realtime (Microsoft docs, autumn 2026); shown when the check fails.
readonly KNOWN_REGIONS="eastus2 swedencentral centralus westus2 uksouth francecentral australiaeast canadacentral centralindia southeastasia"

log() { printf '[preprovision] %s\n' "$*" >&2; }

check_model_region() {
  local location=$1 model=$2 offered
  if [[ ! $model =~ ^[A-Za-z0-9._-]+$ ]]; then
    log "VOICE_LIVE_MODEL '$model' is not a model name (letters, digits, dots, dashes)"
    return 1
  fi
  if ! command -v az >/dev/null 2>&1 || ! az account show --output none 2>/dev/null; then
    log "warning: the Azure CLI is missing or not logged in, so the region check is skipped (az login to enable it)"
    return 0
  fi
  offered=$(az cognitiveservices model list --location "$location" --query "length([?model.name=='$model'])" --output tsv)
  if [[ ${offered:-0} == 0 ]]; then
    log "region '$location' does not offer the model '$model' to Azure AI Services."
    log "pick a region that does, e.g.: $KNOWN_REGIONS"
    log "then: azd env set AZURE_LOCATION <region>   (or bash azdeploy.sh --location <region> with a new --env)"
    return 1
  fi
  log "region '$location' offers '$model'"
}

default_deploy_slot() {
  local env_args=()
  [[ -n ${AZURE_ENV_NAME:-} ]] && env_args=(--environment "$AZURE_ENV_NAME")
  command -v azd >/dev/null 2>&1 || return 0
  # The first `azd up` deploys straight to production (nothing to protect yet); later releases go through
  # scripts/rollout.sh, which uses the staging slot.
  if ! azd env get-value AZD_DEPLOY_WEB_SLOT_NAME "${env_args[@]}" >/dev/null 2>&1; then
    azd env set AZD_DEPLOY_WEB_SLOT_NAME production "${env_args[@]}"
  fi
}

main() {
  local location=${AZURE_LOCATION:-}
  if [[ -z $location ]]; then
    log "AZURE_LOCATION is not set: azd env set AZURE_LOCATION <region>"
    return 1
  fi
  check_model_region "$location" "${VOICE_LIVE_MODEL:-gpt-realtime}"
  default_deploy_slot
}

main "$@"
