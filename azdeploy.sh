#!/usr/bin/env bash
# Deploy voicebridge to Azure from Cloud Shell (or any bash with az and azd logged in).
#   bash azdeploy.sh                  interactive menu
#   bash azdeploy.sh --full --env NAME --location REGION --yes
#   bash azdeploy.sh --image-only --env NAME [--builder docker]
# Option 1 provisions with azd and rolls the image out; option 2 only rolls a new image out. Both roll out
# through scripts/rollout.sh (build -> staging -> health gate on the new tag -> swap -> verify -> roll back).
# The checks before provisioning (providers, what runs now, soft-deleted vault/account, region) are azd's
# preprovision hook, scripts/azd-hooks/preprovision.sh, run here first so they stop before azd starts.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: bash azdeploy.sh [--full | --image-only | --status | --teardown] [options]

  --full             1: preflight hook, azd provision, build, staging, health gate, swap
  --image-only       2: build a new image, staging, health gate, swap
  --status           3: show both images, the site and its /healthz
  --teardown         4: azd down --purge (deletes the Azure resources; .azure/ is kept)
  --env NAME         azd environment (default: $AZURE_ENV_NAME or voicebridge)
  --location REGION  region for a new environment (must offer gpt-realtime, e.g. eastus2, swedencentral)
  --builder B        acr (default: ACR Tasks, no Docker needed) or docker (build here and push; for
                     free-trial subscriptions, which may not run ACR Tasks)
  --auth MODE        with --full: none (anyone who reaches the URL may talk) or entra (sign-in with
                     Microsoft Entra ID in front of both slots; needs the right to register applications,
                     see README "Sign-in and limits"). Kept in the azd environment (VOICEBRIDGE_AUTH);
                     default: what the environment has, else none
  --yes              do not ask for confirmation
  --dry-run          print every command, run none (the Azure CLI and azd need not be there): with --location, the
                     commands of a first deployment; without, those of an existing environment

Cost: one App Service P0v3 instance, about US$60/month, up to about US$180/month while autoscale runs
3 instances (APP_SERVICE_MAX_INSTANCES), plus Container Registry Basic (~US$5) and Voice Live per use.
Exposure: the site is open to anyone with the URL unless VOICEBRIDGE_AUTH=entra (--auth entra).

Environment: VOICEBRIDGE_PROVISION_RETRIES (default 3), VOICEBRIDGE_RETRY_DELAY seconds (default 30).
USAGE
}

MODE="" ENV_NAME=${AZURE_ENV_NAME:-voicebridge} LOCATION="" BUILDER=acr AUTH="" ASSUME_YES=false DRY_RUN=false
NEW_ENV=false
RETRIES=${VOICEBRIDGE_PROVISION_RETRIES:-3}
RETRY_DELAY=${VOICEBRIDGE_RETRY_DELAY:-30}

log() { printf '[azdeploy] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=scripts/dryrun.sh
source "$(dirname "${BASH_SOURCE[0]}")/scripts/dryrun.sh"

parse_args() {
  while (($#)); do
    case $1 in
      --full) MODE=full; shift ;;
      --image-only) MODE=image; shift ;;
      --status) MODE=status; shift ;;
      --teardown) MODE=teardown; shift ;;
      --env | --location | --builder | --auth)
        (($# >= 2)) || die "$1 needs a value"
        case $1 in
          --env) ENV_NAME=$2 ;;
          --location) LOCATION=$2 ;;
          --builder) BUILDER=$2 ;;
          --auth) AUTH=$2 ;;
        esac
        shift 2
        ;;
      -y | --yes) ASSUME_YES=true; shift ;;
      --dry-run) DRY_RUN=true; shift ;;
      -h | --help) usage; exit 0 ;;
      *) usage >&2; die "unknown option: $1" ;;
    esac
  done
  [[ -z $AUTH || $AUTH == none || $AUTH == entra ]] || die "--auth is none or entra, got '$AUTH'"
}

menu() {
  [[ -t 0 ]] || die "no terminal to ask on: pass --full, --image-only, --status or --teardown"
  local choice
  cat >&2 <<MENU
voicebridge deployment (azd environment: $ENV_NAME)
  1) Full deploy: provision Azure resources, build the image, roll it out
  2) Image-only update: build a new image and roll it out
  3) Status
  4) Tear down (azd down --purge)
  q) Quit
MENU
  read -r -p "Choose 1-4: " choice
  case $choice in
    1) MODE=full ;;
    2) MODE=image ;;
    3) MODE=status ;;
    4) MODE=teardown ;;
    *) exit 0 ;;
  esac
}

confirm() {
  [[ $ASSUME_YES == true || $DRY_RUN == true ]] && return 0
  [[ -t 0 ]] || die "$1: pass --yes to confirm when not running in a terminal"
  local answer
  read -r -p "$1 [y/N] " answer
  [[ $answer == [yY]* ]] || die "cancelled"
}

env_value() { query "<$1>" azd env get-value "$1" --environment "$ENV_NAME"; }

# A value the environment may not have yet (azd env get-value fails for an unknown key): the default then.
env_value_or() { env_value "$1" 2>/dev/null || printf '%s\n' "$2"; }

# --auth goes into the azd environment, where `azd provision` (main.parameters.json, the hooks) reads it.
choose_auth() {
  if [[ -n $AUTH ]]; then
    run azd env set VOICEBRIDGE_AUTH "$AUTH" --environment "$ENV_NAME"
  elif [[ $NEW_ENV == true ]]; then
    AUTH=none
  else
    AUTH=$(env_value_or VOICEBRIDGE_AUTH none)
  fi
  if [[ $AUTH == entra ]]; then
    log "sign-in: entra (only users of your Microsoft Entra ID tenant get in)"
  else
    log "sign-in: $AUTH: the site is open to anyone with the URL (bounded by the per-address limits);" \
      "--auth entra requires a Microsoft Entra ID sign-in"
  fi
}

preflight_tools() {
  local tool
  if [[ $DRY_RUN == true ]]; then
    log "dry run: nothing runs, so neither the Azure CLI nor azd has to be installed or logged in"
    return 0
  fi
  for tool in az azd; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (Azure Cloud Shell has both)"
  done
  query "" az account show --output none || die "the Azure CLI is not logged in: run az login"
  query "" azd auth login --check-status >/dev/null || die "azd is not logged in: run azd auth login"
}

# Whether the azd environment exists. A dry run asks nothing, not even azd: with --location it previews a
# first deployment, without one an existing environment.
env_exists() {
  if [[ $DRY_RUN == true ]]; then
    [[ -z $LOCATION ]]
    return
  fi
  azd env get-values --environment "$ENV_NAME" >/dev/null 2>&1
}

# A new environment needs a region: asked for in a terminal, else --location.
ask_location() {
  [[ -t 0 ]] || die "environment '$ENV_NAME' is new: pass --location REGION (e.g. eastus2 or swedencentral)"
  read -r -p "Region for the new environment '$ENV_NAME' (it must offer gpt-realtime: eastus2, swedencentral, ...): " LOCATION
  [[ $LOCATION =~ ^[a-z0-9]+$ ]] || die "'$LOCATION' is not an Azure region name (e.g. eastus2)"
}

# Select the environment, creating it only when it does not exist yet: the user's azd state is never reset.
ensure_env() {
  local current subscription
  if env_exists; then
    run azd env select "$ENV_NAME"
    current=$(env_value AZURE_LOCATION)
    if [[ $DRY_RUN == false && -n $LOCATION && $LOCATION != "$current" ]]; then
      die "environment '$ENV_NAME' lives in '$current'; choose a new --env to deploy to '$LOCATION'"
    fi
    LOCATION=${LOCATION:-$current}
  else
    NEW_ENV=true
    [[ -n $LOCATION ]] || ask_location
    subscription=$(query "<subscription-id>" az account show --query id --output tsv)
    run azd env new "$ENV_NAME" --location "$LOCATION" --subscription "$subscription"
  fi
}

existing_env() {
  query "" azd env get-values --environment "$ENV_NAME" >/dev/null 2>&1 ||
    die "environment '$ENV_NAME' does not exist yet: run a full deploy (option 1) first"
}

# azd runs this hook again inside `azd provision`; running it first stops before azd starts, with its message.
# `azd hooks run` gives it the whole environment, as `azd provision` will (AZURE_SUBSCRIPTION_ID, the model,
# the deploy slot a user chose), not a few variables from this shell.
preprovision_checks() {
  run azd hooks run preprovision --environment "$ENV_NAME"
}

# Provisioning fails transiently now and then (role assignment propagation, ARM throttling): retry it.
provision() {
  local attempt
  for ((attempt = 1; ; attempt++)); do
    if run azd provision --no-prompt --environment "$ENV_NAME"; then
      return 0
    fi
    ((attempt < RETRIES)) || die "azd provision failed $attempt times; see the errors above and docs/deploy.md"
    log "azd provision failed (attempt $attempt of $RETRIES); retrying in ${RETRY_DELAY}s"
    sleep "$RETRY_DELAY"
  done
}

rollout() {
  local outputs line image="" group app registry args subscription
  group=$(env_value AZURE_RESOURCE_GROUP)
  app=$(env_value SERVICE_WEB_NAME)
  registry=$(env_value AZURE_CONTAINER_REGISTRY_NAME)
  subscription=$(env_value AZURE_SUBSCRIPTION_ID)
  args=(--resource-group "$group" --app "$app" --registry "$registry" --builder "$BUILDER" --subscription "$subscription")
  [[ $DRY_RUN == true ]] && args+=(--dry-run)
  if [[ -z ${VOICEBRIDGE_SMOKE_CMD:-} ]] && ! python3 -c 'import voicebridge.smoke' 2>/dev/null; then
    log "warning: voicebridge is not installed here (pip install .), so the gate checks /healthz only"
    args+=(--skip-smoke)
  fi
  # With sign-in on, rollout.sh finds App Service Authentication on the slot and gates on /healthz alone.
  outputs=$(mktemp)
  args+=(--output-file "$outputs")
  if ! scripts/rollout.sh "${args[@]}"; then
    rm -f "$outputs"
    die "the rollout did not complete; production keeps (or was rolled back to) its previous image"
  fi
  while IFS= read -r line; do
    [[ $line == image=* ]] && image=${line#image=}
  done <"$outputs"
  rm -f "$outputs"
  # The preprovision hook reads the live image before every provision; this is the fallback it starts from.
  [[ $DRY_RUN == true ]] || run azd env set SERVICE_WEB_IMAGE_NAME "$image" --environment "$ENV_NAME"
}

full_deploy() {
  preflight_tools
  ensure_env
  choose_auth
  log "cost: about US\$60/month for one P0v3 instance, up to about US\$180/month while autoscale runs 3," \
    "plus Container Registry Basic (~US\$5/month) and Voice Live per use (docs/deploy.md, 'Region, model and cost')"
  confirm "Provision '$ENV_NAME' in $LOCATION and deploy?"
  preprovision_checks
  provision
  rollout
  log "done: $(env_value SERVICE_WEB_URI)"
}

image_update() {
  preflight_tools
  existing_env
  rollout
  log "done: $(env_value SERVICE_WEB_URI)"
}

status() {
  preflight_tools
  existing_env
  local url group app sub
  group=$(env_value AZURE_RESOURCE_GROUP)
  app=$(env_value SERVICE_WEB_NAME)
  sub=(--subscription "$(env_value AZURE_SUBSCRIPTION_ID)")
  run az webapp show --resource-group "$group" --name "$app" "${sub[@]}" --query "{state: state, host: defaultHostName}" --output table
  log "production image: $(query '<image>' az webapp config show --resource-group "$group" --name "$app" "${sub[@]}" \
    --query linuxFxVersion --output tsv)"
  log "staging image (swap-back): $(query '<image>' az webapp config show --resource-group "$group" --name "$app" \
    "${sub[@]}" --slot staging --query linuxFxVersion --output tsv)"
  url=$(env_value SERVICE_WEB_URI)
  log "$url/healthz answers $(query '{}' curl --silent --max-time 10 "$url/healthz" || true)"
}

teardown() {
  preflight_tools
  existing_env
  confirm "Delete every Azure resource of '$ENV_NAME' (azd down --purge)?"
  run azd down --purge --force --environment "$ENV_NAME"
  log "the Key Vault stays soft-deleted for its retention period (purge protection, even with --purge);"
  log "a full deploy (option 1) of '$ENV_NAME' recovers it, or use a new --env name"
}

main() {
  parse_args "$@"
  cd "$(dirname "${BASH_SOURCE[0]}")"
  [[ -n $MODE ]] || menu
  case $MODE in
    full) full_deploy ;;
    image) image_update ;;
    status) status ;;
    teardown) teardown ;;
  esac
}

main "$@"
