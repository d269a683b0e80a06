# stsh shell integration for zsh (5.1 or newer).
# Add to ~/.zshrc (before or after compinit; without it Tab completion works too):
#   eval "$(stsh init zsh)"          (or `stsh init zsh --serve`: a local endpoint, not keys)
# `stsh init zsh` prints this file with the quoted path of the program and the mode filled in.
# The contract with the binary is shell/PROTOCOL.md. Sourcing this file prints nothing and
# starts no process; the first prompt does the first check.
#
# Every function but the prompt's fast path runs under `emulate -L zsh` so the user's options
# (ksh_arrays, sh_word_split, nounset, warn_create_global, err_exit, …) cannot change it; the
# fast path is written so that none of them matters (scalars only, every expansion quoted or
# inside [[ ]], every command that may fail inside a condition). Globals are declared with
# `typeset -g` so the init also works when a plugin manager evaluates it inside a function.

# The clock for the expiry check, without a process.
\builtin zmodload -F zsh/datetime p:EPOCHSECONDS 2>/dev/null

# Run the program itself: `command` skips functions, so the `stsh` wrapper never recurses.
__stsh_bin() {
  \command @STSH_BIN@ "$@"
}

# Forget what was sent, so that the next prompt looks again (after `stsh allow|deny|tag|
# reload|clear`, after `assume`, and when this file is sourced). Without inherited state
# (STSH_ROOT empty) an untagged directory stays free: the key starts as "no tag". With
# inherited tag state it starts as a value no real key has ("\n"), so the first prompt lets
# the binary confirm or undo what the parent shell had.
__stsh_reset() {
  \builtin emulate -L zsh
  typeset -g __stsh_pwd= __stsh_tagfile= __stsh_root= __stsh_rootkey= __stsh_tried= __stsh_dirty=1
  typeset -ga __stsh_noticed
  __stsh_noticed=()
  if [[ -n ${STSH_ROOT-} ]]; then
    typeset -g __stsh_key=$'\n'
  else
    typeset -g __stsh_key=
  fi
  __stsh_arm
}

# Prepare what the fast path in __stsh_precmd compares, from the state as it is now:
#  - __stsh_seen: the $PWD the last walk saw and the STSH_EXPIRES, STSH_REFRESH_MARGIN and
#    STSH_PINNED this was computed for, joined (any change to them sends the next prompt
#    through the full check); empty while a `cd` is pending (__stsh_dirty), which no prompt
#    matches;
#  - __stsh_deadline: the epoch second from which the credentials count as near expiry
#    (STSH_EXPIRES - margin), or never when none are active or that expiry was already tried.
#    Without $EPOCHSECONDS (no zsh/datetime) it is -1 while credentials are active: every
#    prompt then takes the full check, which reads the clock through prompt expansion;
#  - __stsh_free: set when the key cannot matter (pinned by `assume`, or no tag here and none
#    sent), so the fast path need not read a tag at all.
__stsh_arm() {
  \builtin emulate -L zsh
  \builtin local expires=${STSH_EXPIRES-} margin=${STSH_REFRESH_MARGIN-}
  typeset -g __stsh_seen=
  [[ -n $__stsh_dirty ]] ||
    __stsh_seen=$__stsh_pwd:${STSH_EXPIRES-}:${STSH_REFRESH_MARGIN-}:${STSH_PINNED-}
  typeset -g __stsh_deadline=9223372036854775807 __stsh_free=
  # Digits only: anything else is ignored rather than fed to arithmetic, which would run it.
  if [[ -n $expires && $expires != *[^0-9]* && $expires != "$__stsh_tried" ]]; then
    [[ -n $margin && $margin != *[^0-9]* ]] || margin=600
    if (($+EPOCHSECONDS)); then
      __stsh_deadline=$((10#$expires - 10#$margin))
    else
      __stsh_deadline=-1
    fi
  fi
  if [[ ${STSH_PINNED-} == 1 || (-z $__stsh_tagfile && -z $__stsh_key) ]]; then
    __stsh_free=1
  fi
}

# chpwd only marks the directory as changed: it also runs for `cd` inside functions, scripts
# and zle widgets, where starting a process or asking a question would be wrong.
__stsh_chpwd() {
  typeset -g __stsh_dirty=1 __stsh_seen=
}

# Run `stsh hook zsh MODE ARGS…` with stdout captured, apply the change set, and put the exit
# status in __stsh_rc. The caller holds the INT trap (see __stsh_precmd).
__stsh_call() {
  \builtin emulate -L zsh
  \builtin local out
  typeset -g __stsh_rc=0
  # The user's saved values go to this one process only: __stsh_prev is not exported.
  out=$(STSH_PREV=$__stsh_prev STSH_SHELL_PID=$$ __stsh_bin hook zsh $__stsh_mode "$@") || __stsh_rc=$?
  # The binary's stdout is shell code by contract: only `export NAME='value'` / `unset NAME`
  # lines for a fixed list of names and `__stsh_prev='…'`, values single-quoted. Tag contents
  # never get here as code.
  if [[ -n $out ]]; then
    \builtin eval "$out"
  fi
}

# The prompt hook (PROTOCOL.md "On every prompt"). This first part is the fast path, run on
# every prompt: one test of what the full check would look at — no cd since, the same $PWD and
# state variables (one string compare: a `cd` empties __stsh_seen), then, only where a tag can
# matter, the tag as it was at the last full read (older than this shell's reference file,
# written just before that read: two stats, nothing opened; zsh's -ot is false when either is
# missing, so a deleted tag or a missing reference means "read again"; an edit, or a FIFO or
# a huge file swapped in, is not older; "older", not "not newer", so an edit in the same clock
# tick as the read is read again), then the clock before the prepared deadline. No process,
# no subshell, no emulate (zsh gives precmd functions the user's $? and $pipestatus and puts
# them back after). Each command costs (callgrind, zsh 5.9, per unchanged prompt: 51k
# instructions over an empty function for the check before it was cut to one compare, two
# stats and one clock test; about 36k now).
__stsh_precmd() {
  if [[ $PWD:${STSH_EXPIRES-}:${STSH_REFRESH_MARGIN-}:${STSH_PINNED-} == "$__stsh_seen" &&
    (-n $__stsh_free || $__stsh_tagfile -ot $__stsh_ref) ]] &&
    ((${EPOCHSECONDS:-0} < __stsh_deadline)); then
    \builtin return 0
  fi

  # The full check: whatever the fast path could not decide. (In the same function, to save a
  # call on every `cd`; emulate and the locals come only here, so the fast path pays for none.)
  \builtin emulate -L zsh
  \builtin local key= content= expires= margin= now= near= why= deadline=9223372036854775807 d
  \builtin local -a flags

  # 1. Walk up only when the directory changed, or the entry found last time went away: from
  # $PWD to the nearest .aws-profile (no process), setting __stsh_tagfile (empty when none),
  # __stsh_root (its directory) and __stsh_rootkey (the root with its length in front, so that
  # no root + content can look like another). Any entry of that name but a directory counts:
  # a FIFO or a dangling link is the binary's to refuse (once, with a reason), never opened
  # here and never skipped for a tag above.
  if [[ -n $__stsh_dirty || $PWD != "$__stsh_pwd" ]] || [[ -n $__stsh_tagfile &&
    ! -L $__stsh_tagfile && (! -e $__stsh_tagfile || -d $__stsh_tagfile) ]]; then
    __stsh_dirty= __stsh_pwd=$PWD __stsh_tagfile= __stsh_root= __stsh_rootkey= d=$PWD
    while :; do
      if [[ -L $d/.aws-profile || (-e $d/.aws-profile && ! -d $d/.aws-profile) ]]; then
        __stsh_tagfile=$d/.aws-profile __stsh_root=${d:-/}
        __stsh_rootkey=${#__stsh_root}:$__stsh_root
        \builtin break
      fi
      [[ $d == */* ]] || \builtin break
      d=${d%/*}
    done
  fi

  # 2. The key: the root + the tag's whole content (at most 257 characters, NULs included),
  # read only when it can be a tag; otherwise the root alone, which no readable tag's key is.
  # It is only ever compared, never run or printed.
  if [[ -n $__stsh_tagfile ]]; then
    key=$__stsh_rootkey
    if [[ -f $__stsh_tagfile && -s $__stsh_tagfile && -O $__stsh_tagfile &&
      -r $__stsh_tagfile ]]; then
      # The reference for the fast path first (an edit during the read is then newer), `>|`
      # for noclobber; no reference (no run/ directory yet): every prompt reads, as it must.
      # (`|| :`: the read ends at the end of the file with status 1, which must not reach
      # the user's ZERR trap or err_exit.)
      { { : >|$__stsh_ref; } 2>/dev/null || :; }
      { \builtin read -r -k 257 -u 3 content 3<"$__stsh_tagfile" || :; } 2>/dev/null
      key+=:$content
    fi
  fi

  # 3. Expiry: only looked at while credentials are active (STSH_EXPIRES set, digits only).
  expires=${STSH_EXPIRES-}
  if [[ -n $expires && $expires != *[^0-9]* ]]; then
    margin=${STSH_REFRESH_MARGIN-}
    [[ -n $margin && $margin != *[^0-9]* ]] || margin=600
    deadline=$((10#$expires - 10#$margin))
    if (($+EPOCHSECONDS)); then
      now=$EPOCHSECONDS
    else
      now=${(%):-%D{%s}}
      deadline=-1
    fi
    if ((now >= 10#$expires - 10#$margin)); then
      near=1
    fi
  fi

  # Return at once unless the key changed (ignored while an `assume` pins the profile) or the
  # credentials are near expiry and that expiry was not tried yet; the fast path is prepared
  # again from the values at hand (what __stsh_arm does, without computing them twice).
  if [[ ${STSH_PINNED-} == 1 || $key == "$__stsh_key" ]]; then
    if [[ -z $near || $expires == "$__stsh_tried" ]]; then
      __stsh_seen=$__stsh_pwd:${STSH_EXPIRES-}:${STSH_REFRESH_MARGIN-}:${STSH_PINNED-}
      __stsh_deadline=$deadline
      [[ $expires != "$__stsh_tried" ]] || __stsh_deadline=9223372036854775807
      __stsh_free=
      if [[ ${STSH_PINNED-} == 1 || (-z $__stsh_tagfile && -z $__stsh_key) ]]; then
        __stsh_free=1
      fi
      \builtin return 0
    fi
  fi

  # 4. Record the attempt before starting the binary, so a cancelled or failed attempt is
  # not repeated on the next Enter. Why, for STSH_DEBUG=1 (paths and names quoted, control
  # characters made visible by (V)).
  why="${(qq)${(V)${STSH_PROFILE-}}} ends at $expires (margin $margin s)"
  if [[ ${STSH_PINNED-} != 1 && $key != "$__stsh_key" ]]; then
    if [[ -n $__stsh_tagfile ]]; then
      why="key changed: ${(qq)${(V)__stsh_tagfile}}"
    else
      why="key changed: no tag here"
    fi
    __stsh_key=$key
  elif [[ ${STSH_PINNED-} == 1 ]]; then
    why="pinned renewal: $why"
  else
    why="near expiry: $why"
  fi
  [[ -z $near ]] || __stsh_tried=$expires
  flags=()
  if ((${__stsh_noticed[(Ie)$key]})); then
    flags=(--quiet)
  fi
  # STSH_DEBUG=1: why the binary starts, on this slow path only; its own lines follow.
  if [[ ${STSH_DEBUG-} == 1 ]]; then
    \builtin print -ru2 -- "stsh: debug: hook zsh: $why"
  fi

  # 5. Run the binary. Ctrl-C: without a trap, SIGINT at the MFA question aborts this
  # function, sets zsh's error flag so every later precmd function (prompt themes) is skipped
  # for that prompt, and wipes the question line (measured in a pty, zsh 5.9). With a trap
  # the shell runs it and carries on, so the rest of this function and the other hooks run.
  # The trap is ':' and not '' on purpose: an ignored signal stays ignored in the child, a
  # trapped one is reset to the default on exec, so Ctrl-C still reaches the binary (which
  # exits 130). `emulate -L` set local_traps, so the user's INT trap comes back on return.
  \builtin trap ':' INT
  __stsh_call $flags
  case $__stsh_rc in
  (2)
    ((${#flags})) || __stsh_noticed+=("$key")
    ;;
  (4)
    # MFA needed: ask on the terminal, but only where someone can answer.
    if [[ -o interactive && -t 0 ]]; then
      __stsh_call --prompt $flags
    fi
    ;;
  esac
  __stsh_arm
}

# `assume PROFILE` pins PROFILE, `assume` shows what is active, `assume --clear` restores.
assume() {
  \builtin emulate -L zsh
  \builtin local rc=0 out=
  # More than one word, or an option other than --clear: the usage, and nothing runs.
  if (($# > 1)) || [[ ${1-} == -* && $1 != --clear ]]; then
    \builtin print -ru2 -- 'usage: assume [PROFILE | --clear]'
    \builtin return 2
  fi
  case ${1-} in
  ('')
    __stsh_bin current
    \builtin return
    ;;
  (--clear)
    out=$(STSH_PREV=$__stsh_prev STSH_SHELL_PID=$$ __stsh_bin hook zsh $__stsh_mode --unassume) || rc=$?
    ;;
  (*)
    out=$(STSH_PREV=$__stsh_prev STSH_SHELL_PID=$$ __stsh_bin hook zsh $__stsh_mode --assume "$1" --prompt) || rc=$?
    ;;
  esac
  if [[ -n $out ]]; then
    \builtin eval "$out"
  fi
  __stsh_reset
  \builtin return $rc
}

# The same commands as the program; those that change what a directory means make the next
# prompt look again, and `stsh doctor` learns how this shell's hook is installed.
stsh() {
  \builtin emulate -L zsh
  \builtin local rc=0 sub= a mode
  # The subcommand: the first word that is not an option (--debug may come first).
  for a in "$@"; do
    case $a in
    (--) \builtin break ;;
    (-*) ;;
    (*)
      sub=$a
      \builtin break
      ;;
    esac
  done
  if [[ $sub == doctor ]]; then
    __stsh_where
    mode=${${__stsh_mode:+serve}:-keys}
    STSH_HOOK_STATE="shell=zsh version=$ZSH_VERSION mode=$mode hook=$__stsh_w" \
      __stsh_bin "$@" || rc=$?
  else
    __stsh_bin "$@" || rc=$?
  fi
  # A refused allow/deny/tag changed nothing: looking again would only say the refusal twice.
  case $sub in
  (allow | deny | tag) (( rc )) || __stsh_reset ;;
  (reload | clear) __stsh_reset ;;
  esac
  \builtin return $rc
}

# Where the hook is for `stsh doctor` (PROTOCOL.md "Other commands"): first (before every
# other precmd function), late (it runs, after another one: a `precmd` function always runs
# before the array) or missing (something replaced precmd_functions after the init line).
__stsh_where() {
  \builtin emulate -L zsh
  typeset -g __stsh_w=late
  if ((! ${precmd_functions[(Ie)__stsh_precmd]})); then
    __stsh_w=missing
  elif [[ ${precmd_functions[1]} == __stsh_precmd ]] && ((! $+functions[precmd])); then
    __stsh_w=first
  fi
}

# Tab completion (only when Tab is pressed): `stsh complete -- WORD…` knows the subcommands,
# flags, --format values and profile names. Where it offers nothing: a command after
# `stsh exec PROFILE --` (and that command's own completion after it), directories for
# `tag`/`allow`/`deny`, else file names. With compinit this is a compsys function (compdef),
# without it the same through the older compctl, which needs no compinit at all.

# The words before the cursor's word and that word, as stsh complete takes them; sets
# reply to the candidates (one per line from the program, empty lines dropped).
__stsh_ask() {
  \builtin emulate -L zsh
  reply=(${(f)"$(__stsh_bin complete -- "$@" 2>/dev/null)"})
}

# Which argument of `stsh exec`/`tag` is under the cursor, when stsh offered nothing: sets
# __stsh_sub (the subcommand) and __stsh_at (for exec: the index in $@ of the command word,
# 0 when not known yet). $@: the words after `stsh`, before the cursor's word.
__stsh_argpos() {
  \builtin emulate -L zsh
  \builtin local i n=0
  typeset -g __stsh_sub= __stsh_at=0
  for ((i = 1; i <= $#; i++)); do
    if [[ -z $__stsh_sub ]]; then
      [[ $argv[i] == -* ]] || __stsh_sub=$argv[i]
    elif [[ $argv[i] == -- ]]; then
      __stsh_at=$((i + 1))
      \builtin return
    elif [[ $argv[i] == (--profile|-t|--token-code) ]]; then
      i=$((i + 1)) # its value
    elif [[ $argv[i] != -* ]]; then
      n=$((n + 1))
      if ((n == 2)); then
        __stsh_at=$i
        \builtin return
      fi
    fi
  done
  # exec PROFILE <cursor>: without `--`, the word after the profile is the command.
  if ((n == 1)); then
    __stsh_at=$(($# + 1))
  fi
}

# compsys (compinit loaded). No emulate here: compsys has set the options its own functions
# (_files, _normal, …) need, and `emulate -L zsh` would take extended_glob away from them.
__stsh_complete() {
  \builtin local -a reply before
  before=("${(@Q)words[2,CURRENT-1]}")
  __stsh_ask stsh $before "${(Q)PREFIX}"
  if (($#reply)); then
    compadd -- $reply
    \builtin return
  fi
  __stsh_argpos $before
  case $__stsh_sub in
  (exec)
    if ((__stsh_at == CURRENT - 1)); then
      _command_names -e
      \builtin return
    elif ((__stsh_at && __stsh_at < CURRENT - 1)); then
      # The command's own completion, as if its line started there.
      shift $((__stsh_at)) words
      ((CURRENT -= __stsh_at))
      _normal
      \builtin return
    fi
    ;;
  (tag | allow | deny)
    _files -/
    \builtin return
    ;;
  esac
  _files
}

__stsh_complete_assume() {
  \builtin emulate -L zsh
  ((CURRENT == 2)) || \builtin return 1
  # Every candidate (--clear and the profile names): compsys matches them itself.
  __stsh_ask assume ''
  compadd -a reply
}

# compctl (no compinit): -K functions, with files as the fallback (`+ -f`).
__stsh_compctl() {
  \builtin emulate -L zsh
  \builtin local -a w
  \builtin local cw
  \builtin read -cA w
  \builtin read -cn cw
  __stsh_ask stsh "${(@)w[2,cw-1]}" "$1"
  (($#reply)) && \builtin return
  __stsh_argpos "${(@)w[2,cw-1]}"
  if [[ $__stsh_sub == exec ]] && ((__stsh_at == cw - 1)); then
    reply=(${(k)commands[(I)${(b)1}*]} ${(k)functions[(I)${(b)1}*]} ${(k)aliases[(I)${(b)1}*]})
  fi
}

__stsh_compctl_assume() {
  \builtin emulate -L zsh
  \builtin local cw
  \builtin read -cn cw
  reply=()
  ((cw == 2)) || \builtin return
  __stsh_ask assume ''
}

# compdef exists once compinit has run. When this file is sourced before compinit (earlier in
# ~/.zshrc), register at the first prompt, then drop this check either way: without compinit
# the compctl definitions below serve, and the prompt should not pay for asking again. (Should
# compinit run later still, compsys's default completer uses compctl definitions too.)
__stsh_compdef() {
  \builtin emulate -L zsh
  if (($+functions[compdef])); then
    compdef __stsh_complete stsh
    compdef __stsh_complete_assume assume
  fi
  add-zsh-hook -d precmd __stsh_compdef
}

# Install: add-zsh-hook de-duplicates, so sourcing twice leaves one entry of each. The prompt
# hook is then moved first, so prompt themes running later in precmd see the new credentials
# (zsh gives every precmd function the user's $? and $pipestatus, so the order costs nothing).
\builtin autoload -Uz add-zsh-hook
() {
  \builtin emulate -L zsh
  typeset -g __stsh_rc=0
  # This shell's reference file: its mtime is when the tag was last read (see __stsh_precmd).
  # The binary keeps the private run/ directory and sweeps references of shells long gone.
  typeset -g __stsh_ref=${STSH_HOME:-${HOME-}/.aws/stsh}/run/zsh.$$
  # The flags of the mode `stsh init` was asked for (none, or --serve), passed to every
  # `stsh hook` call. Sourced as it is in the source tree (no mode filled in), it means none.
  typeset -ga __stsh_mode
  __stsh_mode=(@STSH_MODE@)
  [[ ${__stsh_mode[1]-} != @* ]] || __stsh_mode=()
  # State is set up once per shell: sourcing this file again keeps what the hook knows (and
  # sends the next prompt through the full check, which prepares the fast path again).
  if (($+__stsh_key)); then
    typeset -g __stsh_dirty=1
    __stsh_arm
  else
    __stsh_reset
  fi
  # The saved values live in this shell only (an older stsh exported them: take them back).
  (($+__stsh_prev)) || typeset -g __stsh_prev=${STSH_PREV-}
  \builtin unset STSH_PREV
  add-zsh-hook chpwd __stsh_chpwd
  add-zsh-hook precmd __stsh_precmd
  precmd_functions=(__stsh_precmd ${precmd_functions:#__stsh_precmd})
  if \builtin zmodload zsh/compctl 2>/dev/null; then
    compctl -K __stsh_compctl + -f stsh
    compctl -K __stsh_compctl_assume assume
  fi
  if (($+functions[compdef])); then
    compdef __stsh_complete stsh
    compdef __stsh_complete_assume assume
    add-zsh-hook -d precmd __stsh_compdef
  else
    add-zsh-hook precmd __stsh_compdef
  fi
}
