#!/usr/bin/env bash
# Before provisioning (azd's preprovision hook, also run by azdeploy.sh's option 1). Each step either
# fixes the situation or stops with a message that says what to do, instead of an ARM error mid-deployment:
#   1. the resource providers the template uses are registered (a fresh subscription has few);
#   2. a re-provision keeps what runs: production's and the staging slot's images and the plan's instance
#      count are read from the live site and handed to the template (SERVICE_WEB_IMAGE_NAME,
#      SERVICE_WEB_STAGING_IMAGE_NAME, APP_SERVICE_INSTANCE_COUNT), so a release by the deploy workflow,
#      which azd never hears of, is not undone;
#   3. a Key Vault that `azd down --purge` left soft-deleted (purge protection) is recovered, and so is an AI
#      Services account that `azd down` without --purge left soft-deleted, instead of colliding with them;
#   4. the region offers the Voice Live model;
#   5. the slot `azd deploy` targets is chosen, because azd refuses to guess once the site has a staging slot;
#   6. with VOICEBRIDGE_AUTH=entra, the Microsoft Entra ID app registration users sign in to exists: the one
#      named in VOICEBRIDGE_AUTH_CLIENT_ID, else the one named voicebridge-<env>, else a new one; its id goes
#      to VOICEBRIDGE_AUTH_CLIENT_ID (the postprovision hook adds the site's sign-in redirect URIs).
# Reads AZURE_ENV_NAME and AZURE_LOCATION (azd passes its environment to hooks), VOICEBRIDGE_AUTH and
# VOICEBRIDGE_AUTH_CLIENT_ID.
set -euo pipefail

readonly PROVIDERS=(Microsoft.Web Microsoft.ContainerRegistry Microsoft.KeyVault Microsoft.CognitiveServices
  Microsoft.OperationalInsights Microsoft.Insights Microsoft.ManagedIdentity)
# Regions offering gpt-realtime (Microsoft docs, autumn 2026); shown when the check fails.
readonly KNOWN_REGIONS="eastus2 swedencentral centralus westus2 uksouth francecentral australiaeast canadacentral centralindia southeastasia"
readonly PLACEHOLDER_NOTE="placeholder (no release yet)"

log() { printf '[preprovision] %s\n' "$*" >&2; }
fail() { log "error: $*"; exit 1; }

ENV_ARGS=()

env_set() { azd env set "$1" "$2" "${ENV_ARGS[@]}" >/dev/null; }

az_ready() { command -v az >/dev/null 2>&1 && az account show --output none 2>/dev/null; }

register_providers() {
  local namespace state
  for namespace in "${PROVIDERS[@]}"; do
    state=$(az provider show --namespace "$namespace" --query registrationState --output tsv 2>/dev/null || echo Unknown)
    [[ $state == Registered ]] && continue
    log "resource provider $namespace is $state in this subscription: registering it (a minute or two)"
    if ! az provider register --namespace "$namespace" --wait; then
      fail "could not register $namespace. Registering needs the Contributor or Owner role on the subscription:" \
        "ask an owner to run 'az provider register --namespace $namespace', then run this again"
    fi
  done
}

strip_docker() {
  local fx=$1
  [[ $fx == DOCKER\|* ]] && printf '%s' "${fx#DOCKER|}"
  return 0
}

# Hand the live images and instance count to the template, or clear them when nothing is deployed yet
# (e.g. after azd down, when the recorded image's registry is gone).
keep_what_runs() {
  local group="rg-$AZURE_ENV_NAME" app="" production="" staging="" instances=""
  if [[ $(az group exists --name "$group" --output tsv) == true ]]; then
    app=$(az webapp list --resource-group "$group" --query "[?tags.\"azd-service-name\"=='web'].name | [0]" --output tsv)
  fi
  if [[ -z $app ]]; then
    log "no site deployed in $group yet: production and staging start on the placeholder image"
    env_set SERVICE_WEB_IMAGE_NAME ""
    env_set SERVICE_WEB_STAGING_IMAGE_NAME ""
    env_set APP_SERVICE_INSTANCE_COUNT 1
    return 0
  fi
  production=$(strip_docker "$(az webapp config show --resource-group "$group" --name "$app" \
    --query linuxFxVersion --output tsv)")
  staging=$(strip_docker "$(az webapp config show --resource-group "$group" --name "$app" --slot staging \
    --query linuxFxVersion --output tsv 2>/dev/null || true)")
  instances=$(az appservice plan list --resource-group "$group" --query "[0].sku.capacity" --output tsv)
  log "keeping what runs in $app: production ${production:-$PLACEHOLDER_NOTE}, staging ${staging:-$PLACEHOLDER_NOTE}," \
    "${instances:-1} instance(s)"
  env_set SERVICE_WEB_IMAGE_NAME "$production"
  env_set SERVICE_WEB_STAGING_IMAGE_NAME "$staging"
  env_set APP_SERVICE_INSTANCE_COUNT "${instances:-1}"
}

# Purge protection keeps a deleted vault for its retention period, even after `azd down --purge`, and its
# name stays taken: creating the vault again would fail. Recover it instead (createMode: recover).
recover_deleted_vault() {
  local deleted
  deleted=$(az keyvault list-deleted --resource-type vault \
    --query "[?properties.tags.\"azd-env-name\"=='$AZURE_ENV_NAME' && properties.location=='$AZURE_LOCATION'].name | [0]" \
    --output tsv)
  if [[ -n $deleted ]]; then
    log "Key Vault $deleted of environment '$AZURE_ENV_NAME' is soft-deleted (purge protection outlives azd down --purge):" \
      "this provision recovers it"
    env_set KEY_VAULT_CREATE_MODE recover
  else
    env_set KEY_VAULT_CREATE_MODE default
  fi
}

# `azd down` without --purge leaves the AI Services account soft-deleted for 48 hours, its name taken:
# creating it again fails (FlagMustBeSetForRestore). Restore it instead.
restore_deleted_ai_account() {
  local deleted
  deleted=$(az cognitiveservices account list-deleted \
    --query "[?contains(id, '/resourceGroups/rg-$AZURE_ENV_NAME/') && location=='$AZURE_LOCATION'].name | [0]" \
    --output tsv)
  if [[ -n $deleted ]]; then
    log "AI Services account $deleted of environment '$AZURE_ENV_NAME' is soft-deleted: this provision restores it"
    env_set AI_SERVICES_RESTORE true
  else
    env_set AI_SERVICES_RESTORE false
  fi
}

check_model_region() {
  local location=$1 model=$2 offered
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
  # The first `azd up` deploys straight to production (nothing to protect yet); later releases go through
  # scripts/rollout.sh, which uses the staging slot. A slot already chosen (the azd environment, or the
  # pipeline's AZD_DEPLOY_WEB_SLOT_NAME: azd hands both to hooks) is left alone.
  if [[ -z ${AZD_DEPLOY_WEB_SLOT_NAME:-} ]]; then
    env_set AZD_DEPLOY_WEB_SLOT_NAME production
  fi
}

# What the deploying user needs for sign-in, said once: the step that met the refusal names itself.
no_entra_permission() {
  fail "could not $1 in Microsoft Entra ID. Sign-in (VOICEBRIDGE_AUTH=entra) needs the deploying user to be" \
    "allowed to register applications: members may by default, unless an administrator turned 'Users can register" \
    "applications' off; then the Application Developer role (a pipeline's service principal: the Microsoft Graph" \
    "application permission Application.ReadWrite.OwnedBy). Ask an administrator for it, or to create the" \
    "registration and give you its id: azd env set VOICEBRIDGE_AUTH_CLIENT_ID <application id>." \
    "Or deploy without sign-in: azd env set VOICEBRIDGE_AUTH none"
}

app_registration() {
  local mode=${VOICEBRIDGE_AUTH:-none} name="voicebridge-$AZURE_ENV_NAME" id=${VOICEBRIDGE_AUTH_CLIENT_ID:-}
  case $mode in
    none) return 0 ;;
    entra) ;;
    *) fail "VOICEBRIDGE_AUTH is '$mode': use none (no sign-in) or entra (Microsoft Entra ID sign-in)" ;;
  esac
  if [[ -n $id ]]; then
    az ad app show --id "$id" --query appId --output tsv >/dev/null ||
      no_entra_permission "read the app registration $id (VOICEBRIDGE_AUTH_CLIENT_ID)"
    log "sign-in: using app registration $id"
  else
    id=$(az ad app list --display-name "$name" --query "[0].appId" --output tsv) ||
      no_entra_permission "list app registrations"
    if [[ -n $id ]]; then
      log "sign-in: reusing app registration $name ($id)"
    else
      # Single tenant; the ID token is all App Service Authentication needs, so no secret is made.
      id=$(az ad app create --display-name "$name" --sign-in-audience AzureADMyOrg \
        --enable-id-token-issuance true --query appId --output tsv) ||
        no_entra_permission "create the app registration $name"
      log "sign-in: created app registration $name ($id)"
    fi
  fi
  # Users of the tenant sign in to the registration's service principal (enterprise application).
  if ! az ad sp show --id "$id" --query id --output tsv >/dev/null 2>&1; then
    az ad sp create --id "$id" --output none || no_entra_permission "create the service principal of $id"
  fi
  env_set VOICEBRIDGE_AUTH_CLIENT_ID "$id"
}

main() {
  local location=${AZURE_LOCATION:-} model=${VOICE_LIVE_MODEL:-gpt-realtime}
  [[ -n $location ]] || fail "AZURE_LOCATION is not set: azd env set AZURE_LOCATION <region>"
  [[ -n ${AZURE_ENV_NAME:-} ]] || fail "AZURE_ENV_NAME is not set: run through azd, or azd env select <name> first"
  [[ $model =~ ^[A-Za-z0-9._-]+$ ]] || fail "VOICE_LIVE_MODEL '$model' is not a model name (letters, digits, dots, dashes)"
  ENV_ARGS=(--environment "$AZURE_ENV_NAME")
  if ! az_ready; then
    # Without az nothing live can be read: provisioning now could reset production's image and scale.
    fail "the Azure CLI is missing or not logged in; it is needed to read what runs before re-provisioning." \
      "Run 'az login' (Cloud Shell: already done) and try again"
  fi
  register_providers
  keep_what_runs
  recover_deleted_vault
  restore_deleted_ai_account
  check_model_region "$location" "$model" || exit 1
  default_deploy_slot
  app_registration
}

main "$@"
