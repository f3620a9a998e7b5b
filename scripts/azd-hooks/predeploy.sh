#!/usr/bin/env bash
# Before `azd deploy` (azd's predeploy hook): azure.yaml builds the image with ACR Tasks (remoteBuild, so
# Cloud Shell needs no Docker), which free-trial subscriptions may not use: ACR answers
# TasksOperationsNotAllowed after the upload. Say so up front, with the ways that do work.
set -euo pipefail

log() { printf '[predeploy] %s\n' "$*" >&2; }

main() {
  local subscription=${AZURE_SUBSCRIPTION_ID:-} quota
  if ! command -v az >/dev/null 2>&1 || ! az account show --output none 2>/dev/null; then
    log "warning: the Azure CLI is missing or not logged in, so the subscription type is not checked"
    return 0
  fi
  [[ -n $subscription ]] || subscription=$(az account show --query id --output tsv)
  quota=$(az rest --method get --url "/subscriptions/$subscription?api-version=2022-12-01" \
    --query subscriptionPolicies.quotaId --output tsv 2>/dev/null || true)
  if [[ $quota == FreeTrial* ]]; then
    log "error: subscription $subscription is a free trial ($quota): it may not run ACR Tasks"
    log "  (TasksOperationsNotAllowed), which is how 'azd deploy' builds the image here (remoteBuild)."
    log "  The infrastructure is provisioned; build the image another way:"
    log "    - where Docker runs (not Cloud Shell): bash azdeploy.sh --image-only --builder docker"
    log "    - or push to main: the deploy workflow builds on GitHub's runner (docs/cicd.md)"
    log "    - or upgrade the subscription to pay-as-you-go and run azd deploy again"
    return 1
  fi
}

main "$@"
