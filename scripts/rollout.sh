#!/usr/bin/env bash
# Roll out one image: build in ACR -> point the staging slot at it -> gate staging (/healthz, then a smoke
# session) -> swap into production -> verify production the same way -> swap back if that fails.
# The one implementation behind azdeploy.sh and the GitHub deploy workflow.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/rollout.sh --resource-group RG --app APP --registry ACR_NAME [options]

  --image NAME           repository in the registry (default voicebridge)
  --tag TAG              image tag (default: short commit + UTC timestamp)
  --slot NAME            slot that receives the image first (default staging)
  --gate-timeout SECS    how long a slot may take to answer /healthz with 200 (default 300)
  --skip-build           roll out an image already in the registry
  --skip-smoke           gate on /healthz only (when `python -m voicebridge smoke` is not installed)
  --output-file FILE     append image=, url=, result= lines (e.g. "$GITHUB_OUTPUT")
  --dry-run              print every command, run none

Environment: VOICEBRIDGE_SMOKE_CMD  program run as `PROGRAM URL` instead of `python3 -m voicebridge smoke URL`
             VOICEBRIDGE_GATE_TIMEOUT  default for --gate-timeout
             VOICEBRIDGE_GATE_INTERVAL  seconds between /healthz polls (default 10)
             GITHUB_STEP_SUMMARY  when set, a markdown summary is appended to it
Exit status: 0 released; 1 gate or verification failed (production untouched or rolled back); 2 usage.
USAGE
}

RESOURCE_GROUP="" APP="" REGISTRY="" IMAGE="voicebridge" TAG="" SLOT="staging"
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
      --resource-group | --app | --registry | --image | --tag | --slot | --gate-timeout | --output-file)
        (($# >= 2)) || die "$1 needs a value"
        case $1 in
          --resource-group) RESOURCE_GROUP=$2 ;;
          --app) APP=$2 ;;
          --registry) REGISTRY=$2 ;;
          --image) IMAGE=$2 ;;
          --tag) TAG=$2 ;;
          --slot) SLOT=$2 ;;
          --gate-timeout) GATE_TIMEOUT=$2 ;;
          --output-file) OUTPUT_FILE=$2 ;;
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

# /healthz must answer 200 within the gate timeout, then a real session must reach ready.
gate() {
  local url=$1 code deadline=$((SECONDS + GATE_TIMEOUT))
  log "gate: waiting up to ${GATE_TIMEOUT}s for $url/healthz to answer 200"
  if [[ $DRY_RUN == true ]]; then
    show curl --silent --output /dev/null --write-out '%{http_code}' --max-time 10 "$url/healthz"
  else
    while :; do
      code=$(curl --silent --output /dev/null --write-out '%{http_code}' --max-time 10 "$url/healthz" || true)
      [[ $code == 200 ]] && break
      if ((SECONDS >= deadline)); then
        log "gate: $url/healthz answered ${code:-nothing} until the deadline"
        return 1
      fi
      sleep "$POLL_INTERVAL"
    done
  fi
  if ! smoke "$url"; then
    log "gate: the smoke session against $url failed"
    return 1
  fi
  log "gate: $url is healthy"
}

swap() {
  run az webapp deployment slot swap --resource-group "$RESOURCE_GROUP" --name "$APP" \
    --slot "$SLOT" --target-slot production
}

host_of() {
  local slot_args=()
  [[ -n ${1:-} ]] && slot_args=(--slot "$1")
  query "<${APP}${1:+-$1}.azurewebsites.net>" az webapp show --resource-group "$RESOURCE_GROUP" --name "$APP" \
    "${slot_args[@]}" --query defaultHostName --output tsv
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
  # `az acr build` uploads the current directory: always the repository root.
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  STARTED=true
  trap report EXIT

  local login_server staging_url
  login_server=$(query "<$REGISTRY.azurecr.io>" az acr show --name "$REGISTRY" --query loginServer --output tsv)
  IMAGE_REF="$login_server/$IMAGE:$TAG"
  staging_url="https://$(host_of "$SLOT")"
  PROD_URL="https://$(host_of)"

  if [[ $SKIP_BUILD == false ]]; then
    run az acr build --registry "$REGISTRY" --image "$IMAGE:$TAG" .
  fi
  # linuxFxVersion only: the slot keeps pulling with its managed identity (acrUseManagedIdentityCreds).
  run az webapp config set --resource-group "$RESOURCE_GROUP" --name "$APP" --slot "$SLOT" \
    --linux-fx-version "DOCKER|$IMAGE_REF" --output none
  run az webapp restart --resource-group "$RESOURCE_GROUP" --name "$APP" --slot "$SLOT"

  if ! gate "$staging_url"; then
    RESULT="staging gate failed; not swapped, production untouched"
    exit 1
  fi
  swap
  if ! gate "$PROD_URL"; then
    log "production verification failed: swapping back"
    swap
    RESULT="production verification failed; swapped back to the previous image"
    exit 1
  fi
  if [[ $DRY_RUN == true ]]; then RESULT="dry run: nothing was run"; else RESULT="released"; fi
}

main "$@"
