# stsh shell integration for fish (3.1 or newer). In ~/.config/fish/config.fish:
#   stsh init fish | source
# The prompt hook comes first, bare: fish 3 pays, for each statement it runs, in proportion to
# the statement's offset in the text it was sourced from.
function __stsh_prompt --on-event fish_prompt
    set -q __stsh_dirty[1]; and __stsh_find
    if set -q __stsh_tagfile[1]
        if not set -q __stsh_kref[1]; or not test -f $__stsh_tagfile -a $__stsh_tagfile -ot $__stsh_kref
            if test -s $__stsh_tagfile -a -O $__stsh_tagfile -a -r $__stsh_tagfile
                set -g __stsh_kref
                set -q __stsh_ref[1]; and test -d $__stsh_rundir; and true >$__stsh_ref
                and set -g __stsh_kref $__stsh_ref
                read -g -z -n 257 __stsh_k <$__stsh_tagfile
                set -g __stsh_k "$__stsh_root"\n"$__stsh_k"
            else
                __stsh_odd_key
            end
        end
    else
        set -g __stsh_k ''
    end
    if test "$__stsh_k" = "$__stsh_key"; or test "$STSH_PINNED" = 1
        if set -q __stsh_deadline[1]
            read -g __stsh_up __stsh_rest </proc/uptime
            test $__stsh_up -lt $__stsh_deadline; and return
        else if set -q __stsh_edeadline[1]
            test (__stsh_now) -lt $__stsh_edeadline; and return
        else
            return
        end
        test "$STSH_EXPIRES" = "$__stsh_tried"; and return
    end
    __stsh_run "$__stsh_k"
end
# The prompt hook above (PROTOCOL.md "On every prompt"). fish runs fish_prompt handlers before
# the prompt function (where a theme shows $STSH_PROFILE), and restores $status and
# $pipestatus after them by itself. Every statement counts there (each costs microseconds in
# fish), so the unchanged prompt takes the fewest: no local declared (what it sets are its own
# globals: a plain `set` or `read` would change a user's global of the same name), no function
# called, each test in the order that returns soonest.
# 1. Walk up only when the directory changed.
# 2. The key: root + "\n" + the tag's content, read by the shell only when it can be a tag
#    (after links: non-empty, which excludes FIFOs, devices, sockets and /proc files; ours;
#    readable, or fish would warn on every prompt), never more than 257 characters (a NUL ends
#    it; fish counts characters, so at most 257 of up to 4 bytes each). No -f, which would
#    cost another stat: the one other kind it excludes, a directory that replaced the tag, is
#    opened harmlessly and the read fails at once, silently. No tag: the key is empty.
#    Anything else: __stsh_odd_key. Not read again while it is as it was at the last read
#    (fish 3.6+, whose `test` has -ot with nanoseconds): a regular file strictly older than
#    this shell's reference file (STSH_HOME/run/fish.PID), written just before that read, as
#    bash and zsh do — an edit, even in the same clock tick, or a FIFO swapped in is not
#    older. __stsh_kref names that file only while __stsh_k came from such a read; on older
#    fish, or without the run/ directory (the binary makes it), the tag is read every prompt.
# 3. Return at once when the key is unchanged (or an `assume` pins the profile) and no
#    credentials are set, or they are not near expiry (the deadline follows STSH_EXPIRES, see
#    __stsh_prepare), or that expiry was tried already. Else the slow path, __stsh_run.
#
# `stsh init fish` prints this file with the quoted path of the program filled in.
# The contract with the binary is shell/PROTOCOL.md. Sourcing this file prints nothing and
# starts no process; the first prompt does the first check.
#
# What it relies on, and since when: `read --tokenize` (fish 3.1) to take the binary's change
# set apart without evaluating it; `string split` output kept as elements by a command
# substitution (fish 3.0), so a directory name with a newline is one; fish restoring $status
# and $pipestatus around event handlers (so the prompt and the next command line see the
# user's, untouched);
# `functions --handlers-type` (3.0) for `stsh doctor`. The clock, without a process: Linux's
# /proc/uptime; elsewhere `path mtime` (fish 3.5), else `date +%s` (a process per prompt while
# credentials are active, on fish < 3.5 without /proc only).

# Run the program itself: `command` skips functions, so the `stsh` wrapper never recurses.
function __stsh_bin
    command @STSH_BIN@ $argv
end

# The mode flags for every `stsh hook` call (empty, or --serve).
set -g __stsh_mode @STSH_MODE@

# The only names a change set may set or unset (PROTOCOL.md); STSH_PREV is handled apart.
set -g __stsh_names AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN \
    AWS_CREDENTIAL_EXPIRATION AWS_SESSION_EXPIRATION AWS_REGION AWS_DEFAULT_REGION \
    AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SECURITY_TOKEN AWS_CONTAINER_CREDENTIALS_FULL_URI \
    AWS_CONTAINER_AUTHORIZATION_TOKEN AWS_CONTAINER_CREDENTIALS_RELATIVE_URI \
    AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE STSH_PROFILE STSH_ROOT STSH_EXPIRES STSH_PINNED

# What the key holds for a tag the shell must not open (not a regular file, empty, or not
# ours): longer than anything `read -n 257` can return, so no content can look like it.
set -g __stsh_marker (string repeat -n 258 '?')

# This shell's reference file: its mtime is when the tag was last read (see the prompt hook).
# Only where `test` knows -ot (fish 3.6+: an older fish says "unexpected argument", status 2).
# The binary keeps the private run/ directory and sweeps references of shells long gone.
set -g __stsh_rundir "$STSH_HOME"
test -n "$__stsh_rundir"; or set __stsh_rundir "$HOME/.aws/stsh"
set -g __stsh_rundir "$__stsh_rundir/run"
set -g __stsh_ref
builtin test / -ot / 2>/dev/null
test $status -eq 1; and set -g __stsh_ref "$__stsh_rundir/fish.$fish_pid"
set -g __stsh_kref

# Forget what was sent, so that the next prompt looks again (after `stsh allow|deny|tag|
# reload|clear`, after `assume`, and when this file is first sourced). Without inherited state
# (STSH_ROOT empty) an untagged directory stays free: the key starts as "no tag". With
# inherited tag state it starts as a value no real key has ("\n"), so the first prompt lets
# the binary confirm or undo what the parent shell had.
function __stsh_reset
    set -g __stsh_tagfile
    set -g __stsh_kref
    set -g __stsh_root
    set -g __stsh_tried
    set -g __stsh_noticed
    set -g __stsh_dirty 1
    if test -n "$STSH_ROOT"
        set -g __stsh_key \n
    else
        set -g __stsh_key ''
    end
end

# A changed directory is only marked here: PWD also changes inside functions and scripts,
# where starting a process or asking a question would be wrong. The prompt does the rest.
function __stsh_chpwd --on-variable PWD
    set -g __stsh_dirty 1
end

# The nearest entry named .aws-profile that is not a directory, on the logical $PWD or above
# (no process, nothing opened): a FIFO or a dangling link there is the binary's to refuse
# (once, with a reason), never opened here and never skipped for a tag above it. $PWD is
# split by `string split`, whose pieces a command substitution keeps whole (fish takes them
# as separate elements, not as lines: a directory name with a newline stays one), and which
# costs less than a pipe into `read`. The walk goes down from "/" (two statements per level,
# no list of parents to build first); the last entry found is the nearest. Every walk reads the
# tag again (as bash and zsh do at every cd): a `cd` is how a person makes the hook look again
# after an edit the reference file cannot see (an older file moved over the tag).
function __stsh_find
    set -g __stsh_dirty
    set -g __stsh_kref
    set -g __stsh_root
    test -L /.aws-profile -o -e /.aws-profile -a ! -d /.aws-profile; and set -g __stsh_root /
    if test "$PWD" != /
        set -l parts (string split / -- $PWD)
        set -l d ''
        for p in $parts[2..-1]
            set d "$d/$p"
            test -L "$d/.aws-profile" -o -e "$d/.aws-profile" -a ! -d "$d/.aws-profile"
            and set -g __stsh_root $d
        end
    end
    if test "$__stsh_root" = /
        set -g __stsh_tagfile /.aws-profile
    else if set -q __stsh_root[1]
        set -g __stsh_tagfile "$__stsh_root/.aws-profile"
    else
        set -g __stsh_tagfile
    end
end

# The key when the tag entry is not a non-empty, readable file of ours (the prompt handles that
# common case inline): gone (walk again from $PWD), or one the binary must refuse (a marker,
# and the file is never opened). Sets __stsh_k.
function __stsh_odd_key
    if not test -e $__stsh_tagfile; and not test -L $__stsh_tagfile
        __stsh_find
    end
    set -g __stsh_k ''
    set -g __stsh_kref
    set -q __stsh_tagfile[1]; or return
    set -l c $__stsh_marker
    if test -f $__stsh_tagfile -a -s $__stsh_tagfile -a -O $__stsh_tagfile -a -r $__stsh_tagfile
        read -z -n 257 c <$__stsh_tagfile
    end
    set -g __stsh_k "$__stsh_root"\n"$c"
end

# The clock, as one number compared with the deadline below. Linux: seconds since boot from
# /proc/uptime, read by the prompt itself (no process, no function call), and the deadline is
# kept in that unit: epoch seconds - __stsh_boot, the boot time. At load that is /proc/stat's
# `btime` (whole seconds: the clock then runs up to 1 s late, never early); each run of the
# binary sets it to the hundredth (one `date`, on that slow path only). Elsewhere the deadline
# is kept in epoch seconds (__stsh_edeadline) and __stsh_now tells the time.
set -g __stsh_uptime
set -g __stsh_boot 0
if test -r /proc/uptime -a -r /proc/stat
    read -l up rest </proc/uptime
    and string match -qr '^[0-9]+(\.[0-9]+)?$' -- "$up"
    and set -l bt (string match -r '^btime [0-9]+$' </proc/stat | string replace 'btime ' '')
    and set __stsh_boot $bt
    and set __stsh_uptime 1
end
function __stsh_calibrate
    set -l t (command date +%s.%N 2>/dev/null)
    read -l up rest </proc/uptime
    if string match -qr '^[0-9]+\.[0-9]+$' -- "$t"; and string match -qr '^[0-9]+(\.[0-9]+)?$' -- "$up"
        # `date` ran before the uptime was read: the boot time comes out a little early, and
        # the clock a little late, never early (an early call would be wasted and marked as
        # tried for this expiry).
        set -g __stsh_boot (math "$t - $up")
    end
end
if contains -- path (builtin -n)
    # fish 3.5+: now = a file's mtime + the time since it (two stats, no process).
    function __stsh_now
        math (path mtime /) + (path mtime --relative /)
    end
else
    function __stsh_now
        command date +%s
    end
end

# The deadline, prepared as one number whenever STSH_EXPIRES or STSH_REFRESH_MARGIN change
# (and on load): STSH_EXPIRES - margin, in the clock's unit. Empty while no credentials are
# set (or STSH_EXPIRES is not digits, which is then ignored rather than fed to arithmetic).
function __stsh_prepare --on-variable STSH_EXPIRES --on-variable STSH_REFRESH_MARGIN
    set -g __stsh_deadline
    set -g __stsh_edeadline
    string match -qr '^[0-9]{1,12}$' -- "$STSH_EXPIRES"; or return
    set -l margin 600
    string match -qr '^[0-9]{1,12}$' -- "$STSH_REFRESH_MARGIN"; and set margin $STSH_REFRESH_MARGIN
    if set -q __stsh_uptime[1]
        set -g __stsh_deadline (math "$STSH_EXPIRES - $margin - $__stsh_boot")
    else
        set -g __stsh_edeadline (math "$STSH_EXPIRES - $margin")
    end
end

# Apply a change set: one record per line, `set -gx NAME 'value'`, `set -e NAME`,
# `set -g __stsh_prev '…'`, `set -e __stsh_prev`. Each line is taken apart by fish's own
# tokenizer (`read --tokenize`: quotes and escapes undone, nothing expanded, nothing run), and
# a record is applied only when it has exactly one of these shapes and its name is in the
# allow list. Nothing of it is ever evaluated. Only the global scope is touched: a universal
# variable is never erased or changed (fish has no way to hide an exported one from programs
# but erasing it, in every session at once).
function __stsh_apply
    for line in $argv
        set -l w
        printf '%s\n' $line | read -at w
        switch (count $w)":$w[1]:$w[2]"
            case 4:set:-gx
                contains -- $w[3] $__stsh_names; and set -gx -- $w[3] $w[4]
            case 4:set:-g
                # The saved values stay in this shell, out of the environment children get.
                test "$w[3]" = __stsh_prev; and set -g __stsh_prev $w[4]
            case 3:set:-e
                if test "$w[3]" = __stsh_prev
                    set -g __stsh_prev
                else if contains -- $w[3] $__stsh_names
                    set -e -g $w[3]
                    # A universal variable (shared by every fish, kept on disk) is never erased:
                    # say once that programs still see it.
                    if set -qU $w[3]; and not contains -- $w[3] $__stsh_uwarned
                        set -ga __stsh_uwarned $w[3]
                        printf 'stsh: %s is a universal variable (set -U), left as it is: %s\n' \
                            $w[3] 'programs still see it while stsh credentials are set.' >&2
                    end
                end
        end
    end
end

# Run `stsh hook fish MODE ARGS…` with stdout captured, apply the change set, and put the exit
# status in __stsh_rc.
function __stsh_call
    # Ctrl-C: a handler for INT makes fish leave this function running, so the program ends
    # the question itself (it exits 130) and the rest below still runs.
    function __stsh_on_int --on-signal INT
    end
    # The question is read in the terminal's line mode; fish keeps the terminal in its own
    # raw mode while the prompt (and this hook) runs. Put it back after.
    set -l tty
    if contains -- --prompt $argv
        set tty (command stty -g </dev/tty 2>/dev/null)
        and command stty icanon iexten echo icrnl </dev/tty 2>/dev/null
    end
    set -l out
    begin
        # The user's saved values go to this one process only: __stsh_prev is not exported,
        # and this exported copy ends with the block.
        set -lx STSH_PREV $__stsh_prev
        set -lx STSH_SHELL_PID $fish_pid
        set out (__stsh_bin hook fish $__stsh_mode $argv)
    end
    set -g __stsh_rc $status
    set -q tty[1]; and command stty $tty </dev/tty 2>/dev/null
    functions -e __stsh_on_int
    if set -q out[1]
        set -q __stsh_uptime[1]; and __stsh_calibrate
        __stsh_apply $out
    end
end


# The slow path: record the attempt, say why (STSH_DEBUG=1), run the binary.
function __stsh_run --argument-names key
    set -l near
    if set -q __stsh_deadline[1]
        read -l up rest </proc/uptime
        test $up -lt $__stsh_deadline; or set near 1
    else if set -q __stsh_edeadline[1]
        test (__stsh_now) -lt $__stsh_edeadline; or set near 1
    end
    if test "$STSH_DEBUG" = 1
        set -l why 'the tag or directory changed'
        if test "$STSH_PINNED" = 1
            set why 'the assumed profile is near expiry'
        else if test "$key" = "$__stsh_key"
            set why 'the credentials are near expiry'
        end
        printf 'stsh: debug: fish hook: %s; running stsh hook fish\n' $why >&2
    end
    # 4. Record the attempt before starting the binary, so a cancelled or failed attempt is
    # not repeated on the next Enter.
    test "$STSH_PINNED" = 1; or set -g __stsh_key $key
    test -n "$near"; and set -g __stsh_tried $STSH_EXPIRES
    set -l flags
    contains -- $key $__stsh_noticed; and set flags --quiet

    # 5. Run the binary; on status 4 ask on the terminal, but only where someone can answer.
    __stsh_call $flags
    switch $__stsh_rc
        case 2
            set -q flags[1]; or set -ga __stsh_noticed $key
        case 4
            if status is-interactive; and test -t 0
                __stsh_call --prompt $flags
            end
    end
end

# `assume PROFILE` pins PROFILE, `assume` shows what is active, `assume --clear` restores.
function assume --description 'stsh: pin a profile here (assume --clear: restore)'
    # More than one word, or an option other than --clear: the usage, and nothing runs.
    # (fish's `and`/`or` have no precedence: the begin/end groups the second test.)
    if test (count $argv) -gt 1; or begin
            string match -q -- '-*' "$argv[1]"; and test "$argv[1]" != --clear
        end
        echo 'usage: assume [PROFILE | --clear]' >&2
        return 2
    end
    switch "$argv[1]"
        case ''
            __stsh_bin current
            return $status
        case --clear
            __stsh_call --unassume
        case '*'
            __stsh_call --assume $argv[1] --prompt
    end
    set -l rc $__stsh_rc
    __stsh_reset
    return $rc
end

# What `stsh doctor` learns about this hook (PROTOCOL.md "Other commands"): `first` when its
# fish_prompt handler runs before every other one (fish runs them in the order they were
# defined; the prompt function itself, where themes draw, always comes after them), `late`
# when another handler runs before it, `missing` when it or the PWD handler is gone.
function __stsh_state
    set -l mode keys
    contains -- --serve $__stsh_mode; and set mode serve
    set -l hook missing
    set -l prompt (functions --handlers-type generic 2>/dev/null | string match -r '^fish_prompt \S+$')
    set -l pwd (functions --handlers-type variable 2>/dev/null | string match -r '^PWD \S+$')
    if contains -- 'fish_prompt __stsh_prompt' $prompt; and contains -- 'PWD __stsh_chpwd' $pwd
        set hook late
        test "$prompt[1]" = 'fish_prompt __stsh_prompt'; and set hook first
    end
    echo "shell=fish version=$version mode=$mode hook=$hook"
end

# The same commands as the program; those that change what a directory means make the next
# prompt look again. `stsh doctor` also learns how this hook is placed.
function stsh --description 'stsh, through its shell hook'
    set -l sub
    for a in $argv
        if not string match -q -- '-*' $a
            set sub $a
            break
        end
    end
    if test "$sub" = doctor
        set -lx STSH_HOOK_STATE (__stsh_state)
        __stsh_bin $argv
    else
        __stsh_bin $argv
    end
    set -l rc $status
    # A refused allow/deny/tag changed nothing: looking again would only say the refusal twice.
    if contains -- "$sub" reload clear; or begin
            contains -- "$sub" allow deny tag; and test $rc -eq 0
        end
        __stsh_reset
    end
    return $rc
end

# Tab completion for `stsh` and `assume`: the program completes subcommands, flags, --format
# values and profile names (`stsh complete -- WORD…`), asked only when Tab is pressed.
function __stsh_complete --argument-names name
    set -l words (commandline -opc)
    set -e words[1]
    set -l cur (commandline -ct)
    __stsh_bin complete -- $name $words "$cur" 2>/dev/null
end
complete -c stsh -e
complete -c stsh -f -a '(__stsh_complete stsh)'
complete -c assume -e
complete -c assume -f -a '(__stsh_complete assume)'

# State is set up once per shell: sourcing this file again keeps what the hook knows.
set -g __stsh_rc 0
set -q __stsh_uwarned; or set -g __stsh_uwarned
set -q __stsh_key; or __stsh_reset
# The saved values live in this shell only (an older stsh exported them: take them back).
set -q __stsh_prev; or set -g __stsh_prev $STSH_PREV
set -e -g STSH_PREV
__stsh_prepare
