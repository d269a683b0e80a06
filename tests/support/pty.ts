/**
 * A pseudo-terminal driver for real interactive shells, built on tmux (Deno has no pty API).
 *
 * ```ts
 * const t = await Pty.start({
 *   cmd: ["bash", "--noprofile", "--rcfile", rc, "-i"],
 *   env: { HOME: home, PATH: "/usr/bin:/bin", TERM: "xterm-256color" }, // all it gets
 *   cwd,
 *   prompt: /^bash> /,                     // lets run() wait for the prompt hooks too
 * });
 * try {
 *   await t.waitFor("bash> ");             // the first prompt
 *   const out = await t.run("printenv X"); // types the line, waits, returns its output
 *   await t.send("false");                 // literal text
 *   await t.key("Enter");                  // tmux key names: Enter, C-c, Tab, …
 *   await t.waitFor(/^MFA code:$/m, { timeoutMs: 5000 }); // lines end trimmed
 *   console.log(await t.screen());         // whole scrollback as text
 * } finally {
 *   await t.close();                       // always: kills the private tmux server
 * }
 * ```
 *
 * Every instance runs its own tmux server: its own socket (`-S`) in a fresh temp directory,
 * `-f /dev/null` (no user configuration), one window of `cols`×`rows`. The command runs under
 * `env -i` with exactly the environment given — a tmux pane does not inherit the caller's
 * environment, and tmux would add `TMUX`/`TERM` of its own. `close()` kills the server (the
 * shell gets SIGHUP) and removes the directory. Should the test process die without calling
 * `close()` (a crash, Ctrl-C), a watchdog job inside the server notices within a second and
 * does the same, so no server or shell outlives its test run. Every wait has a timeout, and a
 * timeout error carries the screen.
 */

/** How a Pty is started. */
export interface PtyOptions {
  /** The program and its arguments (looked up on `env.PATH`). */
  cmd: string[];
  /** The complete environment of the program (nothing else is inherited). */
  env?: Record<string, string>;
  /** Working directory of the program (default: the current one). */
  cwd?: string;
  /** Terminal width (default 200). */
  cols?: number;
  /** Terminal height (default 50). */
  rows?: number;
  /**
   * How `run()` writes its end marker; default `pwsh` or `fish` when `cmd[0]` is that shell,
   * else `posix`.
   */
  dialect?: "posix" | "pwsh" | "fish";
  /** Default timeout of `waitFor()` and `run()` in milliseconds (default 10000). */
  timeoutMs?: number;
  /**
   * The shell's prompt (matched against one screen line). When given, `run()` also waits for
   * the prompt that follows the command's output, i.e. until the shell's prompt hooks ran.
   */
  prompt?: RegExp;
}

/** Options of `waitFor()`. */
export interface WaitOptions {
  /** Give up after this many milliseconds (default: the Pty's `timeoutMs`). */
  timeoutMs?: number;
  /** Wait until the pattern occurs at least this many times on the screen (default 1). */
  count?: number;
}

let instances = 0;

/** One tmux client command against the server at `socket`; killed after 10 s. */
async function tmux(
  socket: string,
  args: string[],
): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 10_000);
  try {
    const out = await new Deno.Command("tmux", {
      args: ["-u", "-S", socket, "-f", "/dev/null", ...args],
      clearEnv: true,
      env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", LANG: "C.UTF-8" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: abort.signal,
    }).output();
    const dec = new TextDecoder();
    const stderr = dec.decode(out.stderr) + (out.signal ? ` (tmux killed: ${out.signal})` : "");
    return { ok: out.success, stdout: dec.decode(out.stdout), stderr };
  } finally {
    clearTimeout(timer);
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A literal string as a global RegExp; trailing blanks also match the end of a line. */
function stringPattern(s: string): RegExp {
  const core = s.trimEnd();
  return new RegExp(escapeRegExp(core) + (core === s ? "" : "(?:[ \\t]+|$)"), "gm");
}

/** A program running in a pseudo-terminal. */
export class Pty {
  readonly #tmpdir: string;
  readonly #socket: string;
  readonly #dialect: "posix" | "pwsh" | "fish";
  readonly #timeoutMs: number;
  readonly #prompt: RegExp | undefined;
  #runs = 0;
  #closed = false;
  /** The status printed by the last `run()` (`$?` for posix shells, `$?` True/False for pwsh). */
  lastStatus = "";

  private constructor(tmpdir: string, socket: string, opts: PtyOptions) {
    this.#tmpdir = tmpdir;
    this.#socket = socket;
    const base = opts.cmd[0].split("/").pop() ?? "";
    this.#dialect = opts.dialect ??
      (/^pwsh/.test(base) ? "pwsh" : /^fish/.test(base) ? "fish" : "posix");
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
    this.#prompt = opts.prompt
      ? new RegExp(opts.prompt.source, opts.prompt.flags.replace(/[gy]/g, ""))
      : undefined;
  }

  /** Starts `opts.cmd` in a new terminal of its own. */
  static async start(opts: PtyOptions): Promise<Pty> {
    if (opts.cmd.length === 0) throw new Error("Pty.start: empty cmd");
    const tmpdir = await Deno.makeTempDir({ prefix: "stsh-pty-" });
    const socket = `${tmpdir}/tmux-${Deno.pid}-${++instances}.sock`;
    if (/[^\w./-]/.test(socket)) throw new Error(`Pty.start: unexpected temp path ${socket}`);
    const envArgs = Object.entries(opts.env ?? {}).map(([k, v]) => {
      if (k.includes("=") || k === "") throw new Error(`Pty.start: bad variable name ${k}`);
      return `${k}=${v}`;
    });
    const t = new Pty(tmpdir, socket, opts);
    // Ends this server and removes its directory once the test process is gone.
    const watchdog = `while kill -0 ${Deno.pid} 2>/dev/null; do sleep 1; done; ` +
      `tmux -S '${socket}' kill-server; rm -rf '${tmpdir}'`;
    const res = await tmux(socket, [
      "start-server",
      ";",
      "set-option",
      "-g",
      "history-limit",
      "100000",
      ";",
      // A shell that dies leaves its last screen readable instead of ending the server.
      "set-option",
      "-g",
      "remain-on-exit",
      "on",
      ";",
      "new-session",
      "-d",
      "-x",
      String(opts.cols ?? 200),
      "-y",
      String(opts.rows ?? 50),
      "-c",
      opts.cwd ?? Deno.cwd(),
      "--",
      "/usr/bin/env",
      "-i",
      ...envArgs,
      ...opts.cmd,
      ";",
      "run-shell",
      "-b",
      watchdog,
    ]);
    if (!res.ok) {
      await t.close();
      throw new Error(`Pty.start: tmux failed: ${res.stderr.trim()}`);
    }
    return t;
  }

  async #tmux(args: string[]): Promise<string> {
    if (this.#closed) throw new Error("Pty: already closed");
    const res = await tmux(this.#socket, args);
    if (!res.ok) throw new Error(`tmux ${args[0]} failed: ${res.stderr.trim()}`);
    return res.stdout;
  }

  /** Types `text` literally (no key-name interpretation; `\r` is Enter). */
  async send(text: string): Promise<void> {
    if (text === "") return;
    await this.#tmux(["send-keys", "-t", "0", "-l", "--", text]);
  }

  /** Presses keys by tmux name: `Enter`, `C-c`, `Tab`, `Up`, `C-d`, … */
  async key(...keys: string[]): Promise<void> {
    await this.#tmux(["send-keys", "-t", "0", ...keys]);
  }

  /**
   * The whole screen and scrollback as text: wrapped lines joined, trailing blanks and
   * trailing empty lines removed.
   */
  async screen(): Promise<string> {
    const raw = await this.#tmux(["capture-pane", "-p", "-J", "-t", "0", "-S", "-", "-E", "-"]);
    return raw.split("\n").map((l) => l.trimEnd()).join("\n").trimEnd();
  }

  /**
   * Polls the screen until `pattern` occurs (`count` times), and returns the screen.
   * Throws with the screen contents on timeout. `screen()` drops trailing blanks, so a string
   * pattern's trailing blanks also match the end of a line (`"bash$ "` finds an empty prompt);
   * a RegExp is used as given (add the `m` flag for `^`/`$` per line).
   */
  async waitFor(pattern: RegExp | string, opts: WaitOptions = {}): Promise<string> {
    const timeoutMs = opts.timeoutMs ?? this.#timeoutMs;
    const count = opts.count ?? 1;
    const re = typeof pattern === "string" ? stringPattern(pattern) : new RegExp(
      pattern.source,
      pattern.flags.includes("g") ? pattern.flags : pattern.flags + "g",
    );
    const deadline = Date.now() + timeoutMs;
    let screen = "";
    while (true) {
      screen = await this.screen();
      re.lastIndex = 0;
      if ((screen.match(re)?.length ?? 0) >= count) return screen;
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(
      `Pty.waitFor: timed out after ${timeoutMs} ms waiting for ${String(pattern)}` +
        (count > 1 ? ` (${count} times)` : "") + `\n--- screen ---\n${screen}\n--- end ---`,
    );
  }

  /**
   * Types `cmdline` followed by an end marker and Enter, waits for the marker (and, with the
   * `prompt` option, for the next prompt) and returns the output printed between the command
   * line and the marker. The marker is typed as `echo "__done_$((N)):$?"` (pwsh:
   * `"__done_$(N):$?"`, fish: `echo "__done_"N":$status"`), so the typed line never matches
   * what it prints; its status lands in `lastStatus`. The marker is a command of its own: it
   * changes `$?` for the *next* line, so read `$?` in the first command of a line
   * (`run('echo $?')`) or use `send()`.
   */
  async run(cmdline: string, opts: { timeoutMs?: number } = {}): Promise<string> {
    const n = ++this.#runs;
    const typed = this.#dialect === "pwsh"
      ? `"__done_$(${n}):$?"`
      : this.#dialect === "fish"
      ? `echo "__done_"${n}":$status"`
      : `echo "__done_$((${n})):$?"`;
    await this.send(`${cmdline}; ${typed}`);
    await this.key("Enter");
    const done = new RegExp(`^__done_${n}:(\\S*)$`);
    const timeoutMs = opts.timeoutMs ?? this.#timeoutMs;
    const deadline = Date.now() + timeoutMs;
    let screen = "";
    while (true) {
      screen = await this.screen();
      const lines = screen.split("\n");
      const end = lines.findLastIndex((l) => done.test(l));
      const prompt = this.#prompt;
      if (end >= 0 && (!prompt || lines.slice(end + 1).some((l) => prompt.test(l)))) {
        let start = end - 1;
        while (start >= 0 && !lines[start].includes(typed)) start--;
        this.lastStatus = done.exec(lines[end])?.[1] ?? "";
        return lines.slice(start + 1, end).join("\n");
      }
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(
      `Pty.run: timed out after ${timeoutMs} ms running ${JSON.stringify(cmdline)}` +
        `\n--- screen ---\n${screen}\n--- end ---`,
    );
  }

  /** Kills the tmux server and everything in it, and removes its socket directory. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await tmux(this.#socket, ["kill-server"]).catch(() => undefined);
    await Deno.remove(this.#tmpdir, { recursive: true }).catch(() => undefined);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
