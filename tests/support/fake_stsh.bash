#!/bin/bash
# Fake stsh for tests/shell_hooks_test.ts: logs its argv, answers from ./scenario.
here=${BASH_SOURCE[0]%/*}
printf '%s\n' "$*" >>"$here/log"
HOOK_STATUS=0 EXPIRES=
# shellcheck source=/dev/null # written by the test
[[ -f $here/scenario ]] && . "$here/scenario"
shell=${2-}
q() { local s=${1//\'/\'\\\'\'}; printf "'%s'" "$s"; }
# fish single quotes (\\ and \' escaped), a newline written outside them as \n.
fq() { local s=${1//\\/\\\\}; s=${s//\'/\\\'}; s=${s//$'\n'/\'\\n\'}; printf "'%s'" "$s"; }
j() {
  local s=$1
  s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\r'/\\r}; s=${s//$'\t'/\\t}
  printf '"%s"' "$s"
}
# emit NAME VALUE … as a change set for $shell; the value "-" unsets
emit() {
  local first=1 out=
  if [[ $shell == pwsh ]]; then
    out='{'
    while (($#)); do
      [[ $first == 1 ]] || out+=','
      first=0
      if [[ $2 == - ]]; then out+="$(j "$1"):null"; else out+="$(j "$1"):$(j "$2")"; fi
      shift 2
    done
    # Names outside the allow-list must be ignored by the pwsh hook.
    printf '%s,"EVIL":"pwned","Path":"/nowhere"}\n' "$out"
  elif [[ $shell == fish ]]; then
    while (($#)); do
      if [[ $2 == - ]]; then printf 'set -e %s\n' "$1"; else printf 'set -gx %s %s\n' "$1" "$(fq "$2")"; fi
      shift 2
    done
    # Names outside the allow-list, and lines that are not records, must be ignored.
    printf '%s\n' "set -gx EVIL 'pwned'" "set -gx PATH '/nowhere'" "set -e PATH" \
      "echo pwned > PWNED" "set -gx AWS_REGION 'x' ; set -gx EVIL 'y'"
  else
    while (($#)); do
      if [[ $2 == - ]]; then printf 'unset %s\n' "$1"; else printf 'export %s=%s\n' "$1" "$(q "$2")"; fi
      shift 2
    done
  fi
}
tag() { # the nearest tag, read as data: sets root and prof
  local d=$PWD
  root='' prof=''
  while :; do
    if [[ -f $d/.aws-profile ]]; then root=${d:-/}; IFS= read -r prof <"$d/.aws-profile"; return 0; fi
    [[ $d == */* ]] || return 1
    d=${d%/*}
  done
}
creds() {
  emit AWS_ACCESS_KEY_ID AKIAFAKE AWS_SESSION_TOKEN "$1" STSH_PROFILE "$prof" STSH_ROOT "$root" \
    STSH_EXPIRES "${EXPIRES:-$((EPOCHSECONDS + 3600))}"
}
restore() { emit AWS_ACCESS_KEY_ID - AWS_SESSION_TOKEN - STSH_PROFILE - STSH_ROOT - STSH_EXPIRES - STSH_PINNED -; }
case ${1-} in
hook)
  shift 2
  prompt='' quiet='' assume='' unassume=''
  while (($#)); do
    case $1 in
    --prompt) prompt=1 ;;
    --quiet) quiet=1 ;;
    --assume) assume=$2; shift ;;
    --unassume) unassume=1 ;;
    esac
    shift
  done
  if [[ -n $assume ]]; then
    emit AWS_ACCESS_KEY_ID AKIAASSUMED STSH_PROFILE "$assume" STSH_PINNED 1 STSH_ROOT '' \
      STSH_EXPIRES "${EXPIRES:-$((EPOCHSECONDS + 3600))}"
    exit 0
  fi
  if [[ -n $unassume ]] || ! tag; then
    restore
    exit 0
  fi
  if [[ -n $prompt ]]; then
    # Like the real one: Ctrl-C ends the question line and exits 130. With DIE_ON_INT=1 it
    # dies from the signal instead, as a program without a handler would.
    [[ -n ${DIE_ON_INT-} ]] || trap 'printf "\n" >/dev/tty; exit 130' INT
    printf 'MFA code: ' >/dev/tty
    IFS= read -r code </dev/tty || exit 130
    [[ -n $code ]] || exit 130
    creds "code-$code"
    exit 0
  fi
  case $HOOK_STATUS in
  0) creds session ;;
  2)
    [[ -n $quiet ]] || printf "fake: ./.aws-profile asks for '%s': run stsh allow\n" "$prof" >&2
    restore
    ;;
  4) restore ;;
  esac
  exit "$HOOK_STATUS"
  ;;
profiles) printf '%s\n' dev prod prod-eu staging ;;
complete)
  # `complete -- WORD…`: like the real one, the candidates that start with the last word —
  # subcommands after `stsh`, else profile names (and --clear for `assume`).
  shift 2
  cur=${!#} all=(dev prod prod-eu staging)
  if [[ $1 == stsh && $# == 2 ]]; then all=(credential-process current env exec); fi
  if [[ $1 == assume ]]; then all+=(--clear); fi
  for c in "${all[@]}"; do [[ $c != "$cur"* ]] || printf '%s\n' "$c"; done
  ;;
current) echo "fake-current" ;;
fail) exit 3 ;;
allow | deny | tag) echo "fake-stsh $*"; exit "${REFUSE:-0}" ;;
*) echo "fake-stsh $*" ;;
esac
