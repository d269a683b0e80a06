/**
 * Helper processes with a deadline (design.md: "every helper process and every wait has a
 * deadline, and is killed with its process group"). A helper — `mfa_process`,
 * `credential_process`, a keyring tool — runs in its own session and process group, so that
 * on timeout, on Ctrl-C and when stsh exits, the helper *and everything it started* is
 * killed. The price: a helper has no controlling terminal. It may print on stderr (which it
 * shares with stsh); it cannot read the terminal.
 */
import { Cancelled, StshError } from "./errors.ts";
import { isWindows } from "./paths.ts";
import { visible } from "./text.ts";

/** Seconds a helper may run: STSH_HELPER_TIMEOUT, default 60. */
export function helperTimeoutMs(env: Record<string, string> = Deno.env.toObject()): number {
  const s = Number(env.STSH_HELPER_TIMEOUT);
  return Number.isFinite(s) && s > 0 ? s * 1000 : 60_000;
}

const live = new Set<Deno.ChildProcess>();
let interrupted = false;
/** Helpers' readers waiting on a pipe: Ctrl-C wakes them (see runHelperOutput). */
const wakers = new Set<() => void>();

function killGroup(child: Deno.ChildProcess, signal: Deno.Signal) {
  try {
    if (isWindows) child.kill(signal);
    else Deno.kill(-child.pid, signal);
  } catch { /* already gone */ }
}

function killAll() {
  for (const c of live) killGroup(c, "SIGKILL");
  live.clear();
}

const onInt = () => {
  interrupted = true;
  killAll();
  for (const wake of wakers) wake();
};
const onTerm = (code: number) => () => {
  killAll();
  Deno.exit(code);
};
const onTermListener = onTerm(143);
const onHupListener = onTerm(129);

function track(child: Deno.ChildProcess) {
  if (live.size === 0) {
    globalThis.addEventListener("unload", killAll);
    if (!isWindows) {
      Deno.addSignalListener("SIGINT", onInt);
      Deno.addSignalListener("SIGTERM", onTermListener);
      Deno.addSignalListener("SIGHUP", onHupListener);
    }
  }
  live.add(child);
}

function untrack(child: Deno.ChildProcess) {
  live.delete(child);
  if (live.size === 0) {
    globalThis.removeEventListener("unload", killAll);
    if (!isWindows) {
      Deno.removeSignalListener("SIGINT", onInt);
      Deno.removeSignalListener("SIGTERM", onTermListener);
      Deno.removeSignalListener("SIGHUP", onHupListener);
    }
  }
}

export interface HelperOptions {
  /** Who is running, for messages: "mfa_process of profile 'prod'". */
  what: string;
  timeoutMs?: number;
  /** Refuse output longer than this (default 64 KiB). */
  maxOutputBytes?: number;
  env?: Record<string, string>;
  /** The environment the helper sees (default: stsh's own). */
  childEnv?: Record<string, string>;
  /**
   * Fed to the helper's stdin, which is then closed (default: no stdin). The way to hand a
   * helper a secret: never in its argv, which every user of the machine can read.
   */
  input?: string | Uint8Array;
  /**
   * Keep the helper's stderr instead of passing it to the person: a failure then throws a
   * HelperFailed carrying it, for the caller to turn into one sentence of its own.
   */
  captureStderr?: boolean;
}

/** A helper that failed: why, its exit code and (with captureStderr) what it said. */
export class HelperFailed extends StshError {
  constructor(
    message: string,
    hint: string | undefined,
    readonly reason: "start" | "exit" | "timeout" | "output",
    readonly code?: number,
    readonly stderr = "",
  ) {
    super(message, hint);
    this.name = "HelperFailed";
  }
}

/**
 * Run `command` through the platform shell; resolve with its stdout when it exits 0.
 * Throws StshError (one sentence) on a start failure, a non-zero exit, a timeout or too much
 * output, and Cancelled when Ctrl-C arrived while it ran.
 */
export async function runHelper(command: string, opts: HelperOptions): Promise<string> {
  return (await runHelperOutput(command, opts)).stdout;
}

/** runHelper, with the helper's stderr too (empty unless captureStderr). */
export async function runHelperOutput(
  command: string,
  opts: HelperOptions,
): Promise<{ stdout: string; stderr: string }> {
  const ms = opts.timeoutMs ?? helperTimeoutMs(opts.env);
  const max = opts.maxOutputBytes ?? 64 * 1024;
  const shell = isWindows ? ["cmd.exe", "/d", "/s", "/c"] : ["/bin/sh", "-c"];
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(shell[0], {
      args: [...shell.slice(1), command],
      stdin: opts.input === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: opts.captureStderr ? "piped" : "inherit",
      detached: !isWindows,
      ...(opts.childEnv ? { env: opts.childEnv, clearEnv: true } : {}),
    }).spawn();
  } catch (e) {
    throw new HelperFailed(
      `${opts.what} could not start: ${visible((e as Error).message)}`,
      undefined,
      "start",
    );
  }
  interrupted = false;
  track(child);
  let why: string | undefined;
  let reason: HelperFailed["reason"] = "exit";
  let hardKill: ReturnType<typeof setTimeout> | undefined;
  // The pipes end when every process holding them has closed them, and a helper may leave
  // one behind outside its group (setsid): then stsh stops reading rather than wait for it —
  // once the killed group had a second to go, at Ctrl-C, and shortly after the helper and
  // everything in its group exited (what they printed is in the pipe already). While
  // anything of its group runs, its output is still the helper's: read on (the deadline
  // still holds).
  let wake = () => {};
  const abandoned = new Promise<null>((r) => wake = () => r(null));
  wakers.add(wake);
  let grace: ReturnType<typeof setTimeout> | undefined;
  const timer = setTimeout(() => {
    why = `did not finish within ${ms / 1000} s; stopped it`;
    reason = "timeout";
    killGroup(child, "SIGTERM");
    hardKill = setTimeout(() => {
      killGroup(child, "SIGKILL");
      grace ??= setTimeout(wake, KILLED_GRACE_MS); // unless the group's end already started one
    }, TERM_TO_KILL_MS);
  }, ms);
  let stopped = false;
  const exited = child.status.then(async (st) => {
    while (!stopped && !isWindows && groupAlive(child.pid)) {
      await new Promise((r) => setTimeout(r, 50));
    }
    grace ??= setTimeout(wake, PIPE_GRACE_MS);
    return st;
  });
  const chunks: Uint8Array[] = [];
  let size = 0;
  // Both pipes are drained while the helper runs, so neither can fill up and stall it.
  const errText = opts.captureStderr
    ? drain(child.stderr, abandoned).then((b) => new TextDecoder().decode(b))
    : Promise.resolve("");
  const fed = opts.input === undefined ? Promise.resolve() : feed(child, opts.input);
  const out = child.stdout.getReader();
  try {
    while (true) {
      const got = await Promise.race([out.read(), abandoned]);
      if (got === null || got.done) break;
      size += got.value.length;
      if (size > max) {
        why = `printed more than ${max} bytes; stopped it`;
        reason = "output";
        killGroup(child, "SIGKILL");
        break;
      }
      chunks.push(got.value);
    }
    out.cancel().catch(() => {});
    // Read to the end (or given up): what is left of the group no longer matters.
    stopped = true;
    const status = await exited;
    await Promise.race([fed, abandoned]);
    // Whatever it left behind in its group goes too (a daemon it started, a stuck child).
    killGroup(child, "SIGKILL");
    if (interrupted) throw new Cancelled();
    if (why) {
      throw new HelperFailed(
        `${opts.what} ${why}.`,
        "Check the command by running it yourself (STSH_HELPER_TIMEOUT sets the limit in seconds).",
        reason,
        undefined,
        await errText,
      );
    }
    if (!status.success) {
      throw new HelperFailed(
        `${opts.what} failed (${
          status.signal ? `killed by ${status.signal}` : `exit code ${status.code}`
        }).`,
        undefined,
        "exit",
        status.code,
        await errText,
      );
    }
  } finally {
    stopped = true;
    clearTimeout(timer);
    clearTimeout(hardKill);
    clearTimeout(grace);
    wakers.delete(wake);
    wake();
    untrack(child);
  }
  return { stdout: new TextDecoder().decode(concat(chunks)), stderr: await errText };
}

/** Does any process of the group `pgid` still run (kill -0 of the group)? */
function groupAlive(pgid: number): boolean {
  try {
    Deno.kill(-pgid, "SIGCONT"); // harmless to running processes, and no signal 0 in Deno
    return true;
  } catch {
    return false;
  }
}

/** How long stsh reads a helper's pipes after the helper exited (held by something it left). */
const PIPE_GRACE_MS = 300;
/** After its deadline: how long a helper's group has between SIGTERM and SIGKILL … */
const TERM_TO_KILL_MS = 1000;
/** … and how long its pipes are read after SIGKILL (a process of the group may be stuck). */
const KILLED_GRACE_MS = 500;

function concat(chunks: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return all;
}

/** Everything on `stream` until it ends or `stop` resolves; then it is let go. */
async function drain(stream: ReadableStream<Uint8Array>, stop: Promise<null>): Promise<Uint8Array> {
  const r = stream.getReader();
  const chunks: Uint8Array[] = [];
  try {
    while (true) {
      const got = await Promise.race([r.read(), stop]);
      if (got === null || got.done) break;
      chunks.push(got.value);
    }
  } catch { /* closed */ }
  r.cancel().catch(() => {});
  return concat(chunks);
}

/** Write `input` to the helper's stdin and close it; a helper that exits early is no error. */
async function feed(child: Deno.ChildProcess, input: string | Uint8Array): Promise<void> {
  const w = child.stdin.getWriter();
  try {
    await w.write(typeof input === "string" ? new TextEncoder().encode(input) : input);
    await w.close();
  } catch { /* it stopped reading: its exit status says why */ }
}
