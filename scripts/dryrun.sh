# shellcheck shell=bash
# Shared by azdeploy.sh and scripts/rollout.sh: how a command is shown, run, or only shown under
# --dry-run (the caller sets DRY_RUN=true|false). Sourced, never run.

show() { printf '+' >&2; printf ' %q' "$@" >&2; printf '\n' >&2; }

# A command that changes something: printed instead of run under --dry-run.
run() {
  if [[ $DRY_RUN == true ]]; then show "$@"; return 0; fi
  "$@"
}

# A read-only query whose output is a value; under --dry-run the placeholder stands in for the answer.
query() {
  local placeholder=$1
  shift
  if [[ $DRY_RUN == true ]]; then
    show "$@"
    [[ -z $placeholder ]] || printf '%s\n' "$placeholder"
    return 0
  fi
  "$@"
}
