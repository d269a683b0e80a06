# stsh shell integration for bash (4.4 or newer; 5.1+ recommended).
# Add to ~/.bashrc, after other prompt tools except starship, which may come before or after:
#   eval "$(stsh init bash)"          (or `stsh init bash --serve`: a local endpoint, not keys)
# `stsh init bash` prints this file with the quoted path of the program and the mode filled in.
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

# The flags of the mode `stsh init` was asked for (none, or --serve), passed to every
# `stsh hook` call. Sourced as it is in the source tree (no mode filled in), it means none.
__stsh_mode=(@STSH_MODE@)
if [[ ${__stsh_mode[0]-} == @* ]]; then
  __stsh_mode=()
fi
__stsh_modename=keys
if [[ ${__stsh_mode[0]-} == --serve ]]; then
  __stsh_modename=serve
fi

# A deadline no clock reaches: the prompt check never expires by itself.
__stsh_never=9223372036854775807
# This shell's reference file: its mtime is when the tag was last read (see __stsh_hook). The
# binary keeps the private run/ directory and sweeps references of shells long gone.
__stsh_ref=${STSH_HOME:-${HOME-}/.aws/stsh}/run/bash.$$

# Forget what was sent, so that the next prompt looks again (after `stsh allow|deny|tag|
# reload|clear`, after `assume`, and when this file is sourced). Without inherited state
# (STSH_ROOT empty) an untagged directory stays free: the key starts as "no tag". With
# inherited tag state it starts as a value no real key has ("\n"), so the first prompt lets
# the binary confirm or undo what the parent shell had.
__stsh_reset() {
  # Not a directory $PWD can name (those start with /): the next prompt takes the full check.
  __stsh_pwd=$'\n'
  __stsh_tagfile=
  __stsh_root=
  __stsh_rootkey=
  __stsh_tried=
  __stsh_noticed=()
  if [[ -n ${STSH_ROOT-} ]]; then
    __stsh_key=$'\n'
  else
    __stsh_key=
  fi
  __stsh_arm
}

# Prepare what the fast path in __stsh_hook compares, from the state as it is now:
#  - __stsh_seen: the $PWD (as the last walk saw it: after __stsh_reset, a value no $PWD has)
#    and the STSH_EXPIRES, STSH_REFRESH_MARGIN and STSH_PINNED this was computed for, joined
#    (any change to them sends the next prompt through the full check);
#  - __stsh_deadline: the epoch second from which the credentials count as near expiry
#    (STSH_EXPIRES - margin), or never when none are active or that expiry was already tried.
#    Without $EPOCHSECONDS (bash 4.4) it is -1 while credentials are active: every prompt
#    then takes the full check, which reads the clock with printf (still no process);
#  - __stsh_free: set when the key cannot matter (pinned by `assume`, or no tag here and none
#    sent), so the fast path need not read a tag at all.
__stsh_arm() {
  \builtin local expires="${STSH_EXPIRES-}" margin="${STSH_REFRESH_MARGIN-}"
  __stsh_seen=$__stsh_pwd:${STSH_EXPIRES-}:${STSH_REFRESH_MARGIN-}:${STSH_PINNED-}
  __stsh_deadline=$__stsh_never
  # Digits only: anything else is ignored rather than fed to arithmetic, which would run it.
  if [[ -n $expires && $expires != *[!0-9]* && $expires != "$__stsh_tried" ]]; then
    if [[ -z $margin || $margin == *[!0-9]* ]]; then
      margin=600
    fi
    if [[ -n ${EPOCHSECONDS-} ]]; then
      __stsh_deadline=$((10#$expires - 10#$margin))
    else
      __stsh_deadline=-1
    fi
  fi
  __stsh_free=
  if [[ ${STSH_PINNED-} == 1 || (-z $__stsh_tagfile && -z $__stsh_key) ]]; then
    __stsh_free=1
  fi
}

# Run `stsh hook bash MODE ARGS…` with stdout captured, apply the change set, and put the exit
# status in __stsh_rc. The caller holds the INT trap (see __stsh_run).
__stsh_call() {
  \builtin local out
  __stsh_rc=0
  # The user's saved values go to this one process only: __stsh_prev is not exported.
  out=$(STSH_PREV=${__stsh_prev-} STSH_SHELL_PID=$$ __stsh_bin hook bash "${__stsh_mode[@]}" "$@") || __stsh_rc=$?
  # The binary's stdout is shell code by contract: only `export NAME='value'` / `unset NAME`
  # lines for a fixed list of names and `__stsh_prev='…'`, values single-quoted. Tag contents
  # never get here as code.
  if [[ -n $out ]]; then
    \builtin eval "$out"
  fi
}

# The prompt hook (PROTOCOL.md "On every prompt"). This is the fast path, run on every prompt:
# one test of what the full check would look at — the same $PWD and state variables (one
# string compare), then, only where a tag can matter, the tag as it was at the last full read
# (still a regular file, and older than this shell's reference file, written just before that
# read: two stats, nothing opened — an edit, or a FIFO or a huge file swapped in, is not
# older; "older", not "not newer", so an edit in the same clock tick as the read is read
# again; no reference file means every prompt reads), then the clock before the prepared
# deadline. Anything else goes to the full check. No process, no subshell, no local.
#
# Kept this small on purpose, and it does not keep $? (bash puts the user's $? and PIPESTATUS
# back after PROMPT_COMMAND and before each element of an array PROMPT_COMMAND, and
# bash-preexec and starship_precmd hand it to each entry): bash copies a function's whole body
# at every call, and every command in it costs (callgrind, bash 5.2, per unchanged prompt over
# no hook: 47k instructions for a function that only keeps $?, 138k for this hook before it
# was cut to one compare and one clock test; the clock as an integer `-lt` inside the same
# `[[ ]]` saves another 6k over a separate `(( ))`, one command less). Where another command
# follows in the same PROMPT_COMMAND string, __stsh_hook_keep runs it and returns the user's $?
# for that command.
__stsh_hook() {
  [[ ${PWD-}:${STSH_EXPIRES-}:${STSH_REFRESH_MARGIN-}:${STSH_PINNED-} == "$__stsh_seen" &&
    (-n $__stsh_free || (-f $__stsh_tagfile && $__stsh_tagfile -ot $__stsh_ref)) &&
    ${EPOCHSECONDS:-0} -lt $__stsh_deadline ]] || __stsh_check
}

# The hook where a later command in the same string reads $? (see __stsh_install).
__stsh_hook_keep() {
  __stsh_st=$?
  __stsh_hook
  \builtin return "$__stsh_st"
}

# The full check: whatever the fast path could not decide (every `cd` comes here). When the
# binary must run, __stsh_run does that.
__stsh_check() {
  \builtin local key='' content='' expires="${STSH_EXPIRES-}" margin='' now near='' \
    deadline="$__stsh_never" d

  # 1. Walk up only when the directory changed, or the entry found last time went away: from
  # $PWD to the nearest .aws-profile (no process), setting __stsh_tagfile (empty when none),
  # __stsh_root (its directory) and __stsh_rootkey (the root with its length in front, so that
  # no root + content can look like another). Any entry of that name but a directory counts:
  # a FIFO or a dangling link is the binary's to refuse (once, with a reason), never opened
  # here and never skipped for a tag above. (Here rather than in a function of its own: bash
  # copies a function's body at every call, and every `cd` walks.)
  if [[ ${PWD-} != "$__stsh_pwd" ]] || [[ -n $__stsh_tagfile && ! -L $__stsh_tagfile &&
    (! -e $__stsh_tagfile || -d $__stsh_tagfile) ]]; then
    __stsh_pwd=${PWD-} __stsh_tagfile= __stsh_root= __stsh_rootkey= d=${PWD-}
    while :; do
      if [[ -L $d/.aws-profile || (-e $d/.aws-profile && ! -d $d/.aws-profile) ]]; then
        __stsh_tagfile=$d/.aws-profile __stsh_root=${d:-/}
        __stsh_rootkey=${#__stsh_root}:$__stsh_root
        \builtin break
      fi
      case $d in
      */*) d=${d%/*} ;;
      *) \builtin break ;;
      esac
    done
  fi

  # 2. The key: the root + the tag's whole content (at most 257 characters, up to a NUL),
  # read only when it can be a tag; otherwise the root alone, which no readable tag's key is.
  # It is only ever compared, never run or printed.
  if [[ -n $__stsh_tagfile ]]; then
    key=$__stsh_rootkey
    if [[ -f $__stsh_tagfile && -s $__stsh_tagfile && -O $__stsh_tagfile &&
      -r $__stsh_tagfile ]]; then
      # The reference for the fast path first (an edit during the read is then newer), `>|`
      # for noclobber; no reference (no run/ directory yet): every prompt reads, as it must.
      # (`|| :`: the read ends at the end of the file with status 1, which must not reach
      # the user's ERR trap or set -e.)
      { { : >|"$__stsh_ref"; } 2>/dev/null || :; }
      { IFS= \builtin read -r -d '' -n 257 -u 3 content 3<"$__stsh_tagfile" || :; } 2>/dev/null
      key+=:$content
    fi
  fi

  # 3. Expiry: only looked at while credentials are active (STSH_EXPIRES set, digits only).
  # (Few commands from here to the early return: this is what every `cd` pays for.)
  if [[ -n $expires && $expires != *[!0-9]* ]]; then
    margin=${STSH_REFRESH_MARGIN-}
    [[ -n $margin && $margin != *[!0-9]* ]] || margin=600
    deadline=$((10#$expires - 10#$margin)) now=${EPOCHSECONDS-}
    if [[ -z $now ]]; then
      \builtin printf -v now '%(%s)T' -1 # bash 4.4: strftime builtin, no process
    fi
    ((10#$now < deadline)) || near=1
    # bash 4.4 (no $EPOCHSECONDS): the fast path leaves every prompt to this full check.
    [[ -n ${EPOCHSECONDS-} ]] || deadline=-1
  fi

  # Return at once unless the key changed (ignored while an `assume` pins the profile) or the
  # credentials are near expiry and that expiry was not tried yet; the fast path is prepared
  # again from the values at hand (what __stsh_arm does, without computing them twice).
  if [[ ${STSH_PINNED-} == 1 || $key == "$__stsh_key" ]]; then
    if [[ -z $near || $expires == "$__stsh_tried" ]]; then
      __stsh_seen=$__stsh_pwd:${STSH_EXPIRES-}:${STSH_REFRESH_MARGIN-}:${STSH_PINNED-} \
        __stsh_deadline=$deadline __stsh_free=
      [[ $expires != "$__stsh_tried" ]] || __stsh_deadline=$__stsh_never
      [[ ${STSH_PINNED-} != 1 && (-n $__stsh_tagfile || -n $__stsh_key) ]] || __stsh_free=1
      \builtin return 0
    fi
  fi
  __stsh_run "$key" "$expires" "$margin" "$near"
}

# The slow path: start the binary. $1 key, $2 expires, $3 margin, $4 near (set or empty).
__stsh_run() {
  \builtin local key="$1" expires="$2" margin="$3" near="$4" why oldtrap i
  \builtin local -a flags
  flags=()

  # 4. Record the attempt before starting the binary, so a cancelled or failed attempt is
  # not repeated on the next Enter.
  # Why, for STSH_DEBUG=1 (paths and names quoted by @Q, control characters made visible).
  why=${STSH_PROFILE-}
  why="${why@Q} ends at $expires (margin $margin s)"
  if [[ ${STSH_PINNED-} != 1 && $key != "$__stsh_key" ]]; then
    if [[ -n $__stsh_tagfile ]]; then
      why="key changed: ${__stsh_tagfile@Q}"
    else
      why="key changed: no tag here"
    fi
    __stsh_key=$key
  elif [[ ${STSH_PINNED-} == 1 ]]; then
    why="pinned renewal: $why"
  else
    why="near expiry: $why"
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
  # STSH_DEBUG=1: why the binary starts, on this slow path only; its own lines follow.
  if [[ ${STSH_DEBUG-} == 1 ]]; then
    \builtin printf 'stsh: debug: hook bash: %s\n' "$why" >&2
  fi

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
  __stsh_arm
}

# `assume PROFILE` pins PROFILE, `assume` shows what is active, `assume --clear` restores.
assume() {
  \builtin local rc=0 out
  # More than one word, or an option other than --clear: the usage, and nothing runs.
  if (($# > 1)) || [[ ${1-} == -* && $1 != --clear ]]; then
    \builtin printf 'usage: assume [PROFILE | --clear]\n' >&2
    \builtin return 2
  fi
  case ${1-} in
  '')
    __stsh_bin current
    \builtin return
    ;;
  --clear)
    out=$(STSH_PREV=${__stsh_prev-} STSH_SHELL_PID=$$ __stsh_bin hook bash "${__stsh_mode[@]}" --unassume) || rc=$?
    ;;
  *)
    out=$(STSH_PREV=${__stsh_prev-} STSH_SHELL_PID=$$ __stsh_bin hook bash "${__stsh_mode[@]}" --assume "$1" \
      --prompt) || rc=$?
    ;;
  esac
  if [[ -n $out ]]; then
    \builtin eval "$out"
  fi
  __stsh_reset
  \builtin return "$rc"
}

# The same commands as the program; those that change what a directory means make the next
# prompt look again, and `stsh doctor` learns how this shell's hook is installed.
stsh() {
  \builtin local rc=0 sub='' a
  # The subcommand: the first word that is not an option (--debug may come first).
  for a in "$@"; do
    case $a in
    --) \builtin break ;;
    -*) ;;
    *)
      sub=$a
      \builtin break
      ;;
    esac
  done
  if [[ $sub == doctor ]]; then
    __stsh_where
    STSH_HOOK_STATE="shell=bash version=${BASH_VERSION-} mode=$__stsh_modename hook=$__stsh_w" \
      __stsh_bin "$@" || rc=$?
  else
    __stsh_bin "$@" || rc=$?
  fi
  # A refused allow/deny/tag changed nothing: looking again would only say the refusal twice.
  case $sub in
  allow | deny | tag) [[ $rc != 0 ]] || __stsh_reset ;;
  reload | clear) __stsh_reset ;;
  esac
  \builtin return "$rc"
}

# Where the hook is for `stsh doctor` (PROTOCOL.md "Other commands"): first (before every
# other prompt command), late (it runs, after another one) or missing (something replaced
# PROMPT_COMMAND or precmd_functions after the init line).
__stsh_where() {
  \builtin local e all=''
  __stsh_w=missing
  if [[ -n ${bash_preexec_imported-}${__bp_imported-} ]]; then
    for e in "${precmd_functions[@]}"; do
      all+=$e';'
    done
  fi
  if __stsh_pc_is_array; then
    for e in "${PROMPT_COMMAND[@]}"; do
      all+=$e';'
    done
  else
    all+=${PROMPT_COMMAND-}';'
  fi
  if [[ $all == *starship_precmd* ]]; then
    all=${all/starship_precmd/${STARSHIP_PROMPT_COMMAND-};}
  fi
  all=${all//__stsh_hook_keep/__stsh_hook}
  while [[ $all == [[:space:]\;]* ]]; do all=${all#?}; done
  if [[ $all == __stsh_hook[[:space:]\;]* ]]; then
    __stsh_w=first
  elif [[ $all == *[[:space:]\;]__stsh_hook[[:space:]\;]* ]]; then
    __stsh_w=late
  fi
}

# Add to COMPREPLY what `stsh complete -- WORD…` offers, one line a candidate, each added as
# is (never through `compgen -W`, which would expand `$(…)` found in a profile name) or, when
# it holds characters the shell would read, quoted.
__stsh_candidates() {
  \builtin local line q
  while IFS= \builtin read -r line; do
    if [[ -n $line ]]; then
      if [[ $line == *[!A-Za-z0-9._@+=,:/-]* ]]; then
        \builtin printf -v q '%q' "$line"
        COMPREPLY+=("$q")
      else
        COMPREPLY+=("$line")
      fi
    fi
  done < <(__stsh_bin complete -- "$@" 2>/dev/null)
}

# Tab completion (only when Tab is pressed): `stsh complete -- WORD…` knows the subcommands,
# flags, --format values and profile names. Where it offers nothing, the shell's own: a
# command after `stsh exec PROFILE --`, directories for `tag`/`allow`/`deny`, else file names.
__stsh_complete() {
  \builtin local cur="${COMP_WORDS[COMP_CWORD]-}" line sub='' i n=0 at=-1
  \builtin local -a words
  COMPREPLY=()
  words=("${COMP_WORDS[@]:1:COMP_CWORD-1}")
  __stsh_candidates stsh "${words[@]}" "$cur"
  ((${#COMPREPLY[@]} == 0)) || \builtin return 0

  # Nothing from stsh: which argument is this?
  for ((i = 0; i < ${#words[@]}; i++)); do
    if [[ -z $sub ]]; then
      [[ ${words[i]} == -* ]] || sub=${words[i]}
    elif [[ ${words[i]} == -- ]]; then
      at=$((i + 1))
      \builtin break
    elif [[ ${words[i]} == --profile || ${words[i]} == -t || ${words[i]} == --token-code ]]; then
      i=$((i + 1)) # its value
    elif [[ ${words[i]} != -* ]]; then
      n=$((n + 1))
      # exec PROFILE COMMAND: without `--`, the word after the profile is the command.
      if ((n == 2)); then
        at=$i
        \builtin break
      fi
    fi
  done
  case $sub in
  exec)
    if ((at < 0 && n == 1)); then
      at=${#words[@]}
    fi
    if ((at == ${#words[@]})); then
      # The command: names of commands, functions, aliases and builtins.
      while IFS= \builtin read -r line; do
        COMPREPLY+=("$line")
      done < <(\builtin compgen -c -- "$cur")
      \builtin return 0
    elif ((at >= 0)) && \builtin declare -F _command_offset >/dev/null; then
      # After it, that command's own completion (bash-completion, when loaded).
      _command_offset $((at + 1))
      \builtin return 0
    fi
    ;;
  tag | allow | deny)
    \builtin compopt -o dirnames 2>/dev/null
    \builtin return 0
    ;;
  esac
  \builtin compopt -o default 2>/dev/null
}

# Tab completion of profile names for `assume`.
__stsh_complete_assume() {
  \builtin local cur="${COMP_WORDS[COMP_CWORD]-}"
  COMPREPLY=()
  if ((COMP_CWORD != 1)); then
    \builtin return 0
  fi
  # --clear and the profile names that start with the word, from the program (as for stsh).
  __stsh_candidates assume "$cur"
}

# Take out every hook entry an earlier sourcing may have added, wherever it went.
__stsh_strip() {
  # $1: a command string; sets __stsh_s to it without the `__stsh_hook` (or
  # `__stsh_hook_keep`) entry.
  __stsh_s=${1//__stsh_hook_keep/__stsh_hook}
  __stsh_s=${__stsh_s//__stsh_hook;/}
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
      if [[ $e != __stsh_hook && $e != __stsh_hook_keep ]]; then
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
#    string form a later entry sees $? (__stsh_hook_keep returns it) but a one-element
#    PIPESTATUS, as with any function placed first; PS1 and the next command line see both
#    intact. Alone in a string (or in the forms above) the hook need not keep $?: bash puts it
#    back after PROMPT_COMMAND, and __stsh_hook saves the cost.
__stsh_install() {
  \builtin local rest
  __stsh_uninstall
  if [[ -n ${bash_preexec_imported-}${__bp_imported-} ]]; then
    precmd_functions=(__stsh_hook "${precmd_functions[@]}")
  elif __stsh_pc_is_array && ((${#PROMPT_COMMAND[@]} > 0)); then
    PROMPT_COMMAND=(__stsh_hook "${PROMPT_COMMAND[@]}")
  elif [[ ${PROMPT_COMMAND-} == *starship_precmd* ]]; then
    rest=${STARSHIP_PROMPT_COMMAND-}
    STARSHIP_PROMPT_COMMAND=${rest:+__stsh_hook_keep;$rest}
    STARSHIP_PROMPT_COMMAND=${STARSHIP_PROMPT_COMMAND:-__stsh_hook}
  else
    # Trim leading and trailing blanks and `;` so the result never contains `;;`.
    rest=${PROMPT_COMMAND-}
    while [[ $rest == [[:space:]\;]* ]]; do rest=${rest#?}; done
    while [[ $rest == *[[:space:]\;] ]]; do rest=${rest%?}; done
    # shellcheck disable=SC2178 # the string form on purpose (element 0 on older bash)
    PROMPT_COMMAND=${rest:+__stsh_hook_keep;$rest}
    PROMPT_COMMAND=${PROMPT_COMMAND:-__stsh_hook}
  fi
}

# State is set up once per shell: sourcing this file again keeps what the hook knows (and
# sends the next prompt through the full check, which prepares the fast path again).
__stsh_rc=0
__stsh_st=0
if [[ -z ${__stsh_key+set} ]]; then
  __stsh_reset
else
  __stsh_pwd=$'\n'
  __stsh_arm
fi
# The saved values live in this shell only (an older stsh exported them: take them back).
if [[ -z ${__stsh_prev+set} ]]; then
  __stsh_prev=${STSH_PREV-}
fi
\builtin unset STSH_PREV
if ((BASH_VERSINFO[0] > 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] >= 4))); then
  __stsh_install
  \builtin complete -F __stsh_complete stsh
  \builtin complete -F __stsh_complete_assume assume
else
  \builtin printf 'stsh: the prompt hook needs bash 4.4 or newer (this is %s)\n' "$BASH_VERSION" >&2
fi
