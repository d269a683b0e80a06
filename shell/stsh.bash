# stsh shell integration for bash (4.4 or newer; 5.1+ recommended).
# Add to ~/.bashrc, after other prompt tools except starship, which may come before or after:
#   eval "$(stsh init bash)"
# `stsh init bash` prints this file with the quoted path of the program filled in.
# The contract with the binary is shell/PROTOCOL.md. Sourcing this file prints nothing and
# starts no process; the first prompt does the first check.
#
# Everything runs through `\builtin` / `\command` so aliases and functions named like builtins
# cannot change it, and every expansion has a default so `set -u` is safe. Note that
# `\builtin local x=$y` is not an assignment to bash's parser: $y is word-split and globbed
# like any argument, so such values are always quoted ("$y").


# Run the program itself: `command` skips functions, so the `stsh` wrapper below never recurses.
__stsh_bin() {
  \command @STSH_BIN@ "$@"
}

# Forget what was sent, so that the next prompt looks again (after `stsh allow|deny|tag|
# reload|clear`, after `assume`, and when this file is sourced). Without inherited state
# (STSH_ROOT empty) an untagged directory stays free: the key starts as "no tag". With
# inherited tag state it starts as a value no real key has ("\n"), so the first prompt lets
# the binary confirm or undo what the parent shell had.
__stsh_reset() {
  __stsh_pwd=
  __stsh_tagfile=
  __stsh_root=
  __stsh_tried=
  __stsh_noticed=()
  if [[ -n ${STSH_ROOT-} ]]; then
    __stsh_key=$'\n'
  else
    __stsh_key=
  fi
}

# Walk up from $PWD to the nearest .aws-profile (no process).
# Sets __stsh_tagfile (empty when none) and __stsh_root (its directory).
__stsh_find() {
  \builtin local d="${PWD-}"
  __stsh_tagfile=
  __stsh_root=
  while :; do
    # Any entry of that name but a directory: a FIFO or a dangling link is the binary's to
    # refuse (once, with a reason), never opened here and never skipped for a tag above.
    if [[ -L $d/.aws-profile || (-e $d/.aws-profile && ! -d $d/.aws-profile) ]]; then
      __stsh_tagfile=$d/.aws-profile
      __stsh_root=${d:-/}
      \builtin return 0
    fi
    case $d in
    */*) d=${d%/*} ;;
    *) \builtin return 0 ;;
    esac
  done
}

# Run `stsh hook bash ARGS…` with stdout captured, apply the change set, and put the exit
# status in __stsh_rc. The caller holds the INT trap (see __stsh_hook).
__stsh_call() {
  \builtin local out
  __stsh_rc=0
  # The user's saved values go to this one process only: __stsh_prev is not exported.
  out=$(STSH_PREV=${__stsh_prev-} __stsh_bin hook bash "$@") || __stsh_rc=$?
  # The binary's stdout is shell code by contract: only `export NAME='value'` / `unset NAME`
  # lines for a fixed list of names and `__stsh_prev='…'`, values single-quoted. Tag contents
  # never get here as code.
  if [[ -n $out ]]; then
    \builtin eval "$out"
  fi
}

# The prompt hook (PROTOCOL.md "On every prompt").
__stsh_hook() {
  # The user's status, returned at the end: later PROMPT_COMMAND entries and PS1 see it.
  # (bash itself restores $? and PIPESTATUS for PS1 and the next command line after
  # PROMPT_COMMAND; it does not restore them between entries of a string PROMPT_COMMAND.)
  \builtin local __stsh_st="$?"
  \builtin local key content='' expires margin now near='' oldtrap i
  \builtin local -a flags
  flags=()

  # 1. Walk up only when the directory changed (or the tag file we knew went away).
  if [[ ${PWD-} != "${__stsh_pwd-}" || (-n ${__stsh_tagfile-} && ! -f ${__stsh_tagfile-}) ]]; then
    __stsh_pwd=${PWD-}
    __stsh_find
  fi

  # 2. The key: root + "\n" + the tag's first line, read by the shell (no process; at most
  # 256 characters, so a huge file cannot stall the prompt). It is only ever compared.
  key=
  if [[ -n ${__stsh_tagfile-} ]]; then
    { IFS= \builtin read -r -n 256 content <"$__stsh_tagfile"; } 2>/dev/null
    key=${__stsh_root-}$'\n'$content
  fi

  # 3. Expiry: only looked at while credentials are active (STSH_EXPIRES set, digits only;
  # anything else is ignored rather than fed to arithmetic, which would evaluate it).
  expires=${STSH_EXPIRES-}
  if [[ -n $expires && $expires != *[!0-9]* ]]; then
    margin=${STSH_REFRESH_MARGIN-}
    if [[ -z $margin || $margin == *[!0-9]* ]]; then
      margin=600
    fi
    if [[ -n ${EPOCHSECONDS-} ]]; then
      now=$EPOCHSECONDS # bash >= 5.0
    else
      \builtin printf -v now '%(%s)T' -1 # bash 4.4: strftime builtin, no process
    fi
    if ((10#$now >= 10#$expires - 10#$margin)); then
      near=1
    fi
  fi

  # Return at once unless the key changed (ignored while an `assume` pins the profile) or the
  # credentials are near expiry and that expiry was not tried yet.
  if [[ ${STSH_PINNED-} == 1 || $key == "${__stsh_key-}" ]]; then
    if [[ -z $near || $expires == "${__stsh_tried-}" ]]; then
      \builtin return "$__stsh_st"
    fi
  fi

  # 4. Record the attempt before starting the binary, so a cancelled or failed attempt is
  # not repeated on the next Enter.
  if [[ ${STSH_PINNED-} != 1 ]]; then
    __stsh_key=$key
  fi
  if [[ -n $near ]]; then
    __stsh_tried=$expires
  fi
  for i in "${__stsh_noticed[@]}"; do
    if [[ $i == "$key" ]]; then
      flags=(--quiet)
      \builtin break
    fi
  done

  # 5. Run the binary. Ctrl-C: without a trap, SIGINT at the MFA question aborts this whole
  # function *and* PROMPT_COMMAND, bash sets $? to 130 and immediately draws a new prompt,
  # which runs PROMPT_COMMAND again (measured in a pty, bash 5.2). With a trap the shell
  # waits for the child, runs the trap and carries on, so the function ends normally and
  # returns the user's status. The trap is ':' and not '' on purpose: an ignored signal
  # stays ignored in the child, a trapped one is reset to the default on exec, so Ctrl-C
  # still reaches the binary (which exits 130). The user's own INT trap is put back after.
  oldtrap=$(\builtin trap -p INT) # one fork, only on this slow path
  \builtin trap -- ':' INT
  __stsh_call "${flags[@]}"
  case $__stsh_rc in
  2)
    if [[ ${#flags[@]} == 0 ]]; then
      __stsh_noticed+=("$key")
    fi
    ;;
  4)
    # MFA needed: ask on the terminal, but only where someone can answer.
    if [[ $- == *i* && -t 0 ]]; then
      __stsh_call --prompt "${flags[@]}"
    fi
    ;;
  esac
  if [[ -n $oldtrap ]]; then
    \builtin eval "$oldtrap"
  else
    \builtin trap -- - INT
  fi
  \builtin return "$__stsh_st"
}

# `assume PROFILE` pins PROFILE, `assume` shows what is active, `assume --clear` restores.
assume() {
  \builtin local rc=0 out
  case ${1-} in
  '')
    __stsh_bin current
    \builtin return
    ;;
  --clear)
    out=$(STSH_PREV=${__stsh_prev-} __stsh_bin hook bash --unassume) || rc=$?
    ;;
  -*)
    \builtin printf 'usage: assume [PROFILE | --clear]\n' >&2
    \builtin return 2
    ;;
  *)
    out=$(STSH_PREV=${__stsh_prev-} __stsh_bin hook bash --assume "$1" --prompt) || rc=$?
    ;;
  esac
  if [[ -n $out ]]; then
    \builtin eval "$out"
  fi
  __stsh_reset
  \builtin return "$rc"
}

# The same commands as the program; those that change what a directory means make the next
# prompt look again.
stsh() {
  \builtin local rc=0
  __stsh_bin "$@" || rc=$?
  case ${1-} in
  allow | deny | tag | reload | clear) __stsh_reset ;;
  esac
  \builtin return "$rc"
}

# Tab completion of profile names for `assume` (asks the program only when Tab is pressed).
__stsh_complete_assume() {
  \builtin local cur="${COMP_WORDS[COMP_CWORD]-}" name
  COMPREPLY=()
  if ((COMP_CWORD != 1)); then
    \builtin return 0
  fi
  if [[ --clear == "$cur"* ]]; then
    COMPREPLY+=(--clear)
  fi
  # A loop rather than `compgen -W`, which would expand $(…) found in a profile name.
  while IFS= \builtin read -r name; do
    if [[ -n $name && $name == "$cur"* ]]; then
      COMPREPLY+=("$name")
    fi
  done < <(__stsh_bin profiles --names 2>/dev/null)
}

# Take out every hook entry an earlier sourcing may have added, wherever it went.
__stsh_strip() {
  # $1: a command string; sets __stsh_s to it without the `__stsh_hook` entry.
  __stsh_s=${1//__stsh_hook;/}
  __stsh_s=${__stsh_s%;__stsh_hook}
  if [[ $__stsh_s == __stsh_hook ]]; then
    __stsh_s=
  fi
}

__stsh_uninstall() {
  \builtin local e
  \builtin local -a kept
  if [[ ${precmd_functions+set} == set ]] || \builtin declare -p precmd_functions &>/dev/null; then
    kept=()
    for e in "${precmd_functions[@]}"; do
      if [[ $e != __stsh_hook ]]; then
        kept+=("$e")
      fi
    done
    precmd_functions=("${kept[@]}")
  fi
  if [[ -n ${STARSHIP_PROMPT_COMMAND-} ]]; then
    __stsh_strip "$STARSHIP_PROMPT_COMMAND"
    STARSHIP_PROMPT_COMMAND=$__stsh_s
  fi
  if __stsh_pc_is_array; then
    kept=()
    for e in "${PROMPT_COMMAND[@]}"; do
      __stsh_strip "$e"
      if [[ -n $__stsh_s ]]; then
        kept+=("$__stsh_s")
      fi
    done
    PROMPT_COMMAND=("${kept[@]}")
  elif [[ -n ${PROMPT_COMMAND-} ]]; then
    __stsh_strip "$PROMPT_COMMAND"
    PROMPT_COMMAND=$__stsh_s
  fi
  \builtin unset __stsh_s
}

# True when PROMPT_COMMAND is an array that bash runs element by element (bash >= 5.1).
# (Older bash runs only element 0, which the string code handles.) No fork: ${var@a}.
__stsh_pc_is_array() {
  if ((BASH_VERSINFO[0] < 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] < 1))); then
    \builtin return 1
  fi
  \builtin declare -p PROMPT_COMMAND &>/dev/null || \builtin return 1
  \builtin local -
  \builtin set +u
  [[ ${PROMPT_COMMAND@a} == *a* ]]
}

# Install (hooks.md "Recommended for bash"):
#  - bash-preexec loaded: first in precmd_functions (it hands every entry the user's $? and
#    keeps BP_PIPESTATUS for themes);
#  - PROMPT_COMMAND is an array (bash >= 5.1): first element; bash restores $? and
#    PIPESTATUS before every element, so going first costs later entries nothing;
#  - starship already owns the string PROMPT_COMMAND: into STARSHIP_PROMPT_COMMAND, which
#    starship_precmd evals after it has captured $? and PIPESTATUS;
#  - otherwise prepend to the string, so credentials change before a theme draws PS1. In the
#    string form a later entry sees $? (we return it) but a one-element PIPESTATUS, as with any
#    function placed first; PS1 and the next command line see both intact.
__stsh_install() {
  \builtin local rest
  __stsh_uninstall
  if [[ -n ${bash_preexec_imported-}${__bp_imported-} ]]; then
    precmd_functions=(__stsh_hook "${precmd_functions[@]}")
  elif __stsh_pc_is_array && ((${#PROMPT_COMMAND[@]} > 0)); then
    PROMPT_COMMAND=(__stsh_hook "${PROMPT_COMMAND[@]}")
  elif [[ ${PROMPT_COMMAND-} == *starship_precmd* ]]; then
    rest=${STARSHIP_PROMPT_COMMAND-}
    STARSHIP_PROMPT_COMMAND=__stsh_hook${rest:+;$rest}
  else
    # Trim leading and trailing blanks and `;` so the result never contains `;;`.
    rest=${PROMPT_COMMAND-}
    while [[ $rest == [[:space:]\;]* ]]; do rest=${rest#?}; done
    while [[ $rest == *[[:space:]\;] ]]; do rest=${rest%?}; done
    # shellcheck disable=SC2178 # the string form on purpose (element 0 on older bash)
    PROMPT_COMMAND=__stsh_hook${rest:+;$rest}
  fi
}

# State is set up once per shell: sourcing this file again keeps what the hook knows.
__stsh_rc=0
if [[ -z ${__stsh_key+set} ]]; then
  __stsh_reset
fi
# The saved values live in this shell only (an older stsh exported them: take them back).
if [[ -z ${__stsh_prev+set} ]]; then
  __stsh_prev=${STSH_PREV-}
fi
\builtin unset STSH_PREV
if ((BASH_VERSINFO[0] > 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] >= 4))); then
  __stsh_install
  \builtin complete -F __stsh_complete_assume assume
else
  \builtin printf 'stsh: the prompt hook needs bash 4.4 or newer (this is %s)\n' "$BASH_VERSION" >&2
fi
