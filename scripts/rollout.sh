#!/usr/bin/env bash
# Roll out one image: build it (ACR Tasks, or Docker here and push) -> point the staging slot at it ->
# gate staging (/healthz must report the new image tag, then a smoke session) -> swap into production ->
# verify production the same way -> swap back if that fails.
# The one implementation behind azdeploy.sh and the GitHub deploy workflow.
#
# Production is never written before the swap: the slot's image changes through a PATCH of the slot's own
# config/web (what azd does). `az webapp config set --slot ... --linux-fx-version` and
# `az webapp config container set --slot` also rewrite the production site's app settings inside
# azure-cli (its app-settings update is called without the slot), restarting production mid-conversation.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/rollout.sh --resource-group RG --app APP --registry ACR_NAME [options]

  --image NAME           repository in the registry (default voicebridge)
  --tag TAG              image tag (default: short commit + UTC timestamp); baked into the image as
                         VOICEBRIDGE_IMAGE_TAG, which /healthz reports and the gate waits for
  --slot NAME            slot that receives the image first (default staging)
  --subscription ID      subscription of the site and registry (default: the Azure CLI's current one; azdeploy.sh
                         passes the azd environment's, which az's current subscription need not be)
  --builder acr|docker   acr (default): ACR Tasks builds in Azure, no local Docker needed (not allowed on
                         free-trial subscriptions); docker: build here and push (needs Docker)
  --gate-timeout SECS    how long a slot may take to report the new tag on /healthz (default 300)
  --skip-build           roll out an image already in the registry (built by this script, so it knows its tag)
  --skip-smoke           gate on /healthz only (when `python -m voicebridge smoke` is not installed); also
                         the case, found out by itself, when the slot requires sign-in (App Service Authentication)
  --output-file FILE     append image=, url=, result= lines (e.g. "$GITHUB_OUTPUT")
  --dry-run              print every command, run none

Environment: VOICEBRIDGE_SMOKE_CMD  program run as `PROGRAM URL` instead of `python3 -m voicebridge smoke URL`
             VOICEBRIDGE_GATE_TIMEOUT  default for --gate-timeout
             VOICEBRIDGE_GATE_INTERVAL  seconds between /healthz polls (default 10)
             GITHUB_STEP_SUMMARY  when set, a markdown summary is appended to it
Exit status: 0 released; 1 build, gate or verification failed (production untouched or rolled back); 2 usage.
USAGE
}

# The Microsoft.Web API version of the slot config PATCH (the one the Bicep declares).
readonly WEB_API_VERSION=2024-04-01

RESOURCE_GROUP="" APP="" REGISTRY="" IMAGE="voicebridge" TAG="" SLOT="staging" BUILDER=acr SUB=()
GATE_TIMEOUT=${VOICEBRIDGE_GATE_TIMEOUT:-300}
SKIP_BUILD=false SKIP_SMOKE=false DRY_RUN=false OUTPUT_FILE=""
POLL_INTERVAL=${VOICEBRIDGE_GATE_INTERVAL:-10}
# Filled in as the rollout progresses; the EXIT trap reports whatever was reached.
IMAGE_REF="" PROD_URL="" RESULT="" STARTED=false

log() { printf '[rollout] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }

# shellcheck source=scripts/dryrun.sh
source "$(dirname "${BASH_SOURCE[0]}")/dryrun.sh"

parse_args() {
  while (($#)); do
    case $1 in
      --resource-group | --app | --registry | --image | --tag | --slot | --builder | --gate-timeout | --output-file | --subscription)
        (($# >= 2)) || die "$1 needs a value"
        case $1 in
          --resource-group) RESOURCE_GROUP=$2 ;;
          --app) APP=$2 ;;
          --registry) REGISTRY=$2 ;;
          --image) IMAGE=$2 ;;
          --tag) TAG=$2 ;;
          --slot) SLOT=$2 ;;
          --builder) BUILDER=$2 ;;
          --gate-timeout) GATE_TIMEOUT=$2 ;;
          --output-file) OUTPUT_FILE=$2 ;;
          --subscription) SUB=(--subscription "$2") ;;
        esac
        shift 2
        ;;
      --skip-build) SKIP_BUILD=true; shift ;;
      --skip-smoke) SKIP_SMOKE=true; shift ;;
      --dry-run) DRY_RUN=true; shift ;;
      -h | --help) usage; exit 0 ;;
      *) usage >&2; die "unknown option: $1" ;;
    esac
  done
  [[ -n $RESOURCE_GROUP && -n $APP && -n $REGISTRY ]] || { usage >&2; die "--resource-group, --app and --registry are required"; }
  [[ $GATE_TIMEOUT =~ ^[0-9]+$ ]] || die "--gate-timeout takes whole seconds, got '$GATE_TIMEOUT'"
  [[ $SLOT != production ]] || die "--slot must be a deployment slot, not production"
  [[ $BUILDER == acr || $BUILDER == docker ]] || die "--builder is acr or docker, got '$BUILDER'"
  if [[ -z $TAG ]]; then
    TAG="$(git rev-parse --short HEAD 2>/dev/null || echo local)-$(date -u +%Y%m%d%H%M%S)"
  fi
}

smoke() {
  local url=$1
  if [[ $SKIP_SMOKE == true ]]; then
    log "gate: smoke session skipped (--skip-smoke); /healthz was the only check"
    return 0
  fi
  if [[ -n ${VOICEBRIDGE_SMOKE_CMD:-} ]]; then
    run "$VOICEBRIDGE_SMOKE_CMD" "$url"
  else
    run python3 -m voicebridge smoke "$url"
  fi
}

# The image tag a /healthz body reports ("image_tag": "..."), or nothing.
reported_tag() {
  sed -n 's/.*"image_tag" *: *"\([^"]*\)".*/\1/p' <<<"$1"
}

# /healthz must answer 200 AND report the tag just rolled out (an old container that is still healthy
# must not pass), within the gate timeout; then a real session must reach ready.
gate() {
  local url=$1 expected=$2 response code tag deadline=$((SECONDS + GATE_TIMEOUT))
  log "gate: waiting up to ${GATE_TIMEOUT}s for $url/healthz to answer 200 with image_tag '$expected'"
  if [[ $DRY_RUN == true ]]; then
    show curl --silent --max-time 10 --write-out '\n%{http_code}' "$url/healthz"
  else
    while :; do
      response=$(curl --silent --max-time 10 --write-out '\n%{http_code}' "$url/healthz" || true)
      code=${response##*$'\n'}
      tag=$(reported_tag "${response%$'\n'*}")
      [[ $code == 200 && $tag == "$expected" ]] && break
      if ((SECONDS >= deadline)); then
        log "gate: $url/healthz answered ${code:-nothing} with image_tag '${tag}' until the deadline (expected '$expected')"
        return 1
      fi
      sleep "$POLL_INTERVAL"
    done
  fi
  if ! smoke "$url"; then
    log "gate: the smoke session against $url failed"
    return 1
  fi
  log "gate: $url is healthy and runs $expected"
}

swap() {
  run az webapp deployment slot swap --resource-group "$RESOURCE_GROUP" --name "$APP" "${SUB[@]}" \
    --slot "$SLOT" --target-slot production
}

# The site's (or a slot's) resource id and default host name, one per line: the real CLI prints a list with
# --output tsv one element per line (knack's format_tsv), never tab-joined.
site_of() {
  local slot_args=() placeholder="/subscriptions/<subscription>/resourceGroups/$RESOURCE_GROUP/providers/Microsoft.Web/sites/$APP"
  if [[ -n ${1:-} ]]; then
    slot_args=(--slot "$1")
    placeholder+="/slots/$1"
  fi
  query "$placeholder"$'\n'"${APP}${1:+-$1}.azurewebsites.net" az webapp show --resource-group "$RESOURCE_GROUP" \
    --name "$APP" "${slot_args[@]}" "${SUB[@]}" --query "[id, defaultHostName]" --output tsv
}

# Whether the slot has App Service Authentication on with sign-in required (VOICEBRIDGE_AUTH=entra): then a
# script cannot open a session (its WebSocket gets a 302 to the login page) and /healthz, excluded from
# sign-in, is the whole gate. Asked of the site itself, so no variable has to say so.
sign_in_required() {
  local slot_id=$1 answer
  answer=$(query "false" az rest --method get --url "$slot_id/config/authsettingsV2?api-version=$WEB_API_VERSION" \
    --query "properties.platform.enabled == \`true\` && properties.globalValidation.requireAuthentication == \`true\`" \
    --output tsv)
  [[ ${answer,,} == true ]]
}

json_string() {
  local value=${1//\\/\\\\}
  printf '"%s"' "${value//\"/\\\"}"
}

# Only the slot's own config/web changes; the slot then pulls the image with its managed identity.
point_slot_at_image() {
  local slot_id=$1
  run az rest --method patch --url "$slot_id/config/web?api-version=$WEB_API_VERSION" \
    --body "{\"properties\": {\"linuxFxVersion\": $(json_string "DOCKER|$IMAGE_REF")}}" --output none
}

build_in_acr() {
  local log_file status=0
  if [[ $DRY_RUN == true ]]; then
    show az acr build --registry "$REGISTRY" "${SUB[@]}" --image "$IMAGE:$TAG" --build-arg "VOICEBRIDGE_IMAGE_TAG=$TAG" .
    return 0
  fi
  log_file=$(mktemp)
  az acr build --registry "$REGISTRY" "${SUB[@]}" --image "$IMAGE:$TAG" --build-arg "VOICEBRIDGE_IMAGE_TAG=$TAG" . 2>&1 |
    tee "$log_file" >&2 || status=$?
  if ((status != 0)) && grep -q TasksOperationsNotAllowed "$log_file"; then
    log "error: this subscription may not run ACR Tasks (TasksOperationsNotAllowed: free-trial and some"
    log "  sponsored subscriptions). Build elsewhere instead: where Docker runs, re-run with --builder docker"
    log "  (bash azdeploy.sh --image-only --builder docker), or push to main and let the deploy workflow"
    log "  build on its runner; see docs/deploy.md, 'Free trial subscriptions'."
  fi
  rm -f "$log_file"
  return "$status"
}

build_with_docker() {
  run docker build --build-arg "VOICEBRIDGE_IMAGE_TAG=$TAG" --tag "$IMAGE_REF" .
  run az acr login --name "$REGISTRY" "${SUB[@]}"
  run docker push "$IMAGE_REF"
}

report() {
  local status=$?
  [[ $STARTED == true ]] || return 0
  RESULT=${RESULT:-"failed before the swap (exit $status); production untouched"}
  printf '\nvoicebridge rollout: %s\n  url:   %s\n  image: %s\n' "$RESULT" "${PROD_URL:-?}" "${IMAGE_REF:-?}"
  if [[ -n ${GITHUB_STEP_SUMMARY:-} ]]; then
    printf '### voicebridge rollout\n\n| | |\n|---|---|\n| result | %s |\n| url | %s |\n| image | <code>%s</code> |\n\n' \
      "$RESULT" "${PROD_URL:-?}" "${IMAGE_REF:-?}" >>"$GITHUB_STEP_SUMMARY"
  fi
  if [[ -n $OUTPUT_FILE ]]; then
    printf 'image=%s\nurl=%s\nresult=%s\n' "$IMAGE_REF" "$PROD_URL" "$RESULT" >>"$OUTPUT_FILE"
  fi
}

main() {
  parse_args "$@"
  # The build context is the repository root.
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  STARTED=true
  trap report EXIT

  local login_server slot slot_id slot_host production prod_host
  # Each query on its own line: a failing az stops the script here (set -e) instead of handing on nothing.
  login_server=$(query "<$REGISTRY.azurecr.io>" az acr show --name "$REGISTRY" "${SUB[@]}" --query loginServer --output tsv)
  IMAGE_REF="$login_server/$IMAGE:$TAG"
  slot=$(site_of "$SLOT")
  production=$(site_of)
  slot_id=${slot%%$'\n'*} slot_host=${slot#*$'\n'} prod_host=${production#*$'\n'}
  [[ -n $slot_id && $slot_host != "$slot" && -n $slot_host && $prod_host != "$production" && -n $prod_host ]] ||
    die "cannot read site '$APP' and its slot '$SLOT' in '$RESOURCE_GROUP'"
  PROD_URL="https://$prod_host"
  if [[ $SKIP_SMOKE == false ]] && sign_in_required "$slot_id"; then
    log "sign-in (App Service Authentication) is on: a script cannot sign in, so the gate checks /healthz only"
    SKIP_SMOKE=true
  fi

  if [[ $SKIP_BUILD == false ]]; then
    if [[ $BUILDER == docker ]]; then build_with_docker; elif ! build_in_acr; then
      RESULT="image build failed; production untouched"
      exit 1
    fi
  fi
  point_slot_at_image "$slot_id"

  if ! gate "https://$slot_host" "$TAG"; then
    RESULT="staging gate failed; not swapped, production untouched"
    exit 1
  fi
  swap
  if ! gate "$PROD_URL" "$TAG"; then
    log "production verification failed: swapping back"
    swap
    RESULT="production verification failed; swapped back to the previous image"
    exit 1
  fi
  if [[ $DRY_RUN == true ]]; then RESULT="dry run: nothing was run"; else RESULT="released"; fi
}

main "$@"
