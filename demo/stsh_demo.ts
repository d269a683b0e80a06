/**
 * `stsh-demo`: the helper command inside the demo sandbox (see demo/demo.ts, which writes a
 * `stsh-demo` launcher into the sandbox's bin directory that runs this file).
 *
 *   stsh-demo code        the code the demo MFA device (an authenticator app) shows now
 *   stsh-demo whoami      `aws sts get-caller-identity` with the credentials of this shell
 *   stsh-demo skip 55m    move the sandbox clock (and the STS emulator's) forward
 *   stsh-demo watch PID   (the sandbox's stsh wrapper runs this beside stsh) while a process
 *                         under PID waits for a line from the terminal — stsh's MFA question —
 *                         show the code the app shows, again each time it changes
 *
 * It runs inside the sandboxed shell, so under libfaketime like everything there: its own
 * clock is the sandbox clock. Its settings come from the JSON file named by its first
 * argument (written by demo.ts): the emulator's URL, the MFA serial, the clock file.
 */

/** What demo.ts tells this command, in `<sandbox>/demo.json`. */
export interface DemoState {
  /** The STS emulator, e.g. http://127.0.0.1:41234 */
  url: string;
  /** The demo MFA device. */
  serial: string;
  /** The libfaketime offset file (`+3300`), or "" when libfaketime is not installed. */
  clockFile: string;
  /** The AWS CLI to run for `whoami`, or "" when there is none. */
  aws: string;
  /** The sandbox's shell (bash, zsh, pwsh): texts name commands in its language. */
  shell?: string;
}

/** The command that lists the AWS_* variables, as a person types it in `shell`. */
export function listAwsVariables(shell: string | undefined): string {
  return shell === "pwsh" ? "Get-ChildItem Env:AWS_*" : "printenv | grep ^AWS_";
}

/** 1 -> "1 more second", 17 -> "17 more seconds". */
export function moreSeconds(n: number): string {
  return n === 1 ? "1 more second" : `${n} more seconds`;
}

const UNITS: Record<string, number> = { d: 86400, h: 3600, m: 60, s: 1 };

/** `55m`, `12h`, `90s`, `1h30m`, `2d`, or plain seconds -> seconds; null when not a duration. */
export function parseDuration(text: string): number | null {
  const t = text.trim().toLowerCase();
  if (/^\d+$/.test(t)) return Number(t);
  if (!/^(\d+[dhms])+$/.test(t)) return null;
  let total = 0;
  for (const [, n, unit] of t.matchAll(/(\d+)([dhms])/g)) total += Number(n) * UNITS[unit];
  return total;
}

/** 3300 -> "55m", 46800 -> "13h", 5400 -> "1h30m", 90 -> "1m30s". */
export function formatDuration(seconds: number): string {
  let left = Math.round(seconds);
  if (left === 0) return "0s";
  let out = "";
  for (const [unit, size] of Object.entries(UNITS)) {
    const n = Math.floor(left / size);
    if (n > 0) out += `${n}${unit}`;
    left -= n * size;
  }
  return out;
}

/** The offset in a libfaketime timestamp file (`+3300`), in seconds; 0 when empty. */
export function readOffset(text: string): number {
  const m = /^\s*\+?(\d+)\s*$/.exec(text.split("\n")[0] ?? "");
  return m ? Number(m[1]) : 0;
}

const HELP = `stsh-demo — helpers for the stsh demo sandbox

  stsh-demo code        the code your authenticator app would show now
  stsh-demo whoami      who the AWS CLI is with this shell's credentials
  stsh-demo skip 55m    let time pass (also 12h, 90s, 1h30m): the sandbox clock and the
                        STS emulator move together; the next prompt sees the new time
  While stsh asks for a code, the demo shows the code beside the question.
  exit                  leave the demo: the emulator stops and the sandbox is deleted
`;

function say(text: string) {
  console.log(text);
}

function fail(text: string): never {
  console.error(`stsh-demo: ${text}`);
  Deno.exit(1);
}

async function control(state: DemoState, path: string, method = "GET"): Promise<string> {
  let res: Response;
  try {
    res = await fetch(`${state.url}/__control/${path}`, { method });
  } catch (e) {
    fail(`the STS emulator at ${state.url} does not answer (${(e as Error).message}).`);
  }
  const body = await res.text();
  if (!res.ok) fail(`the STS emulator said ${res.status}: ${body.trim()}`);
  return body.trim();
}

/** The device's code now, and how many seconds it has left (on the emulator's clock). */
async function currentCode(state: DemoState): Promise<{ code: string; left: number }> {
  const code = await control(state, `code?serial=${encodeURIComponent(state.serial)}`);
  const now = Number(await control(state, "now"));
  return { code, left: 30 - Math.floor(now / 1000) % 30 };
}

async function code(state: DemoState) {
  const { code, left } = await currentCode(state);
  say(`Your authenticator app shows: ${code}   (for ${moreSeconds(left)}; then a new one)`);
}

async function whoami(state: DemoState) {
  if (!Deno.env.get("AWS_ACCESS_KEY_ID")) {
    say(
      "No AWS credentials in this shell yet: `cd ~/projects/dev-app` (or `assume dev`) first.",
    );
    Deno.exit(1);
  }
  if (!state.aws) {
    fail(
      "the AWS CLI is not installed (no /usr/bin/aws, no `aws` on PATH), so there is nobody " +
        `to ask. \`${listAwsVariables(state.shell)}\` shows what stsh set.`,
    );
  }
  const profile = Deno.env.get("STSH_PROFILE");
  const args = ["--endpoint-url", state.url, "--no-cli-pager", "sts", "get-caller-identity"];
  if (!Deno.env.get("AWS_REGION") && !Deno.env.get("AWS_DEFAULT_REGION")) {
    args.unshift("--region", "eu-west-1");
  }
  say(
    `$ aws ${args.join(" ")}${profile ? `      # credentials of '${profile}', set by stsh` : ""}`,
  );
  let status: Deno.CommandStatus;
  try {
    status = await new Deno.Command(state.aws, {
      args,
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn().status;
  } catch (e) {
    fail(`could not run ${state.aws}: ${(e as Error).message}`);
  }
  Deno.exit(status.code);
}

async function skip(state: DemoState, arg: string | undefined) {
  const seconds = arg === undefined ? null : parseDuration(arg);
  if (seconds === null || seconds <= 0) {
    fail("say how long: `stsh-demo skip 55m` (or 12h, 90s, 1h30m).");
  }
  if (!state.clockFile) {
    fail(
      "libfaketime is not installed (Debian/Ubuntu: apt install libfaketime), so the demo " +
        "cannot move this shell's clock.",
    );
  }
  // The emulator first (it answers with its new time), then the sandbox clock, by the same
  // amount: the two stay equal, so signatures, expiry and MFA codes agree.
  const virtual = Number(await control(state, `advance?seconds=${seconds}`, "POST"));
  let before = 0;
  try {
    before = readOffset(await Deno.readTextFile(state.clockFile));
  } catch {
    // a missing file is offset 0
  }
  const total = before + seconds;
  const tmp = `${state.clockFile}.${Deno.pid}.tmp`;
  await Deno.writeTextFile(tmp, `+${total}\n`);
  await Deno.rename(tmp, state.clockFile); // atomic: libfaketime never reads half a file
  const at = new Date(virtual);
  const clock = at.toTimeString().slice(0, 5);
  say(
    `${formatDuration(seconds)} later: it is ${clock} in the sandbox ` +
      `(${formatDuration(total)} ahead of the real clock).`,
  );
  const { code, left } = await currentCode(state);
  say(`Your authenticator app now shows: ${code}   (for ${moreSeconds(left)})`);
  say("The next prompt looks at the new time: expiring credentials are renewed,");
  say("silently while the MFA session lives, with a question once it has ended.");
}

// ---- watch: the code beside the question ----

/** Parent pid and state of every process, from /proc/PID/stat. */
function processes(): Map<number, { ppid: number; state: string }> {
  const all = new Map<number, { ppid: number; state: string }>();
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      all.set(Number(e.name), { ppid: Number(ppid), state });
    } catch {
      // gone
    }
  }
  return all;
}

/**
 * Is a process under `root` (not this one) waiting for a line from the terminal? That is
 * stsh's MFA question, whichever way it reads it: its standard input is the terminal
 * (/dev/tty or the pty itself) and it sleeps in the terminal's read.
 */
export function waitsForTerminal(root: number): boolean {
  const all = processes();
  const under = (pid: number) => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
      if (p === root) return true;
      p = all.get(p)?.ppid ?? 0;
    }
    return false;
  };
  for (const [pid, { state }] of all) {
    if (pid === Deno.pid || pid === root || state !== "S" || !under(pid)) continue;
    try {
      const input = Deno.readLinkSync(`/proc/${pid}/fd/0`);
      if (input !== "/dev/tty" && !input.startsWith("/dev/pts/")) continue;
      const wchan = Deno.readTextFileSync(`/proc/${pid}/wchan`).trim();
      if (wchan === "wait_woken" || wchan === "n_tty_read") return true;
    } catch {
      // gone, or not ours to look at
    }
  }
  return false;
}

function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Writes to the terminal itself, where the question is: pwsh collects a command's stderr and
 * passes on whole lines only, and this one ends where the person types.
 */
function toTerminal(text: string) {
  const bytes = new TextEncoder().encode(text);
  try {
    const tty = Deno.openSync("/dev/tty", { write: true });
    try {
      tty.writeSync(bytes);
    } finally {
      tty.close();
    }
  } catch {
    Deno.stderr.writeSync(bytes);
  }
}

/**
 * While `root` (the sandbox's stsh wrapper) lives: whenever a process under it waits for a
 * line from the terminal, print the code the app shows on a line of its own below the
 * question, ending where the person types; again when the code changes while they wait.
 */
async function watch(state: DemoState, rootArg: string | undefined) {
  const root = Number(rootArg);
  if (!Number.isInteger(root) || root <= 1) fail("usage: stsh-demo watch PID");
  let shown = "";
  while (alive(root)) {
    if (!waitsForTerminal(root)) {
      shown = ""; // the next question gets its own line
    } else {
      const { code, left } = await currentCode(state);
      if (code !== shown && waitsForTerminal(root)) {
        const what = shown ? "now it shows" : "your authenticator app shows";
        toTerminal(`\nstsh-demo: ${what} ${code} (for ${moreSeconds(left)}): `);
        shown = code;
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function main(args: string[]) {
  const [stateFile, command, ...rest] = args;
  if (!stateFile) fail("usage: stsh-demo COMMAND (this launcher lost its settings file).");
  let state: DemoState;
  try {
    state = JSON.parse(await Deno.readTextFile(stateFile));
  } catch (e) {
    fail(`cannot read the demo's settings (${(e as Error).message}); is the demo still running?`);
  }
  switch (command) {
    case "code":
      return await code(state);
    case "whoami":
      return await whoami(state);
    case "skip":
      return await skip(state, rest[0]);
    case "watch":
      return await watch(state, rest[0]);
    case undefined:
    case "help":
    case "-h":
    case "--help":
      return void Deno.stdout.writeSync(new TextEncoder().encode(HELP));
    default:
      console.error(`stsh-demo: unknown command '${command}'.\n`);
      Deno.stderr.writeSync(new TextEncoder().encode(HELP));
      Deno.exit(2);
  }
}

if (import.meta.main) await main(Deno.args);
