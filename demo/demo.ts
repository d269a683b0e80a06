/**
 * `deno task demo [--shell zsh|bash|pwsh]`: stsh in a sandbox, for a first look.
 *
 * It starts the STS emulator (emulator/sts.ts, in this process, on 127.0.0.1)
 * and an interactive shell whose HOME is a fresh temporary directory holding a demo
 * `~/.aws/config` (an MFA user and two roles that demand MFA), two tagged and trusted project
 * directories, and stsh's hook. `stsh-demo code` shows the MFA code, `stsh-demo skip 55m`
 * lets time pass. Leaving the shell stops the emulator and deletes the sandbox.
 *
 * Time: stsh, the shells and the AWS CLI read the real clock (stsh has no test-only clock),
 * so the shell runs under libfaketime (LD_PRELOAD) with the offset in `<sandbox>/clock`,
 * re-read on every call (FAKETIME_NO_CACHE). `stsh-demo skip` adds to that offset and
 * advances the emulator's virtual clock by the same amount; the emulator checks signatures
 * and sends its `Date` header on that virtual clock (`virtualClock`), and runs here, outside
 * faketime. The monotonic clock moves with the offset too: with FAKETIME_DONT_FAKE_MONOTONIC,
 * libfaketime 0.9.10 turns .NET's timed waits into busy loops (pwsh idles at 100% CPU).
 *
 * libfaketime keeps a semaphore and a shared-memory object in /dev/shm, named by the pid of
 * the first process that loads it; that process is `/usr/bin/env` (which then execs the
 * shell), so the shell inherits FAKETIME_SHARED ready-made. (When bash itself is that first
 * process, libfaketime's `setenv("FAKETIME_SHARED")` lands in bash's own `setenv`, after which
 * bash's `getenv` no longer finds the FAKETIME_* settings: `$EPOCHSECONDS` stays on real
 * time. Measured with bash 5.2 and libfaketime 0.9.10.) The demo removes both objects when it
 * ends, and the next demo sweeps up after one that was killed with SIGKILL.
 *
 * Nothing outside the sandbox is read or written, except the Deno cache (DENO_DIR), the
 * programs themselves and those two /dev/shm objects while the demo runs.
 */
import { StsEmulator } from "../emulator/sts.ts";
import { listAwsVariables } from "./stsh_demo.ts";
import { delimiter, dirname, join } from "node:path";

const REPO = dirname(dirname(new URL(import.meta.url).pathname));
const SHELLS = ["bash", "zsh", "pwsh"] as const;
type Shell = typeof SHELLS[number];

const LIBFAKETIME = [
  "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
  "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
  "/usr/lib/faketime/libfaketime.so.1",
  "/usr/lib64/faketime/libfaketime.so.1",
  "/usr/local/lib/faketime/libfaketime.so.1",
];

/** `bash -c` script running "$@" as a foreground job in a process group of its own. */
const PWSH_WRAPPER = "if [ -t 0 ]; then exec 3>&2 2>/dev/tty; else exec 3>&2; fi; set -m; " +
  '"$@" 2>&3 3>&-; exit $?';

const USAGE = `usage: deno task demo [--shell zsh|bash|pwsh]

Starts a sandboxed shell with stsh's hook, a demo ~/.aws/config and a local STS emulator.
The default shell is $SHELL's when it is bash, zsh or pwsh, else bash.`;

export interface DemoOptions {
  shell: Shell;
}

/** `--shell X` / `--shell=X`; the default comes from $SHELL. Throws on bad usage. */
export function parseArgs(argv: string[], env: Record<string, string | undefined>): DemoOptions {
  let shell: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--shell") {
      shell = argv[++i];
      if (shell === undefined) throw new Error("--shell needs a value: zsh, bash or pwsh.");
    } else if (a.startsWith("--shell=")) {
      shell = a.slice("--shell=".length);
    } else {
      throw new Error(`unknown argument '${a}'.`);
    }
  }
  if (shell === undefined) return { shell: defaultShell(env.SHELL) };
  if (!(SHELLS as readonly string[]).includes(shell)) {
    throw new Error(`--shell is zsh, bash or pwsh, not '${shell}'.`);
  }
  return { shell: shell as Shell };
}

/** $SHELL's basename when it is one of ours, else bash. */
export function defaultShell(shellVar: string | undefined): Shell {
  const base = (shellVar ?? "").split("/").pop() ?? "";
  return (SHELLS as readonly string[]).includes(base) ? base as Shell : "bash";
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** The absolute path of `name` on PATH (then in `extra` directories), or null. */
export function findProgram(name: string, path: string, extra: string[] = []): string | null {
  for (const dir of [...path.split(delimiter), ...extra]) {
    if (!dir.startsWith("/")) continue;
    const p = join(dir, name);
    try {
      const st = Deno.statSync(p);
      if (st.isFile && st.mode !== null && (st.mode & 0o111) !== 0) return p;
    } catch {
      // not here
    }
  }
  return null;
}

/** The Deno cache the shell's `deno` must use (the same one as this process). */
async function denoDir(): Promise<string> {
  const set = Deno.env.get("DENO_DIR");
  if (set) return set;
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    const dir = JSON.parse(new TextDecoder().decode(out.stdout)).denoDir;
    if (typeof dir === "string" && dir) return dir;
  } catch {
    // fall through
  }
  const home = Deno.env.get("HOME") ?? "/root";
  return join(Deno.env.get("XDG_CACHE_HOME") || join(home, ".cache"), "deno");
}

/** A line on stderr; never throws (the terminal may be gone when the demo is hung up). */
function tell(text: string) {
  try {
    Deno.stderr.writeSync(new TextEncoder().encode(text + "\n"));
  } catch {
    // nobody is listening any more
  }
}

const sq = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

function randomKey(prefix: string, n: number): string {
  const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  return prefix +
    Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => chars[b & 31]).join("");
}

// ---- what goes into the sandbox ----

function awsConfig(serial: string, dev: string, prod: string): string {
  return `# The stsh demo's AWS config: the usual shape, an IAM user with an MFA device and two
# roles that demand MFA. demo-user's keys are in ~/.aws/credentials. STS is a local
# emulator (AWS_ENDPOINT_URL_STS); no request leaves this machine.
[profile demo-user]
region = eu-west-1
mfa_serial = ${serial}

[profile dev]
role_arn = ${dev}
source_profile = demo-user

[profile prod]
role_arn = ${prod}
source_profile = demo-user
`;
}

function bashrc(color: boolean): string {
  const c = (code: string) => color ? `\\[\\e[${code}m\\]` : "";
  return `# ~/.bashrc of the stsh demo sandbox (written by demo/demo.ts, deleted on exit).
HISTFILE=~/.bash_history
# The prompt: the sandbox clock, the profile stsh put in effect and its time left.
PS1='${c("2")}demo \\A${c("0")} \${STSH_PROFILE:+${
    c("1;33")
  }[$STSH_PROFILE\${STSH_EXPIRES:+ $(( (STSH_EXPIRES - EPOCHSECONDS) / 60 ))m}]${c("0")} }\\w $ '
eval "$(stsh init bash)"
`;
}

function zshrc(color: boolean): string {
  const dim = color ? "%F{8}" : "", yellow = color ? "%B%F{3}" : "", off = color ? "%f%b" : "";
  return `# ~/.zshrc of the stsh demo sandbox (written by demo/demo.ts, deleted on exit).
HISTFILE=~/.zsh_history
SAVEHIST=1000
HISTSIZE=1000
bindkey -e
zmodload zsh/datetime
autoload -Uz compinit add-zsh-hook
compinit -u -d ~/.zcompdump
# The prompt: the sandbox clock, the profile stsh put in effect and its time left.
__demo_prompt() {
  __demo_segment=
  if [[ -n \${STSH_PROFILE-} ]]; then
    __demo_segment="[\$STSH_PROFILE"
    if [[ \${STSH_EXPIRES-} == <-> ]]; then
      __demo_segment+=" \$(( (STSH_EXPIRES - EPOCHSECONDS) / 60 ))m"
    fi
    __demo_segment+="] "
  fi
}
add-zsh-hook precmd __demo_prompt
setopt prompt_subst
PROMPT='${dim}demo %D{%H:%M}${off} ${yellow}\${__demo_segment}${off}%~ %% '
eval "$(stsh init zsh)"
`;
}

function pwshProfile(color: boolean): string {
  const e = (code: string) => color ? `\`e[${code}m` : "";
  return `# The stsh demo sandbox's PowerShell profile (written by demo/demo.ts, deleted on exit).
if (Get-Module PSReadLine) { Set-PSReadLineOption -PredictionSource None }
# The prompt: the sandbox clock, the profile stsh put in effect and its time left.
function global:prompt {
    $segment = ''
    if ($env:STSH_PROFILE) {
        $segment = '[' + $env:STSH_PROFILE
        if ($env:STSH_EXPIRES -match '^[0-9]+$') {
            $left = [long]$env:STSH_EXPIRES - [DateTimeOffset]::UtcNow.ToUnixTimeSeconds()
            $segment += ' ' + [Math]::Floor($left / 60) + 'm'
        }
        $segment = "${e("1;33")}$segment]${e("0")} "
    }
    $where = $executionContext.SessionState.Path.CurrentLocation.Path
    if ($where.StartsWith($HOME)) { $where = '~' + $where.Substring($HOME.Length) }
    "${e("2")}demo $([DateTime]::Now.ToString('HH:mm'))${e("0")} $segment$where PS> "
}
Invoke-Expression (& stsh init pwsh | Out-String)
`;
}

export function banner(o: {
  shell: Shell;
  sandbox: string;
  url: string;
  faketime: boolean;
  aws: boolean;
  color: boolean;
}): string {
  const b = (s: string) => o.color ? `\x1b[1m${s}\x1b[0m` : s;
  const y = (s: string) => o.color ? `\x1b[33m${s}\x1b[0m` : s;
  const lines = [
    "",
    `${b("stsh demo")} — MFA-protected AWS credentials that follow you around the shell.`,
    "",
    `This ${o.shell} is a sandbox: your own files are not touched; \`exit\` deletes it all.`,
    `HOME   ${o.sandbox}/home`,
    `STS    a local emulator at ${o.url}`,
    "~/.aws/config: an MFA user (demo-user), two roles that demand MFA (dev, prod).",
    "Tagged (`stsh tag`): ~/projects/dev-app 'dev', ~/projects/prod-infra 'prod'.",
    "",
    b("Try, in this order:"),
    `  ${y("stsh-demo code")}          the code your authenticator app would show now`,
    `  ${y("cd ~/projects/dev-app")}   stsh asks for it (the demo shows it below): type it`,
    `  ${y("stsh-demo whoami")}        the AWS CLI now runs as the dev role`,
    `  ${y("cd ../prod-infra")}        prod, and no question: the MFA session is reused`,
    `  ${y("stsh-demo skip 55m")}      an hour passes: the next prompt renews prod silently`,
    `  ${y("stsh-demo skip 12h")}      the MFA session ends: stsh asks again`,
    `  ${y("assume prod")}             pin a profile anywhere; \`assume\`, \`assume --clear\``,
    `  ${y("exit")}                    stop the emulator and delete the sandbox`,
    "",
    "More to try: `stsh status`, `stsh profiles`, `stsh-demo help`, and",
    `\`${listAwsVariables(o.shell)}\` for what stsh set.`,
  ];
  if (!o.faketime) {
    lines.push(
      "",
      "Note: libfaketime is not installed (apt install libfaketime): `stsh-demo skip`",
      "cannot move time here.",
    );
  }
  if (!o.aws) {
    lines.push("", "Note: the AWS CLI is not installed, so `stsh-demo whoami` cannot ask STS.");
  }
  return lines.join("\n") + "\n";
}

// ---- processes ----

/** Pids of every process whose environment carries `marker` (e.g. `STSH_DEMO_SANDBOX=…`). */
function markedProcesses(marker: string): number[] {
  const found: number[] = [];
  const needle = new TextEncoder().encode(marker + "\0");
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const pid = Number(e.name);
    if (pid === Deno.pid) continue;
    let env: Uint8Array;
    try {
      env = Deno.readFileSync(`/proc/${pid}/environ`);
    } catch {
      continue; // gone, or not ours
    }
    if (contains(env, needle)) found.push(pid);
  }
  return found;
}

function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    if (i > 0 && hay[i - 1] !== 0) continue; // variables start after a NUL
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

function signal(pids: number[], sig: Deno.Signal) {
  for (const pid of pids) {
    try {
      Deno.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

/** Ends every process of the sandbox: SIGHUP (what a closed terminal sends), then SIGKILL. */
async function endSandboxProcesses(marker: string): Promise<void> {
  let pids = markedProcesses(marker);
  if (!pids.length) return;
  signal(pids, "SIGHUP");
  signal(pids, "SIGCONT"); // a stopped process would not see the SIGHUP
  for (let waited = 0; waited < 2000 && pids.length; waited += 50) {
    await new Promise((r) => setTimeout(r, 50));
    pids = markedProcesses(marker);
  }
  signal(pids, "SIGKILL");
  for (let waited = 0; waited < 1000 && markedProcesses(marker).length; waited += 50) {
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** libfaketime's two /dev/shm objects, named after the first process that loaded it. */
async function removeShm(pid: number): Promise<void> {
  if (!pid) return;
  for (const name of [`faketime_shm_${pid}`, `sem.faketime_sem_${pid}`]) {
    await Deno.remove(join("/dev/shm", name)).catch(() => {});
  }
}

function running(pid: number): boolean {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).includes("demo");
  } catch {
    return false;
  }
}

/**
 * Sandboxes of earlier demos that could not clean up (SIGKILL, a power cut): their demo
 * process is gone and no process uses them. Deleted, with their /dev/shm objects.
 */
async function sweepStale(tmp: string): Promise<void> {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(tmp)];
  } catch {
    return;
  }
  for (const e of entries) {
    if (!e.isDirectory || !e.name.startsWith("stsh-demo-")) continue;
    const dir = join(tmp, e.name);
    const pid = Number(await Deno.readTextFile(join(dir, "demo.pid")).catch(() => ""));
    if (!pid || running(pid) || markedProcesses(`STSH_DEMO_SANDBOX=${dir}`).length) continue;
    await removeShm(Number(await Deno.readTextFile(join(dir, "shell.pid")).catch(() => "")));
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

// ---- the demo ----

export async function demo(opts: DemoOptions): Promise<number> {
  const env = Deno.env.toObject();
  const path = env.PATH ?? "/usr/local/bin:/usr/bin:/bin";
  const home = env.HOME ?? "";
  const shellPath = findProgram(
    opts.shell,
    path,
    opts.shell === "pwsh" && home ? [join(home, ".dotnet", "tools")] : [],
  );
  if (!shellPath) {
    console.error(`stsh demo: ${opts.shell} is not installed (not on PATH).`);
    return 1;
  }
  if (!Deno.stdin.isTerminal()) {
    tell("stsh demo: run it in a terminal: it starts an interactive shell.");
    return 1;
  }
  // STSH_DEMO_LIBFAKETIME: another path to the library, or "none" to run without it.
  const libfaketime = env.STSH_DEMO_LIBFAKETIME === "none"
    ? ""
    : env.STSH_DEMO_LIBFAKETIME || LIBFAKETIME.find(isFile) || "";
  const aws = isFile("/usr/bin/aws") ? "/usr/bin/aws" : findProgram("aws", path) ?? "";
  const color = Deno.stdout.isTerminal() && !env.NO_COLOR;

  // The sandbox, and everything that must go when the demo ends, whichever way it ends.
  const tmp = await Deno.realPath(env.TMPDIR || "/tmp").catch(() => "/tmp");
  await sweepStale(tmp);
  const sandbox = await Deno.realPath(await Deno.makeTempDir({ dir: tmp, prefix: "stsh-demo-" }));
  await Deno.writeTextFile(join(sandbox, "demo.pid"), `${Deno.pid}\n`);
  const marker = `STSH_DEMO_SANDBOX=${sandbox}`;
  let emu: StsEmulator | undefined;
  let shellPid = 0;
  let signalled = 0;
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    cleaning ??= (async () => {
      await endSandboxProcesses(marker).catch(() => {});
      await removeShm(shellPid);
      await emu?.close().catch(() => {});
      await Deno.remove(sandbox, { recursive: true }).catch(() => {});
    })();
  const onSignal = (sig: Deno.Signal, code: number) => () => {
    if (signalled) return;
    signalled = code;
    cleanup().finally(() => {
      tell(`\nstsh demo: ${sig}: STS emulator stopped, sandbox deleted.`);
      Deno.exit(code);
    });
  };
  const handlers: [Deno.Signal, () => void][] = [
    ["SIGINT", onSignal("SIGINT", 130)],
    ["SIGTERM", onSignal("SIGTERM", 143)],
    ["SIGHUP", onSignal("SIGHUP", 129)],
  ];
  for (const [sig, fn] of handlers) Deno.addSignalListener(sig, fn);

  try {
    emu = await StsEmulator.start({ control: true, virtualClock: true });
    const user = emu.addUser({
      name: "demo-user",
      accessKeyId: randomKey("AKIA", 16),
      secretAccessKey: btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(30)))),
    });
    const dev = emu.addRole({ name: "developer", account: "111111111111", requireMfa: true });
    const prod = emu.addRole({ name: "admin", account: "222222222222", requireMfa: true });

    const h = join(sandbox, "home");
    const bin = join(sandbox, "bin");
    const clockFile = libfaketime ? join(sandbox, "clock") : "";
    const stateFile = join(sandbox, "demo.json");
    const write = async (p: string, text: string, mode = 0o644) => {
      await Deno.mkdir(dirname(p), { recursive: true });
      await Deno.writeTextFile(p, text, { mode });
      await Deno.chmod(p, mode);
    };
    await Deno.mkdir(join(h, ".aws"), { recursive: true, mode: 0o700 });
    await Deno.mkdir(join(sandbox, "tmp"), { mode: 0o700 });
    await write(join(h, ".aws", "config"), awsConfig(user.mfaSerial!, dev.arn, prod.arn), 0o600);
    await write(
      join(h, ".aws", "credentials"),
      `[demo-user]\naws_access_key_id = ${user.accessKeyId}\n` +
        `aws_secret_access_key = ${user.secretAccessKey}\n`,
      0o600,
    );
    for (const [dir, what] of [["dev-app", "dev"], ["prod-infra", "prod"]]) {
      await write(
        join(h, "projects", dir, "README.md"),
        `# ${dir}\n\nA demo project: its .aws-profile names '${what}'.\n`,
      );
    }
    await write(join(h, ".bashrc"), bashrc(color));
    await write(join(h, ".zshrc"), zshrc(color));
    await write(
      join(h, ".config", "powershell", "Microsoft.PowerShell_profile.ps1"),
      pwshProfile(color),
    );
    if (clockFile) await write(clockFile, "+0\n");
    await write(
      stateFile,
      JSON.stringify({ url: emu.url, serial: user.mfaSerial, clockFile, aws, shell: opts.shell }),
    );
    const deno = Deno.execPath();
    const demoCmd = join(bin, "stsh-demo");
    await write(
      join(bin, "stsh"),
      `#!/bin/sh
# stsh from ${REPO}, for the demo sandbox; STSH_BIN makes \`stsh init\` call this file.
# The hooks' check on each cd never asks: straight to stsh. Anything that may ask for an MFA
# code runs with \`stsh-demo watch\` beside it, which shows the code the authenticator app
# shows while the question is open (\`stsh-demo code\` cannot run then).
export STSH_BIN=${sq(join(bin, "stsh"))}
ask=
[ "\${1-}" = hook ] || ask=1
for a in "$@"; do [ "$a" = --prompt ] && ask=1; done
[ -n "$ask" ] || exec ${sq(join(REPO, "bin", "stsh"))} "$@"
${sq(demoCmd)} watch $$ >/dev/null &
watcher=$!
trap 'kill "$watcher" 2>/dev/null' INT TERM HUP
${sq(join(REPO, "bin", "stsh"))} "$@"
status=$?
kill "$watcher" 2>/dev/null
exit "$status"
`,
      0o755,
    );
    await write(
      demoCmd,
      `#!/bin/sh
# stsh-demo: code, whoami, skip, watch (demo/stsh_demo.ts), for this sandbox only. (--allow-run
# in full: Deno refuses a narrowed one while LD_PRELOAD is in the environment. \`watch\` looks
# in /proc for the process reading the terminal: Deno opens /proc only with --allow-all.)
if [ "\${1-}" = watch ]; then
  exec ${sq(deno)} run --quiet --no-prompt --allow-all ${sq(join(REPO, "demo", "stsh_demo.ts"))} \\
    ${sq(stateFile)} "$@"
fi
exec ${sq(deno)} run --quiet --no-prompt --allow-env \\
  --allow-net=${new URL(emu.url).host} --allow-read=${sq(sandbox)} --allow-write=${sq(sandbox)} \\
  --allow-run ${sq(join(REPO, "demo", "stsh_demo.ts"))} ${sq(stateFile)} "$@"
`,
      0o755,
    );

    // The environment of everything in the sandbox: nothing of the caller's but the terminal,
    // the locale and where programs are. (No AWS_* of the caller's leaks in.)
    const pass = (names: string[]) =>
      Object.fromEntries(names.filter((n) => env[n] !== undefined).map((n) => [n, env[n]]));
    const baseEnv: Record<string, string> = {
      ...pass(["TERM", "COLORTERM", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "USER", "LOGNAME"]),
      ...pass(["NO_COLOR", "DOTNET_ROOT"]),
      HOME: h,
      PATH: [bin, dirname(deno), path].join(delimiter),
      SHELL: shellPath,
      TMPDIR: join(sandbox, "tmp"),
      DENO_DIR: await denoDir(),
      DENO_NO_UPDATE_CHECK: "1",
      AWS_ENDPOINT_URL_STS: emu.url,
      AWS_EC2_METADATA_DISABLED: "true",
      AWS_PAGER: "",
      PYTHONDONTWRITEBYTECODE: "1",
      POWERSHELL_TELEMETRY_OPTOUT: "1",
      POWERSHELL_UPDATECHECK: "Off",
      DOTNET_CLI_TELEMETRY_OPTOUT: "1",
      STSH_DEMO_SANDBOX: sandbox,
    };
    baseEnv.TERM ??= "xterm-256color";
    baseEnv.LANG ??= "C.UTF-8";

    // Tag and trust the two projects, the way a person would (no fake clock needed here).
    for (const [dir, profile] of [["dev-app", "dev"], ["prod-infra", "prod"]]) {
      const out = await new Deno.Command(join(bin, "stsh"), {
        args: ["tag", profile, join(h, "projects", dir)],
        env: baseEnv,
        clearEnv: true,
        cwd: h,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      if (!out.success) {
        throw new Error(
          `\`stsh tag ${profile}\` failed: ${new TextDecoder().decode(out.stderr).trim()}`,
        );
      }
    }

    const shellEnv: Record<string, string> = { ...baseEnv };
    if (libfaketime) {
      Object.assign(shellEnv, {
        LD_PRELOAD: libfaketime,
        FAKETIME_TIMESTAMP_FILE: clockFile,
        FAKETIME_NO_CACHE: "1",
        NO_FAKE_STAT: "1",
      });
    }
    const shellArgs: Record<Shell, string[]> = {
      bash: [shellPath, "--noprofile", "--rcfile", join(h, ".bashrc"), "-i"],
      // -d: not /etc/zsh/zshrc & co.; ~/.zshrc (HOME is the sandbox) sets everything up.
      zsh: [shellPath, "-d", "-i"],
      // pwsh does no job control of its own: a job-control bash gives it a process group
      // (and the terminal) of its own, so Ctrl-C at a question never reaches this process.
      // bash takes its terminal from stderr, hence /dev/tty there while `set -m` runs.
      pwsh: ["/bin/bash", "-c", PWSH_WRAPPER, "stsh-demo", shellPath, "-NoLogo"],
    };
    const [prog, ...args] = libfaketime
      ? ["/usr/bin/env", ...shellArgs[opts.shell]]
      : shellArgs[opts.shell];

    Deno.stdout.writeSync(new TextEncoder().encode(
      banner({
        shell: opts.shell,
        sandbox,
        url: emu.url,
        faketime: !!libfaketime,
        aws: !!aws,
        color,
      }),
    ));
    const child = new Deno.Command(prog, {
      args,
      env: shellEnv,
      clearEnv: true,
      cwd: h,
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    shellPid = child.pid;
    await Deno.writeTextFile(join(sandbox, "shell.pid"), `${shellPid}\n`);
    const status = await child.status;
    if (signalled) {
      await cleanup();
      return signalled;
    }
    const code = status.signal ? 128 + signalNumber(status.signal) : status.code;
    if (status.signal) tell(`stsh demo: the shell was killed by ${status.signal}.`);
    await cleanup();
    tell("stsh demo: STS emulator stopped, sandbox deleted.");
    return code;
  } catch (e) {
    tell(`stsh demo: ${(e as Error).message}`);
    await cleanup();
    return 1;
  } finally {
    for (const [sig, fn] of handlers) Deno.removeSignalListener(sig, fn);
  }
}

function signalNumber(sig: Deno.Signal): number {
  const n: Partial<Record<Deno.Signal, number>> = {
    SIGHUP: 1,
    SIGINT: 2,
    SIGQUIT: 3,
    SIGILL: 4,
    SIGABRT: 6,
    SIGBUS: 7,
    SIGFPE: 8,
    SIGKILL: 9,
    SIGSEGV: 11,
    SIGPIPE: 13,
    SIGTERM: 15,
  };
  return n[sig] ?? 0;
}

if (import.meta.main) {
  let opts: DemoOptions;
  try {
    if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
      console.log(USAGE);
      Deno.exit(0);
    }
    opts = parseArgs(Deno.args, Deno.env.toObject());
  } catch (e) {
    console.error(`stsh demo: ${(e as Error).message}\n\n${USAGE}`);
    Deno.exit(2);
  }
  Deno.exit(await demo(opts));
}
