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

$global:__stsh_bin_path = @STSH_BIN@

# The names a change set may touch (PROTOCOL.md); anything else in the JSON is ignored.
$global:__stsh_allowed = [System.Collections.Generic.HashSet[string]]::new(
    [string[]]@('AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN',
        'AWS_CREDENTIAL_EXPIRATION', 'AWS_SESSION_EXPIRATION', 'AWS_REGION',
        'AWS_DEFAULT_REGION', 'AWS_PROFILE', 'AWS_DEFAULT_PROFILE', 'AWS_SECURITY_TOKEN',
        'AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_CONTAINER_AUTHORIZATION_TOKEN',
        'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI', 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE',
        'STSH_PROFILE', 'STSH_ROOT', 'STSH_EXPIRES', 'STSH_PINNED', 'STSH_PREV'),
    [System.StringComparer]::Ordinal)

# Forget what was sent, so that the next prompt looks again (after `stsh allow|deny|tag|
# reload|clear`, after `assume`, and when this file is loaded). Without inherited state
# (STSH_ROOT empty) an untagged directory stays free: the key starts as "no tag". With
# inherited tag state it starts as a value no real key has ("`n"), so the first prompt lets
# the binary confirm or undo what the parent shell had.
function global:__stsh_reset {
    $global:__stsh_pwd = $null
    $global:__stsh_tagfile = $null
    $global:__stsh_root = $null
    $global:__stsh_tried = $null
    $global:__stsh_dirty = $true
    $global:__stsh_noticed = [System.Collections.Generic.HashSet[string]]::new([System.StringComparer]::Ordinal)
    if ([Environment]::GetEnvironmentVariable('STSH_ROOT')) {
        $global:__stsh_key = "`n"
    } else {
        $global:__stsh_key = ''
    }
}

# The program to run: the path given to `stsh init`, resolved to an application so that a
# bare name can never call the `stsh` function below (functions win over programs).
function global:__stsh_exe {
    $p = $global:__stsh_bin_path
    if (-not [System.IO.Path]::IsPathRooted($p)) {
        $c = Get-Command -Name $p -CommandType Application -ErrorAction Ignore | Select-Object -First 1
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
    $ErrorActionPreference = 'Continue'
    $enc = [Console]::OutputEncoding
    $lines = [System.Collections.Generic.List[string]]::new()
    $status = 1
    try {
        [Console]::OutputEncoding = [System.Text.UTF8Encoding]::new($false)
        $exe = __stsh_exe
        # The user's saved values go to this one process only: they live in
        # $global:__stsh_prev, not in the environment children inherit.
        [Environment]::SetEnvironmentVariable('STSH_PREV', $global:__stsh_prev)
        & $exe @Arguments 2>&1 | ForEach-Object {
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

# Walk up from the current file-system location to the nearest .aws-profile (no process).
function global:__stsh_find {
    param([string]$Dir)
    $global:__stsh_tagfile = $null
    $global:__stsh_root = $null
    $d = $Dir
    while ($d) {
        $f = [System.IO.Path]::Combine($d, '.aws-profile')
        if ([System.IO.File]::Exists($f)) {
            $global:__stsh_tagfile = $f
            $global:__stsh_root = $d
            return
        }
        $d = [System.IO.Path]::GetDirectoryName($d)
    }
}

# The first line of the tag (at most 256 characters; no process). Files of length 0 are not
# opened at all: a FIFO or a device named .aws-profile would block the prompt.
function global:__stsh_read_tag {
    param([string]$Path)
    $reader = $null
    try {
        $info = [System.IO.FileInfo]::new($Path)
        if (-not $info.Exists -or $info.Length -eq 0) { return '' }
        $reader = [System.IO.StreamReader]::new($Path, [System.Text.UTF8Encoding]::new($false))
        $buf = [char[]]::new(256)
        $n = $reader.Read($buf, 0, 256)
        $s = [string]::new($buf, 0, [Math]::Max($n, 0))
        $i = $s.IndexOf("`n")
        if ($i -ge 0) { $s = $s.Substring(0, $i) }
        return $s
    } catch {
        return ''
    } finally {
        if ($reader) { $reader.Dispose() }
    }
}

# The prompt hook (PROTOCOL.md "On every prompt"). Called by the prompt wrapper below with
# its output discarded.
function global:__stsh_hook {
    # Once per command: PSReadLine calls prompt again from key handlers (InvokePrompt for
    # transient prompts, vi mode, Ctrl+L); those must never start a process or ask a question.
    $last = Get-History -Count 1
    $id = if ($last) { $last.Id } else { 0 }
    if ($id -eq $global:__stsh_history_id) { return }
    $global:__stsh_history_id = $id

    # 1. Walk up only when the location changed (LocationChangedAction marks it dirty; the
    # path is compared too in case another tool replaced the action).
    $loc = $ExecutionContext.SessionState.Path.CurrentFileSystemLocation.ProviderPath
    if ($global:__stsh_dirty -or $loc -ne $global:__stsh_pwd -or
        ($global:__stsh_tagfile -and -not [System.IO.File]::Exists($global:__stsh_tagfile))) {
        $global:__stsh_dirty = $false
        $global:__stsh_pwd = $loc
        __stsh_find $loc
    }

    # 2. The key: root + "`n" + the tag's first line. It is only ever compared.
    $key = ''
    if ($global:__stsh_tagfile) {
        $key = $global:__stsh_root + "`n" + (__stsh_read_tag $global:__stsh_tagfile)
    }

    # 3. Expiry, only while credentials are active (STSH_EXPIRES digits only).
    $exp = [Environment]::GetEnvironmentVariable('STSH_EXPIRES')
    $near = $false
    if ($exp -and $exp -match '^[0-9]{1,18}$') {
        $margin = [Environment]::GetEnvironmentVariable('STSH_REFRESH_MARGIN')
        $m = if ($margin -and $margin -match '^[0-9]{1,9}$') { [long]$margin } else { 600 }
        $now = [DateTimeOffset]::UtcNow.ToUnixTimeSeconds()
        $near = $now -ge ([long]$exp - $m)
    }

    # Return at once unless the key changed (ignored while `assume` pins the profile) or the
    # credentials are near expiry and that expiry was not tried yet.
    $pinned = [Environment]::GetEnvironmentVariable('STSH_PINNED') -eq '1'
    if ($pinned -or $key -ceq $global:__stsh_key) {
        if (-not $near -or $exp -ceq $global:__stsh_tried) { return }
    }

    # 4. Record the attempt before starting the binary: a cancelled or failed attempt is not
    # repeated on the next Enter.
    if (-not $pinned) { $global:__stsh_key = $key }
    if ($near) { $global:__stsh_tried = $exp }
    $quiet = $global:__stsh_noticed.Contains($key)
    $flags = @('hook', 'pwsh')
    if ($quiet) { $flags += '--quiet' }

    # 5. Run the binary and apply its change set. Ctrl-C at the MFA question reaches the
    # binary (it exits 130) and this function carries on: pwsh does not stop the prompt
    # function for a native command's SIGINT (measured in a pty, pwsh 7.6).
    $r = __stsh_run $flags
    __stsh_apply $r.Out
    if ($r.Status -eq 2) {
        if (-not $quiet) { $null = $global:__stsh_noticed.Add($key) }
    } elseif ($r.Status -eq 4) {
        # MFA needed: ask on the terminal, but only where someone can answer.
        if ([Environment]::UserInteractive -and -not [Console]::IsInputRedirected) {
            $r = __stsh_run ($flags + '--prompt')
            __stsh_apply $r.Out
            # Ctrl-C: the binary exits at once without a word (a native command still writing
            # after Ctrl-C makes pwsh abort the prompt function), so the line is said here.
            if ($r.Status -eq 130) {
                [Console]::Error.WriteLine('stsh: cancelled; `stsh reload` (or cd) asks again.')
            }
        }
    }
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
    if ($Name -eq '--clear') {
        $r = __stsh_run @('hook', 'pwsh', '--unassume')
    } elseif ($Name.StartsWith('-')) {
        [Console]::Error.WriteLine('usage: assume [PROFILE | --clear]')
        $global:LASTEXITCODE = 2
        return
    } else {
        $r = __stsh_run @('hook', 'pwsh', '--assume', $Name, '--prompt')
    }
    __stsh_apply $r.Out
    __stsh_reset
    $global:LASTEXITCODE = $r.Status
}

# The same commands as the program; those that change what a directory means make the next
# prompt look again. $LASTEXITCODE is the binary's status.
function global:stsh {
    $exe = __stsh_exe
    & $exe @args
    $status = $global:LASTEXITCODE
    if ($args.Count -gt 0 -and @('allow', 'deny', 'tag', 'reload', 'clear') -ccontains $args[0]) {
        __stsh_reset
    }
    $global:LASTEXITCODE = $status
}

# Tab completion of profile names for `assume` (asks the program only when Tab is pressed).
Register-ArgumentCompleter -CommandName assume -ParameterName Name -ScriptBlock {
    param($commandName, $parameterName, $wordToComplete, $commandAst, $fakeBoundParameters)
    $saved = $global:LASTEXITCODE
    $names = @('--clear')
    try {
        $exe = __stsh_exe
        $names += @(& $exe profiles --names 2>$null)
    } catch {
    } finally {
        $global:LASTEXITCODE = $saved
    }
    foreach ($n in $names) {
        if ($n -and $n.StartsWith($wordToComplete, [StringComparison]::Ordinal)) {
            [System.Management.Automation.CompletionResult]::new($n, $n, 'ParameterValue', $n)
        }
    }
}

# The saved values live in this session only (an older stsh exported them: take them back).
if (-not (Get-Variable -Name __stsh_prev -Scope Global -ErrorAction Ignore)) {
    $global:__stsh_prev = [Environment]::GetEnvironmentVariable('STSH_PREV')
}
[Environment]::SetEnvironmentVariable('STSH_PREV', [NullString]::Value)

# Install once per session (a global sentinel), but re-wrap the prompt when something has
# replaced it since (a theme loaded later, then this file again).
if (-not (Get-Variable -Name __stsh_hooked -Scope Global -ErrorAction Ignore)) {
    $global:__stsh_hooked = $true
    $global:__stsh_history_id = -1 # no command seen yet: the first prompt does the first check
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
        # The user's $? and $LASTEXITCODE (starship's approach): saved first, restored after
        # the hook, and $? set again (a successful statement, or an error that is ignored)
        # just before the wrapped prompt, so a theme shows the right status. The host itself
        # keeps $? for the user's next command line (measured, pwsh 7.6).
        $stsh_ok = $global:?
        # The value, not the PSVariable: that object is live and would read the binary's code.
        $stsh_var = Get-Variable -Name LASTEXITCODE -Scope Global -ErrorAction Ignore
        $stsh_had = $null -ne $stsh_var
        $stsh_code = if ($stsh_had) { $stsh_var.Value } else { $null }
        try {
            $null = __stsh_hook
        } catch {
        } finally {
            if ($stsh_had) {
                $global:LASTEXITCODE = $stsh_code
            } else {
                Remove-Variable -Name LASTEXITCODE -Scope Global -ErrorAction Ignore
            }
        }
        if ($stsh_ok) { $null = $true } else { Write-Error '' -ErrorAction Ignore }
        if ($global:__stsh_prompt_old) { & $global:__stsh_prompt_old } else { 'PS> ' }
    }
}
