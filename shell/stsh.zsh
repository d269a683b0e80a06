# stsh shell integration for zsh (5.1 or newer).
# Add to ~/.zshrc (after compinit if you use it):
#   eval "$(stsh init zsh)"
# `stsh init zsh` prints this file with the quoted path of the program filled in.
# The contract with the binary is shell/PROTOCOL.md. Sourcing this file prints nothing and
# starts no process; the first prompt does the first check.
#
# Every function runs under `emulate -L zsh` so the user's options (ksh_arrays, sh_word_split,
# nounset, warn_create_global, …) cannot change it; globals are declared with `typeset -g` so
# the init also works when a plugin manager evaluates it inside a function.

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
  typeset -g __stsh_pwd= __stsh_tagfile= __stsh_root= __stsh_tried= __stsh_dirty=1
  typeset -ga __stsh_noticed
  __stsh_noticed=()
  if [[ -n ${STSH_ROOT-} ]]; then
    typeset -g __stsh_key=$'\n'
  else
    typeset -g __stsh_key=
  fi
}

# chpwd only marks the directory as changed: it also runs for `cd` inside functions, scripts
# and zle widgets, where starting a process or asking a question would be wrong.
__stsh_chpwd() {
  typeset -g __stsh_dirty=1
}

# Walk up from $PWD to the nearest .aws-profile (no process).
__stsh_find() {
  \builtin emulate -L zsh
  \builtin local d="$PWD"
  __stsh_tagfile= __stsh_root=
  while :; do
    # Any entry of that name but a directory: a FIFO or a dangling link is the binary's to
    # refuse (once, with a reason), never opened here and never skipped for a tag above.
    if [[ -L $d/.aws-profile || (-e $d/.aws-profile && ! -d $d/.aws-profile) ]]; then
      __stsh_tagfile=$d/.aws-profile
      __stsh_root=${d:-/}
      \builtin return 0
    fi
    [[ $d == */* ]] || \builtin return 0
    d=${d%/*}
  done
}

# Run `stsh hook zsh ARGS…` with stdout captured, apply the change set, and put the exit
# status in __stsh_rc. The caller holds the INT trap (see __stsh_precmd).
__stsh_call() {
  \builtin emulate -L zsh
  \builtin local out
  typeset -g __stsh_rc=0
  # The user's saved values go to this one process only: __stsh_prev is not exported.
  out=$(STSH_PREV=$__stsh_prev __stsh_bin hook zsh "$@") || __stsh_rc=$?
  # The binary's stdout is shell code by contract: only `export NAME='value'` / `unset NAME`
  # lines for a fixed list of names and `__stsh_prev='…'`, values single-quoted. Tag contents
  # never get here as code.
  if [[ -n $out ]]; then
    \builtin eval "$out"
  fi
}

# The prompt hook (PROTOCOL.md "On every prompt").
__stsh_precmd() {
  # zsh hands each precmd function the user's $? and restores it after, but `emulate`
  # resets it, so take it first and return it anyway (harmless, and clear).
  \builtin local st="$?"
  \builtin emulate -L zsh
  \builtin local key= content= expires= margin= now= near=
  \builtin local -a flags

  # 1. Walk up only when the directory changed (or the tag file we knew went away).
  if [[ -n $__stsh_dirty || $PWD != "$__stsh_pwd" ||
    (-n $__stsh_tagfile && ! -f $__stsh_tagfile) ]]; then
    __stsh_dirty= __stsh_pwd=$PWD
    __stsh_find
  fi

  # 2. The key: root + "\n" + the tag's first line, read by the shell (no process; at most
  # 256 characters, so a huge file cannot stall the prompt). It is only ever compared.
  if [[ -n $__stsh_tagfile ]]; then
    { IFS= \builtin read -r -k 256 -u 3 content 3<"$__stsh_tagfile" } 2>/dev/null
    content=${content%%$'\n'*}
    key=$__stsh_root$'\n'$content
  fi

  # 3. Expiry: only looked at while credentials are active (STSH_EXPIRES set, digits only;
  # anything else is ignored rather than fed to arithmetic, which would evaluate it).
  expires=${STSH_EXPIRES-}
  if [[ -n $expires && $expires != *[^0-9]* ]]; then
    margin=${STSH_REFRESH_MARGIN-}
    [[ -n $margin && $margin != *[^0-9]* ]] || margin=600
    now=${EPOCHSECONDS:-0}
    if ((now >= expires - margin)); then
      near=1
    fi
  fi

  # Return at once unless the key changed (ignored while an `assume` pins the profile) or the
  # credentials are near expiry and that expiry was not tried yet.
  if [[ ${STSH_PINNED-} == 1 || $key == "$__stsh_key" ]]; then
    if [[ -z $near || $expires == "$__stsh_tried" ]]; then
      \builtin return $st
    fi
  fi

  # 4. Record the attempt before starting the binary, so a cancelled or failed attempt is
  # not repeated on the next Enter.
  [[ ${STSH_PINNED-} == 1 ]] || __stsh_key=$key
  [[ -z $near ]] || __stsh_tried=$expires
  flags=()
  if ((${__stsh_noticed[(Ie)$key]})); then
    flags=(--quiet)
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
  \builtin return $st
}

# `assume PROFILE` pins PROFILE, `assume` shows what is active, `assume --clear` restores.
assume() {
  \builtin emulate -L zsh
  \builtin local rc=0 out=
  case ${1-} in
  ('')
    __stsh_bin current
    \builtin return
    ;;
  (--clear)
    out=$(STSH_PREV=$__stsh_prev __stsh_bin hook zsh --unassume) || rc=$?
    ;;
  (-*)
    \builtin print -ru2 -- 'usage: assume [PROFILE | --clear]'
    \builtin return 2
    ;;
  (*)
    out=$(STSH_PREV=$__stsh_prev __stsh_bin hook zsh --assume "$1" --prompt) || rc=$?
    ;;
  esac
  if [[ -n $out ]]; then
    \builtin eval "$out"
  fi
  __stsh_reset
  \builtin return $rc
}

# The same commands as the program; those that change what a directory means make the next
# prompt look again.
stsh() {
  \builtin emulate -L zsh
  \builtin local rc=0
  __stsh_bin "$@" || rc=$?
  case ${1-} in
  (allow | deny | tag | reload | clear) __stsh_reset ;;
  esac
  \builtin return $rc
}

# Tab completion of profile names for `assume` (asks the program only when Tab is pressed).
__stsh_complete_assume() {
  \builtin emulate -L zsh
  ((CURRENT == 2)) || \builtin return 1
  \builtin local -a names
  names=(${(f)"$(__stsh_bin profiles --names 2>/dev/null)"})
  compadd -- --clear $names
}

# compdef exists once compinit has run. When this file is sourced before compinit (earlier in
# ~/.zshrc), register at the first prompt, then drop this check either way: without compinit
# there is no completion system to register with, and the prompt should not pay for asking.
__stsh_compdef() {
  \builtin emulate -L zsh
  (($+functions[compdef])) && compdef __stsh_complete_assume assume
  add-zsh-hook -d precmd __stsh_compdef
}

# Install: add-zsh-hook de-duplicates, so sourcing twice leaves one entry of each. The prompt
# hook is then moved first, so prompt themes running later in precmd see the new credentials
# (zsh gives every precmd function the user's $? and $pipestatus, so the order costs nothing).
\builtin autoload -Uz add-zsh-hook
() {
  \builtin emulate -L zsh
  typeset -g __stsh_rc=0
  # State is set up once per shell: sourcing this file again keeps what the hook knows.
  (($+__stsh_key)) || __stsh_reset
  # The saved values live in this shell only (an older stsh exported them: take them back).
  (($+__stsh_prev)) || typeset -g __stsh_prev=${STSH_PREV-}
  \builtin unset STSH_PREV
  add-zsh-hook chpwd __stsh_chpwd
  add-zsh-hook precmd __stsh_precmd
  precmd_functions=(__stsh_precmd ${precmd_functions:#__stsh_precmd})
  if (($+functions[compdef])); then
    compdef __stsh_complete_assume assume
    add-zsh-hook -d precmd __stsh_compdef
  else
    add-zsh-hook precmd __stsh_compdef
  fi
}
