# stsh shell integration for PowerShell 7.2 or newer.
# Add to $PROFILE, after any prompt theme (starship, oh-my-posh, posh-git) — those replace
# the prompt function this file wraps:
#   Invoke-Expression (& stsh init pwsh | Out-String)
# `stsh init pwsh` prints this file with the quoted path of the program filled in.
# The contract with the binary is shell/PROTOCOL.md. Loading this file prints nothing and
# starts no process; the first prompt does the first check.
#
# Works under `Set-StrictMode -Version Latest`: every global is created here before use and
# optional ones are read with Get-Variable -ErrorAction Ignore. The binary's change set is
# JSON applied with [Environment]::SetEnvironmentVariable for a fixed list of names — never
# Invoke-Expression — so no value is ever parsed as code (PowerShell also ends '…' strings at
# the typographic quotes U+2018..U+201B).
#
# Cost: PowerShell function calls and cmdlets are expensive (tens to hundreds of µs each), so
# the unchanged prompt is decided inside the prompt wrapper itself, by a handful of .NET calls
# against values prepared on the last full check (see `prompt` at the end). Everything else
# runs only when one of those values changed.

$global:__stsh_bin_path = @STSH_BIN@
# `stsh init pwsh --serve` puts --serve here; anything else means the default (keys).
$global:__stsh_serve = '@STSH_MODE@' -ceq '--serve'
$global:__stsh_args = if ($global:__stsh_serve) { @('hook', 'pwsh', '--serve') } else { @('hook', 'pwsh') }

# The names a change set may touch (PROTOCOL.md); anything else in the JSON is ignored.
$global:__stsh_allowed = [System.Collections.Generic.HashSet[string]]::new(
    [string[]]@('AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN',
        'AWS_CREDENTIAL_EXPIRATION', 'AWS_SESSION_EXPIRATION', 'AWS_REGION',
        'AWS_DEFAULT_REGION', 'AWS_PROFILE', 'AWS_DEFAULT_PROFILE', 'AWS_SECURITY_TOKEN',
        'AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_CONTAINER_AUTHORIZATION_TOKEN',
        'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI', 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE',
        'STSH_PROFILE', 'STSH_ROOT', 'STSH_EXPIRES', 'STSH_PINNED', 'STSH_PREV'),
    [System.StringComparer]::Ordinal)

# The content a tag that cannot be one is given in the key (it is never opened): a tag's
# bytes are read as Latin-1, one character of U+0000..U+00FF each, so none reads as this.
$global:__stsh_unusable = "`u{FFFF}"
# A tag is re-read when its modification time changed, except while that time is this close
# to now (100-ns ticks): two writes within one tick of a coarse file clock (2 s on FAT) can
# share a time, so such a tag is read again at every prompt until it is old enough.
$global:__stsh_racy = 3 * [TimeSpan]::TicksPerSecond

# Forget what was sent, so that the next prompt looks again (after `stsh allow|deny|tag|
# reload|clear`, after `assume`, and when this file is loaded). Without inherited state
# (STSH_ROOT empty) an untagged directory stays free: the key starts as "no tag". With
# inherited tag state it starts as a value no real key has ("`n"), so the first prompt lets
# the binary confirm or undo what the parent shell had.
function global:__stsh_reset {
    # The full check's state: the location walked from, the tag found (its directory, what
    # it says, the final target of a link, the modification times it was read at).
    $global:__stsh_pwd = $null
    $global:__stsh_tagfile = $null
    $global:__stsh_root = $null
    $global:__stsh_content = ''
    $global:__stsh_target = $null
    $global:__stsh_stamp = -1
    $global:__stsh_target_stamp = -1
    $global:__stsh_tried = $null
    $global:__stsh_noticed = [System.Collections.Generic.HashSet[string]]::new([System.StringComparer]::Ordinal)
    if ([Environment]::GetEnvironmentVariable('STSH_ROOT')) {
        $global:__stsh_key = "`n"
    } else {
        $global:__stsh_key = ''
    }
    # What the prompt wrapper compares (prepared at the end of __stsh_hook); dirty forces a
    # full check.
    $global:__stsh_dirty = $true
    $global:__stsh_seen_pwd = $null
    $global:__stsh_seen_exp = $null
    $global:__stsh_seen_margin = $null
    $global:__stsh_seen_pinned = $null
    $global:__stsh_deadline = [long]::MinValue
}

# The program to run: the path given to `stsh init`, resolved to an application so that a
# bare name can never call the `stsh` function below (functions win over programs).
function global:__stsh_exe {
    $p = $global:__stsh_bin_path
    if (-not [System.IO.Path]::IsPathRooted($p)) {
        $c = Microsoft.PowerShell.Core\Get-Command -Name $p -CommandType Application -ErrorAction Ignore |
            Microsoft.PowerShell.Utility\Select-Object -First 1
        if ($c) { $p = $c.Source }
    }
    $p
}

# Run the program with UTF-8 stdout captured. Returns @{ Out = text; Status = exit status }.
# $LASTEXITCODE is left to the caller to restore.
# stderr: pwsh discards the error stream of the prompt function, and with it a native
# command's stderr (measured, pwsh 7.6), so notices would vanish. stderr is merged into the
# pipeline and each line written to the console's stderr as it arrives; stdout is collected.
function global:__stsh_run {
    param([string[]]$Arguments)
    $PSNativeCommandUseErrorActionPreference = $false # never throw on a non-zero exit (7.3+)
    $PSNativeCommandArgumentPassing = 'Standard'
    $ErrorActionPreference = 'Continue'
    $enc = [Console]::OutputEncoding
    $pwd0 = [Environment]::GetEnvironmentVariable('PWD')
    $lines = [System.Collections.Generic.List[string]]::new()
    $status = 1
    try {
        [Console]::OutputEncoding = [System.Text.UTF8Encoding]::new($false)
        $exe = __stsh_exe
        # The user's saved values go to this one process only: they live in
        # $global:__stsh_prev, not in the environment children inherit.
        [Environment]::SetEnvironmentVariable('STSH_PREV', $global:__stsh_prev)
        # The per-user endpoint server (--serve) stays up while this shell lives.
        [Environment]::SetEnvironmentVariable('STSH_SHELL_PID', [string]$PID)
        # pwsh keeps no $env:PWD: the binary gets the location this hook walked from (it
        # walks from $PWD when that names its working directory, as for bash and zsh).
        [Environment]::SetEnvironmentVariable('PWD', $ExecutionContext.SessionState.Path.CurrentFileSystemLocation.ProviderPath)
        & $exe @Arguments 2>&1 | Microsoft.PowerShell.Core\ForEach-Object {
            if ($_ -is [System.Management.Automation.ErrorRecord]) {
                [Console]::Error.WriteLine($_.ToString())
            } else {
                $lines.Add([string]$_)
            }
        }
        $status = $global:LASTEXITCODE
    } catch {
        $status = 1
    } finally {
        [Environment]::SetEnvironmentVariable('STSH_PREV', [NullString]::Value)
        [Environment]::SetEnvironmentVariable('STSH_SHELL_PID', [NullString]::Value)
        if ($null -eq $pwd0) { $pwd0 = [NullString]::Value }
        [Environment]::SetEnvironmentVariable('PWD', $pwd0)
        [Console]::OutputEncoding = $enc
    }
    @{ Out = ($lines -join "`n"); Status = $status }
}

# Apply one change set: a JSON object {"NAME": "value" | null}. Only allow-listed names are
# touched; null removes the variable; anything unexpected is skipped.
function global:__stsh_apply {
    param([string]$Text)
    $Text = $Text.Trim()
    if (-not $Text) { return }
    $doc = $null
    try {
        # System.Text.Json, not ConvertFrom-Json: that turns ISO dates into [datetime].
        $doc = [System.Text.Json.JsonDocument]::Parse($Text)
        if ($doc.RootElement.ValueKind -ne [System.Text.Json.JsonValueKind]::Object) { return }
        foreach ($p in $doc.RootElement.EnumerateObject()) {
            if (-not $global:__stsh_allowed.Contains($p.Name)) { continue }
            if ($p.Name -ceq 'STSH_PREV') {
                # Saved values stay in this session, out of the environment.
                $global:__stsh_prev = if ($p.Value.ValueKind -eq 'String') { $p.Value.GetString() } else { $null }
                continue
            }
            switch ($p.Value.ValueKind) {
                # [NullString]::Value, not $null: PowerShell passes $null to a [string]
                # parameter as '', which sets an empty variable instead of removing it
                # (measured, pwsh 7.6 / .NET 10); an empty AWS_PROFILE breaks the AWS CLI.
                'Null' { [Environment]::SetEnvironmentVariable($p.Name, [NullString]::Value) }
                'String' { [Environment]::SetEnvironmentVariable($p.Name, $p.Value.GetString()) }
                'Number' { [Environment]::SetEnvironmentVariable($p.Name, $p.Value.GetRawText()) }
            }
        }
    } catch {
        [Console]::Error.WriteLine('stsh: could not apply the change set: ' + $_.Exception.Message)
    } finally {
        if ($doc) { $doc.Dispose() }
    }
}

# Walk up from the current file-system location to the nearest .aws-profile (no process,
# nothing opened). A tag is any entry of that name but a directory (lstat: a link, even to a
# directory, a FIFO or a device count): FileInfo reports the attributes of the entry itself,
# -1 when there is none (1024 is ReparsePoint, a link; 16 is Directory). A tag found
# elsewhere than last time is read again.
function global:__stsh_find {
    param([string]$Dir)
    $old = $global:__stsh_tagfile
    $global:__stsh_tagfile = $null
    $global:__stsh_root = $null
    # A drive's root comes with a trailing separator (New-PSDrive X FileSystem /p; cd X:\).
    $d = $Dir.TrimEnd([System.IO.Path]::DirectorySeparatorChar)
    if (-not $d) { $d = [string][System.IO.Path]::DirectorySeparatorChar }
    while ($d) {
        $f = [System.IO.Path]::Combine($d, '.aws-profile')
        # An entry that cannot even be looked at (a directory without search permission)
        # counts as absent, as it does for the binary's walk.
        $a = try { [int][System.IO.FileInfo]::new($f).Attributes } catch { -1 }
        if ($a -ne -1 -and (($a -band 1024) -or -not ($a -band 16))) {
            $global:__stsh_tagfile = $f
            $global:__stsh_root = $d
            break
        }
        $d = [System.IO.Path]::GetDirectoryName($d)
    }
    if ($global:__stsh_tagfile -cne $old) {
        $global:__stsh_stamp = -1
        $global:__stsh_target = $null
        $global:__stsh_target_stamp = -1
    }
}

# This process's user id, for the owner check (once per session; -1 when it cannot be known,
# and then tags are not refused for their owner here — the binary still refuses them).
$global:__stsh_uid = $null
function global:__stsh_my_uid {
    if ($null -eq $global:__stsh_uid) {
        $global:__stsh_uid = -1
        try {
            if ($IsLinux) {
                # /proc/PID belongs to the process's effective user.
                $global:__stsh_uid = [int](Microsoft.PowerShell.Management\Get-Item -LiteralPath "/proc/$PID" -Force -ErrorAction Stop).UnixStat.UserId
            } else {
                $t = [System.IO.Path]::GetTempFileName()
                try {
                    $global:__stsh_uid = [int](Microsoft.PowerShell.Management\Get-Item -LiteralPath $t -Force -ErrorAction Stop).UnixStat.UserId
                } finally {
                    [System.IO.File]::Delete($t)
                }
            }
        } catch {
            $global:__stsh_uid = -1
        }
    }
    $global:__stsh_uid
}

# Read the tag (PROTOCOL.md step 2) into __stsh_content, and note the modification times it
# was read at. Only a regular file (after following links), non-empty, owned by this user is
# opened, and never more than 257 bytes are read; anything else gets the fixed marker. A FIFO
# or a device is never opened: on Linux its size is 0, and Get-Item's UnixStat (lstat; where
# pwsh has it, as 7.6 does) gives its type and owner before anything is opened. The bytes are
# kept as Latin-1, one character each, so any change to them changes the key.
function global:__stsh_read {
    $f = $global:__stsh_tagfile
    $global:__stsh_content = $global:__stsh_unusable
    $global:__stsh_stamp = -1
    $global:__stsh_target = $null
    $global:__stsh_target_stamp = -1
    $stream = $null
    try {
        $now = [DateTime]::UtcNow.Ticks
        # The entry itself (lstat): for a link, its own time, so that re-pointing it is seen.
        $fi = [System.IO.FileInfo]::new($f)
        $stamp = $fi.LastWriteTimeUtc.Ticks
        $path = $f
        $keep = $true
        if ([int]$fi.Attributes -band [int][System.IO.FileAttributes]::ReparsePoint) {
            # A link: the final target is what gets checked and read. Its time is watched too;
            # a chain of links is read again at every prompt (an inner link can change).
            $final = [System.IO.File]::ResolveLinkTarget($f, $true)
            $next = [System.IO.File]::ResolveLinkTarget($f, $false)
            if ($null -eq $final -or $null -eq $next) { return }
            $na = [int]$next.Attributes # -1: the target is missing (a dangling link is watched)
            if ($na -ne -1 -and ($na -band [int][System.IO.FileAttributes]::ReparsePoint)) { $keep = $false }
            $path = $final.FullName
            $tstamp = $final.LastWriteTimeUtc.Ticks
            if ($now - $tstamp -lt $global:__stsh_racy) { $keep = $false }
            if ($keep) {
                $global:__stsh_target = $path
                $global:__stsh_target_stamp = $tstamp
            }
        }
        if ($keep -and $now - $stamp -ge $global:__stsh_racy) { $global:__stsh_stamp = $stamp }

        # Regular, non-empty, owned by me: checked before anything is opened.
        $ti = [System.IO.FileInfo]::new($path)
        if (-not $ti.Exists -or $ti.Length -le 0) { return }
        $item = Microsoft.PowerShell.Management\Get-Item -LiteralPath $path -Force -ErrorAction Stop
        $prop = $item.PSObject.Properties['UnixStat']
        if ($prop -and $prop.Value) {
            $st = $prop.Value
            if ("$($st.ItemType)" -cne 'File' -or $st.Size -le 0) { return }
            $uid = __stsh_my_uid
            if ($uid -ge 0 -and $st.UserId -ne $uid) { return }
        }

        # At most 257 bytes, every byte counted (NUL too).
        $stream = [System.IO.FileStream]::new($path, [System.IO.FileMode]::Open,
            [System.IO.FileAccess]::Read,
            [System.IO.FileShare]::ReadWrite -bor [System.IO.FileShare]::Delete, 1)
        $buf = [byte[]]::new(257)
        $n = 0
        while ($n -lt 257) {
            $got = $stream.Read($buf, $n, 257 - $n)
            if ($got -le 0) { break }
            $n += $got
        }
        $global:__stsh_content = [System.Text.Encoding]::Latin1.GetString($buf, 0, $n)
    } catch {
        $global:__stsh_content = $global:__stsh_unusable
    } finally {
        if ($stream) { $stream.Dispose() }
    }
}

# Control characters and invisible formatting made visible, as lib/text.ts visible() does.
function global:__stsh_visible {
    param([string]$Text)
    [regex]::Replace($Text, '[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]', {
            param($m)
            $c = [int][char]$m.Value
            if ($c -le 0xff) { '\x{0:x2}' -f $c } else { '\u{0:x4}' -f $c }
        })
}

# The full check (PROTOCOL.md "On every prompt"), run by the prompt wrapper when one of the
# values it compares changed. Called with its output discarded.
function global:__stsh_hook {
    # Once per command: PSReadLine calls prompt again from key handlers (InvokePrompt for
    # transient prompts, vi mode, Ctrl+L) and an empty Enter adds no history; those never
    # start a process or ask a question, and leave the check to the next command's prompt.
    $last = Microsoft.PowerShell.Core\Get-History -Count 1
    $id = if ($last) { $last.Id } else { 0 }
    if ($id -eq $global:__stsh_history_id) { return }
    $global:__stsh_history_id = $id
    # What the wrapper compares is prepared from what this check read, at the end. Should
    # this function stop early (Ctrl-C, a failure), the values stay unprepared and the next
    # command's prompt checks again — with the attempt already recorded.
    $global:__stsh_dirty = $false
    $global:__stsh_seen_pwd = $PWD.ProviderPath
    $global:__stsh_deadline = [long]::MinValue

    # 1. Walk up only when the location changed or the tag found went away (the
    # LocationChangedAction marks it dirty; the path is compared too in case another tool
    # replaced the action). Outside the file system (cd Env:) the last file-system location
    # counts, as for the programs pwsh starts.
    $loc = if ($PWD.Provider.Name -ceq 'FileSystem') {
        $PWD.ProviderPath
    } else {
        $ExecutionContext.SessionState.Path.CurrentFileSystemLocation.ProviderPath
    }
    $gone = $false
    if ($global:__stsh_tagfile) {
        try {
            $a = [int][System.IO.FileInfo]::new($global:__stsh_tagfile).Attributes
            $gone = $a -eq -1 -or (($a -band 16) -and -not ($a -band 1024))
        } catch {
            $gone = $true
        }
    }
    if ($gone -or $loc -cne $global:__stsh_pwd) {
        $global:__stsh_pwd = $loc
        __stsh_find $loc
    }

    # 2. The key: root + "`n" + the tag's content, read again only when its time (or its
    # link target's) changed. It is only ever compared.
    $key = ''
    if ($global:__stsh_tagfile) {
        $same = $false
        try {
            $same = [System.IO.File]::GetLastWriteTimeUtc($global:__stsh_tagfile).Ticks -eq $global:__stsh_stamp -and
            (-not $global:__stsh_target -or
                [System.IO.File]::GetLastWriteTimeUtc($global:__stsh_target).Ticks -eq $global:__stsh_target_stamp)
        } catch {
        }
        if (-not $same) { __stsh_read }
        $key = $global:__stsh_root + "`n" + $global:__stsh_content
    }

    # 3. Expiry, only while credentials are active (STSH_EXPIRES digits only).
    $exp = [Environment]::GetEnvironmentVariable('STSH_EXPIRES')
    $near = $false
    $margin = 600
    if ($exp -and $exp -cmatch '^[0-9]{1,18}\z') {
        $ms = [Environment]::GetEnvironmentVariable('STSH_REFRESH_MARGIN')
        if ($ms -and $ms -cmatch '^[0-9]{1,9}\z') { $margin = [long]$ms }
        $near = [DateTimeOffset]::UtcNow.ToUnixTimeSeconds() -ge ([long]$exp - $margin)
    }

    # Nothing to do unless the key changed (ignored while `assume` pins the profile) or the
    # credentials are near expiry and that expiry was not tried yet.
    $pinned = [Environment]::GetEnvironmentVariable('STSH_PINNED') -ceq '1'
    $changed = -not $pinned -and $key -cne $global:__stsh_key
    if ($changed -or ($near -and $exp -cne $global:__stsh_tried)) {
        # 4. Record the attempt before starting the binary: a cancelled or failed attempt
        # is not repeated on the next Enter.
        if (-not $pinned) { $global:__stsh_key = $key }
        if ($near) { $global:__stsh_tried = $exp }
        $quiet = $global:__stsh_noticed.Contains($key)
        $flags = $global:__stsh_args
        if ($quiet) { $flags += '--quiet' }

        # STSH_DEBUG=1: why the binary starts (the binary's own debug lines follow).
        if ([Environment]::GetEnvironmentVariable('STSH_DEBUG') -ceq '1') {
            $why = if ($changed) {
                'the tag changed (now: ' + $(if ($global:__stsh_tagfile) { __stsh_visible $global:__stsh_tagfile } else { 'no tag' }) + ')'
            } elseif ($pinned) {
                "the assumed profile is near expiry (STSH_EXPIRES $exp, margin $margin s)"
            } else {
                "the credentials are near expiry (STSH_EXPIRES $exp, margin $margin s)"
            }
            [Console]::Error.WriteLine("stsh: debug: pwsh hook: $why; running stsh $($flags -join ' ')")
        }

        # 5. Run the binary and apply its change set. Ctrl-C at the MFA question reaches the
        # binary (it exits 130) and this function carries on, but only for a while: pwsh
        # stops the prompt function 100 ms after Ctrl-C (ConsoleHost's prompt executor) and
        # then shows its default prompt. So after a cancel this function does as little as
        # it can.
        $r = __stsh_run $flags
        __stsh_apply $r.Out
        if ($r.Status -eq 2) {
            if (-not $quiet) { $null = $global:__stsh_noticed.Add($key) }
        } elseif ($r.Status -eq 4) {
            # MFA needed: ask on the terminal, but only where someone can answer.
            if ([Environment]::UserInteractive -and -not [Console]::IsInputRedirected) {
                $r = __stsh_run ($flags + '--prompt')
                __stsh_apply $r.Out
                # Ctrl-C: the binary exits at once without a word (see above), so the line
                # is said here, and the next command's prompt prepares the rest.
                if ($r.Status -eq 130) {
                    [Console]::Error.WriteLine("`nstsh: cancelled; ``stsh reload`` (or cd) asks again.")
                    return
                }
            }
        }
        $exp = [Environment]::GetEnvironmentVariable('STSH_EXPIRES')
    }

    # Prepare what the wrapper compares: the STSH_* values this decision read (after the
    # change set), and the expiry as one integer (100-ns ticks) — the moment
    # `now >= STSH_EXPIRES - margin` turns true, or never when there are no credentials or
    # that expiry was already tried.
    $ms = [Environment]::GetEnvironmentVariable('STSH_REFRESH_MARGIN')
    $global:__stsh_seen_exp = $exp
    $global:__stsh_seen_margin = $ms
    $global:__stsh_seen_pinned = [Environment]::GetEnvironmentVariable('STSH_PINNED')
    $deadline = [long]::MaxValue
    if ($exp -and $exp -cmatch '^[0-9]{1,18}\z' -and $exp -cne $global:__stsh_tried) {
        $m = if ($ms -and $ms -cmatch '^[0-9]{1,9}\z') { [long]$ms } else { 600 }
        $at = [long]$exp - $m
        if ($at -le 0) {
            $deadline = [long]::MinValue
        } elseif ($at -lt 253402300799) {
            $deadline = [DateTimeOffset]::FromUnixTimeSeconds($at).UtcTicks
        }
    }
    $global:__stsh_deadline = $deadline
}

# `assume PROFILE` pins PROFILE, `assume` shows what is active, `assume --clear` restores.
# Returns nothing; $LASTEXITCODE is the binary's status.
function global:assume {
    param([Parameter(Position = 0)][string]$Name)
    if (-not $Name) {
        $exe = __stsh_exe
        & $exe current
        return
    }
    if ($Name -ceq '--clear') {
        $r = __stsh_run ($global:__stsh_args + '--unassume')
    } elseif ($Name.StartsWith('-')) {
        [Console]::Error.WriteLine('usage: assume [PROFILE | --clear]')
        $global:LASTEXITCODE = 2
        return
    } else {
        # Ctrl-C at the question: the binary exits 130 without a word, and pwsh stops this
        # function once the binary is gone (the lines after it do not run): the line is said
        # here, in `finally`.
        $r = $null
        try {
            $r = __stsh_run ($global:__stsh_args + @('--assume', $Name, '--prompt'))
        } finally {
            if ($null -eq $r -or $r.Status -eq 130) {
                [Console]::Error.WriteLine("`nstsh: cancelled; ``assume " + (__stsh_visible $Name) + "`` asks again.")
                if ($null -eq $r) { __stsh_reset }
            }
        }
    }
    __stsh_apply $r.Out
    __stsh_reset
    $global:LASTEXITCODE = $r.Status
}

# What `stsh doctor` is told about this shell's hook (PROTOCOL.md "Other commands"):
# hook=first when the prompt is this file's wrapper (the hook runs before the theme it
# wraps), late when the wrapper still ran for the last prompt but something else wraps it,
# missing when a theme loaded later replaced the prompt.
function global:__stsh_hook_state {
    $hook = 'missing'
    if ("$function:prompt".Contains('__stsh_prompt_wrapper')) {
        $hook = 'first'
    } elseif ($global:__stsh_ran -gt 0) {
        $last = Microsoft.PowerShell.Core\Get-History -Count 1
        if (-not $last -or $global:__stsh_ran -ge $last.EndExecutionTime.ToUniversalTime().Ticks) {
            $hook = 'late'
        }
    }
    $mode = if ($global:__stsh_serve) { 'serve' } else { 'keys' }
    "shell=pwsh version=$($PSVersionTable.PSVersion) mode=$mode hook=$hook"
}

# The same commands as the program; those that change what a directory means make the next
# prompt look again. `stsh doctor` (only it) gets STSH_HOOK_STATE. $LASTEXITCODE is the
# binary's status.
function global:stsh {
    $exe = __stsh_exe
    # The command: the first word that is neither an option nor --profile's value.
    $sub = $null
    for ($i = 0; $i -lt $args.Count; $i++) {
        $a = [string]$args[$i]
        if ($a -ceq '--profile') { $i++ }
        elseif (-not $a.StartsWith('-')) { $sub = $a; break }
    }
    if ($sub -ceq 'doctor') {
        [Environment]::SetEnvironmentVariable('STSH_HOOK_STATE', (__stsh_hook_state))
        try {
            & $exe @args
        } finally {
            [Environment]::SetEnvironmentVariable('STSH_HOOK_STATE', [NullString]::Value)
        }
    } else {
        & $exe @args
    }
    $status = $global:LASTEXITCODE
    # A refused allow/deny/tag changed nothing: looking again would only say the refusal twice.
    if (@('reload', 'clear') -ccontains $sub -or
        (@('allow', 'deny', 'tag') -ccontains $sub -and $status -eq 0)) {
        __stsh_reset
    }
    $global:LASTEXITCODE = $status
}

# Tab completion (asks the program only when Tab is pressed): the words from the command's
# name to the word under the cursor go to `stsh complete -- WORD…`, which prints candidates.
# $LASTEXITCODE stays what it was.
function global:__stsh_complete {
    param([string[]]$Words)
    $PSNativeCommandUseErrorActionPreference = $false
    $PSNativeCommandArgumentPassing = 'Standard' # an empty word stays a word (7.2)
    $saved = Microsoft.PowerShell.Utility\Get-Variable -Name LASTEXITCODE -Scope Global -ErrorAction Ignore
    $had = $null -ne $saved
    $code = if ($had) { $saved.Value } else { $null }
    $out = @()
    try {
        $exe = __stsh_exe
        $out = @(& $exe complete -- @Words 2>$null)
    } catch {
    } finally {
        if ($had) {
            $global:LASTEXITCODE = $code
        } else {
            Microsoft.PowerShell.Utility\Remove-Variable -Name LASTEXITCODE -Scope Global -ErrorAction Ignore
        }
    }
    foreach ($c in $out) {
        $c = [string]$c
        if (-not $c) { continue }
        # Quoted unless PowerShell reads it back as the same bare word (a leading digit, `.`
        # or `+` could read as a number, `@` as splatting).
        $text = if ($c -cmatch '^[A-Za-z-][A-Za-z0-9._@+/:=-]*\z') { $c } else { "'" + ($c -replace "['\u2018-\u201B]", '$0$0') + "'" }
        $type = if ($c.StartsWith('-')) { 'ParameterName' } else { 'ParameterValue' }
        [System.Management.Automation.CompletionResult]::new($text, $c, $type, $c)
    }
}

# The word under the cursor as the program should see it: without the quotes typed so far.
$global:__stsh_quotes = "'`"`u{2018}`u{2019}`u{201A}`u{201B}`u{201C}`u{201D}`u{201E}"
function global:__stsh_unquote {
    param([string]$Word)
    if ($Word.Length -gt 0 -and $global:__stsh_quotes.Contains($Word[0])) { $Word = $Word.Substring(1) }
    if ($Word.Length -gt 0 -and $global:__stsh_quotes.Contains($Word[$Word.Length - 1])) {
        $Word = $Word.Substring(0, $Word.Length - 1)
    }
    $Word
}

Register-ArgumentCompleter -Native -CommandName stsh -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)
    $words = @('stsh')
    $elements = $commandAst.CommandElements
    for ($i = 1; $i -lt $elements.Count; $i++) {
        $e = $elements[$i]
        if ($e.Extent.EndOffset -ge $cursorPosition) { break }
        $words += if ($e -is [System.Management.Automation.Language.StringConstantExpressionAst]) { $e.Value } else { $e.Extent.Text }
    }
    __stsh_complete ($words + (__stsh_unquote ([string]$wordToComplete)))
}

Register-ArgumentCompleter -CommandName assume -ParameterName Name -ScriptBlock {
    param($commandName, $parameterName, $wordToComplete, $commandAst, $fakeBoundParameters)
    __stsh_complete @('assume', (__stsh_unquote ([string]$wordToComplete)))
}

# The saved values live in this session only (an older stsh exported them: take them back).
if (-not (Microsoft.PowerShell.Utility\Get-Variable -Name __stsh_prev -Scope Global -ErrorAction Ignore)) {
    $global:__stsh_prev = [Environment]::GetEnvironmentVariable('STSH_PREV')
}
[Environment]::SetEnvironmentVariable('STSH_PREV', [NullString]::Value)

# Install once per session (a global sentinel), but re-wrap the prompt when something has
# replaced it since (a theme loaded later, then this file again).
if (-not (Microsoft.PowerShell.Utility\Get-Variable -Name __stsh_hooked -Scope Global -ErrorAction Ignore)) {
    $global:__stsh_hooked = $true
    $global:__stsh_history_id = -1 # no command seen yet: the first prompt does the first check
    $global:__stsh_ran = 0 # when the wrapper last ran (UTC ticks), for doctor
    __stsh_reset
    # LocationChangedAction only marks the location dirty: it also fires for Set-Location
    # inside scripts and modules, where a process or a question would be wrong.
    $global:__stsh_location_action = [EventHandler[System.Management.Automation.LocationChangedEventArgs]] {
        param($src, $ea)
        $global:__stsh_dirty = $true
    }
    $ExecutionContext.SessionState.InvokeCommand.LocationChangedAction = [Delegate]::Combine(
        $ExecutionContext.SessionState.InvokeCommand.LocationChangedAction,
        $global:__stsh_location_action)
}

if (-not "$function:prompt".Contains('__stsh_prompt_wrapper')) {
    $global:__stsh_prompt_old = $function:prompt
    function global:prompt {
        # __stsh_prompt_wrapper (marker: this prompt is already wrapped)
        # The user's $? (starship's approach): saved first, and set again (a successful
        # statement, or an error that is ignored) just before the wrapped prompt, so a theme
        # shows the right status. The host itself keeps $? for the user's next command line
        # (measured, pwsh 7.6).
        $stsh_ok = $global:?
        # The unchanged prompt (PROTOCOL.md step 3) in a few .NET calls, no function call, no
        # cmdlet: the location, the tag's modification times, the STSH_* values the last check
        # read, and the clock against the expiry prepared then. Only when one differs does the
        # full check run (__stsh_hook). This starts no native command, so $LASTEXITCODE is
        # saved and restored only around the full check. (A file time that cannot be read, a
        # directory made unreadable, throws: then the full check runs.)
        $stsh_go = $true
        try {
            $global:__stsh_ran = [DateTime]::UtcNow.Ticks
            $stsh_go = $global:__stsh_dirty -or $PWD.ProviderPath -cne $global:__stsh_seen_pwd -or
            ($global:__stsh_tagfile -and
                ([System.IO.File]::GetLastWriteTimeUtc($global:__stsh_tagfile).Ticks -ne $global:__stsh_stamp -or
                    ($global:__stsh_target -and
                        [System.IO.File]::GetLastWriteTimeUtc($global:__stsh_target).Ticks -ne $global:__stsh_target_stamp))) -or
            [Environment]::GetEnvironmentVariable('STSH_EXPIRES') -cne $global:__stsh_seen_exp -or
            [Environment]::GetEnvironmentVariable('STSH_PINNED') -cne $global:__stsh_seen_pinned -or
            [Environment]::GetEnvironmentVariable('STSH_REFRESH_MARGIN') -cne $global:__stsh_seen_margin -or
            $global:__stsh_ran -ge $global:__stsh_deadline
        } catch {
        }
        if ($stsh_go) {
            # The value, not the PSVariable: that object is live and would read the binary's
            # code. (PSVariable.Get, not Get-Variable: a cmdlet costs 80 µs.)
            $stsh_var = $ExecutionContext.SessionState.PSVariable.Get('global:LASTEXITCODE')
            $stsh_had = $null -ne $stsh_var
            $stsh_code = if ($stsh_had) { $stsh_var.Value } else { $null }
            try {
                $null = __stsh_hook
            } catch {
            } finally {
                if ($stsh_had) {
                    $global:LASTEXITCODE = $stsh_code
                } else {
                    Microsoft.PowerShell.Utility\Remove-Variable -Name LASTEXITCODE -Scope Global -ErrorAction Ignore
                }
            }
        }
        if (-not $stsh_ok) { Microsoft.PowerShell.Utility\Write-Error '' -ErrorAction Ignore }
        if ($global:__stsh_prompt_old) { & $global:__stsh_prompt_old } else { 'PS> ' }
    }
}
