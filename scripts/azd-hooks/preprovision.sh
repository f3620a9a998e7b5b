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
# Reads AZURE_ENV_NAME, AZURE_LOCATION and AZURE_SUBSCRIPTION_ID (azd passes its environment to hooks; azdeploy.sh
# runs this through `azd hooks run preprovision`), VOICEBRIDGE_AUTH and VOICEBRIDGE_AUTH_CLIENT_ID.
# Every ARM call names AZURE_SUBSCRIPTION_ID: azure-cli ignores that variable and would otherwise work in whatever
# subscription it has as current. A read that fails stops the hook: carrying on would hand the template empty
# images, i.e. put production back on the placeholder.
set -euo pipefail

readonly PROVIDERS=(Microsoft.Web Microsoft.ContainerRegistry Microsoft.KeyVault Microsoft.CognitiveServices
  Microsoft.OperationalInsights Microsoft.Insights Microsoft.ManagedIdentity)
# Regions offering gpt-realtime (Microsoft docs, autumn 2026); shown when the check fails.
readonly KNOWN_REGIONS="eastus2 swedencentral centralus westus2 uksouth francecentral australiaeast canadacentral centralindia southeastasia"
readonly PLACEHOLDER_NOTE="placeholder (no release yet)"

log() { printf '[preprovision] %s\n' "$*" >&2; }
fail() { log "error: $*"; exit 1; }

ENV_ARGS=()
SUB=()
# Seconds between attempts at a Graph call that meets replication lag (tests set 0).
RETRY_DELAY=${VOICEBRIDGE_RETRY_DELAY:-10}

env_set() { azd env set "$1" "$2" "${ENV_ARGS[@]}" >/dev/null; }

az_ready() { command -v az >/dev/null 2>&1 && az account show "${SUB[@]}" --output none 2>/dev/null; }

cannot_read() {
  fail "could not read $1 (the Azure CLI's error is above). Stopping before provisioning: going on would" \
    "reset what runs. Run this again; if it keeps failing, check 'az account show' and your role on the subscription"
}

# A read whose failure must stop the hook (throttling, an expired token, a missing permission): its output, or exit.
read_or_stop() {
  local what=$1 out
  shift
  out=$("$@") || cannot_read "$what"
  printf '%s' "$out"
}

register_providers() {
  local namespace state
  for namespace in "${PROVIDERS[@]}"; do
    state=$(az provider show --namespace "$namespace" "${SUB[@]}" --query registrationState --output tsv 2>/dev/null || echo Unknown)
    [[ $state == Registered ]] && continue
    log "resource provider $namespace is $state in this subscription: registering it (a minute or two)"
    if ! az provider register --namespace "$namespace" "${SUB[@]}" --wait; then
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
# (e.g. after azd down, when the recorded image's registry is gone). Only a definite answer clears them.
keep_what_runs() {
  local group=${AZURE_RESOURCE_GROUP:-rg-$AZURE_ENV_NAME} exists app="" fx production="" staging="" instances="" status=0
  exists=$(read_or_stop "whether resource group $group exists" az group exists --name "$group" "${SUB[@]}" --output tsv)
  if [[ $exists == true ]]; then
    app=$(read_or_stop "the sites in $group" az webapp list --resource-group "$group" "${SUB[@]}" \
      --query "[?tags.\"azd-service-name\"=='web'].name | [0]" --output tsv)
  elif [[ $exists != false ]]; then
    fail "the check whether resource group $group exists answered '$exists'"
  fi
  if [[ -z $app ]]; then
    log "no site deployed in $group yet: production and staging start on the placeholder image"
    env_set SERVICE_WEB_IMAGE_NAME ""
    env_set SERVICE_WEB_STAGING_IMAGE_NAME ""
    env_set APP_SERVICE_INSTANCE_COUNT 1
    return 0
  fi
  fx=$(read_or_stop "production's image" az webapp config show --resource-group "$group" --name "$app" "${SUB[@]}" \
    --query linuxFxVersion --output tsv)
  production=$(strip_docker "$fx")
  [[ -n $production ]] || fail "production of $app reports no container image ('$fx'): not provisioning over it"
  # A site from before the staging slot existed has none: az exits 3 (not found). Any other failure stops.
  fx=$(az webapp config show --resource-group "$group" --name "$app" --slot staging "${SUB[@]}" \
    --query linuxFxVersion --output tsv) || status=$?
  if ((status == 3)); then
    fx=""
  elif ((status != 0)); then
    cannot_read "the staging slot's image"
  fi
  staging=$(strip_docker "$fx")
  instances=$(read_or_stop "the plan's instance count" az appservice plan list --resource-group "$group" "${SUB[@]}" \
    --query "[0].sku.capacity" --output tsv)
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
  deleted=$(az keyvault list-deleted --resource-type vault "${SUB[@]}" \
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
  deleted=$(az cognitiveservices account list-deleted "${SUB[@]}" \
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
  offered=$(az cognitiveservices model list --location "$location" "${SUB[@]}" --query "length([?model.name=='$model'])" --output tsv)
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

# Graph may not show a just-created application to servicePrincipals for a few seconds (replication): retry
# that; only a refusal (403, "Insufficient privileges") is a missing permission.
create_service_principal() {
  local id=$1 attempt errors
  errors=$(mktemp)
  for ((attempt = 1; ; attempt++)); do
    if az ad sp create --id "$id" --output none 2>"$errors"; then
      rm -f "$errors"
      return 0
    fi
    if grep -qi -e "insufficient privileges" -e "Authorization_RequestDenied" "$errors" || ((attempt >= 5)); then
      cat "$errors" >&2
      rm -f "$errors"
      no_entra_permission "create the service principal of $id"
    fi
    log "the service principal of $id cannot be created yet (Microsoft Graph replication); retrying in ${RETRY_DELAY}s"
    sleep "$RETRY_DELAY"
  done
}

app_registration() {
  local mode=${VOICEBRIDGE_AUTH:-none} name="voicebridge-$AZURE_ENV_NAME" id=${VOICEBRIDGE_AUTH_CLIENT_ID:-} found
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
    # --display-name is Graph's startswith(): voicebridge-lab would also find voicebridge-lab2. Keep exact names.
    found=$(az ad app list --display-name "$name" --query "[?displayName=='$name'].appId" --output tsv) ||
      no_entra_permission "list app registrations"
    if [[ $found == *$'\n'* ]]; then
      fail "more than one app registration is named $name ($(tr '\n' ' ' <<<"$found")): choose one with" \
        "azd env set VOICEBRIDGE_AUTH_CLIENT_ID <application id>"
    fi
    id=$found
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
    create_service_principal "$id"
  fi
  env_set VOICEBRIDGE_AUTH_CLIENT_ID "$id"
}

main() {
  local location=${AZURE_LOCATION:-} model=${VOICE_LIVE_MODEL:-gpt-realtime}
  [[ -n $location ]] || fail "AZURE_LOCATION is not set: azd env set AZURE_LOCATION <region>"
  [[ -n ${AZURE_ENV_NAME:-} ]] || fail "AZURE_ENV_NAME is not set: run through azd, or azd env select <name> first"
  [[ -n ${AZURE_SUBSCRIPTION_ID:-} ]] ||
    fail "AZURE_SUBSCRIPTION_ID is not set: run through azd (azd provision, or azd hooks run preprovision)," \
      "or azd env set AZURE_SUBSCRIPTION_ID <subscription id>"
  SUB=(--subscription "$AZURE_SUBSCRIPTION_ID")
  [[ $model =~ ^[A-Za-z0-9._-]+$ ]] || fail "VOICE_LIVE_MODEL '$model' is not a model name (letters, digits, dots, dashes)"
  ENV_ARGS=(--environment "$AZURE_ENV_NAME")
  if ! az_ready; then
    # Without az nothing live can be read: provisioning now could reset production's image and scale.
    fail "the Azure CLI is missing, not logged in, or cannot see subscription $AZURE_SUBSCRIPTION_ID; it is needed to" \
      "read what runs before re-provisioning. Run 'az login' (Cloud Shell: already done) and try again"
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
