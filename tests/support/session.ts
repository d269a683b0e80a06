/**
 * A real interactive shell (zsh, bash, pwsh, fish) hooked with stsh, in a pseudo-terminal,
 * in a sandbox world with the STS emulator: what the end-to-end shell suites share. The stsh
 * on PATH is a wrapper that logs every start and execs bin/stsh, so "no process" is countable;
 * the world has no mfa_process, so the MFA question really appears on the terminal.
 */
import assert from "node:assert/strict";
import { Pty } from "./pty.ts";
import { EXE, type ShellName } from "./shells.ts";
import { STSH } from "./fixture.ts";
import { type World, world } from "./world.ts";

/** The AWS CLI v2 (an older one may come first on PATH); it ignores AWS_ENDPOINT_URL_STS. */
export const AWS_CLI = "/usr/bin/aws";

/** The MFA question stsh writes on the terminal (lines are trimmed on the screen). */
export const QUESTION = /stsh: MFA code for (\S+) \(arn:aws:iam::\d{12}:mfa\/alice\):/g;
/** The notice for a tag nobody trusted yet. */
export const UNTRUSTED = "asks for 'a': run `stsh allow` to trust it.";
/** Things that must never show on any screen of these tests. */
export const BROKEN =
  /command not found|syntax error|unbound variable|Exception|could not apply the change set|Traceback/i;

/** The user's own variables, set before anything else happens. */
export const USER_VARS = {
  AWS_PROFILE: "mine",
  AWS_REGION: "eu-north-1",
  AWS_ACCESS_KEY_ID: "AKIAUSEROWN000000001",
  // The user's own long-term secret: saved while a tag is active, never seen by children.
  AWS_SECRET_ACCESS_KEY: "UserOwnLongTermSecret0000000000000000000x",
};

/** The variables the hook keeps its state in. */
export const STATE = ["STSH_PROFILE", "STSH_ROOT", "STSH_EXPIRES", "STSH_PINNED", "STSH_PREV"];

/** The line stsh prints when a tag's credentials are set (profile, role, time left). */
export const activeLine = (profile: string, dir: string) =>
  new RegExp(
    `stsh: ${profile} \\(role ${profile} in 123456789012\\) from ${
      escapeRe(dir)
    }/\\.aws-profile: (59|60)m left, until \\d\\d:\\d\\d\\.`,
  );

/** A generous timeout for anything that starts deno (or the AWS CLI) on a loaded machine. */
export const SLOW = 30_000;

export function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** What differs between the shells. */
export interface Dialect {
  prompt: string;
  /** A command that does nothing (pwsh: an empty Enter adds no history, so the hook skips it). */
  nop: string;
  /** The rc file: where it goes, and its text around the init line(s). */
  rcFile: string;
  /** Directories to create in HOME before the shell starts. */
  dirs?: string[];
  /** The rc file's text; `init` is what follows `stsh init SHELL` (e.g. " --serve"). */
  rc(initTimes: number, init: string): string;
  cmd(exe: string, rcPath: string): string[];
  env(home: string): Record<string, string>;
  setVars(vars: Record<string, string>): string;
  cd(dir: string): string;
  /** One line: change to `dir`, then a command that fails with `code`. */
  cdAndFail(dir: string, code: number): string;
  /**
   * A line printing the previous line's status, and the status the prompt theme was given
   * (the rc file loads a theme before the init line, as README asks).
   */
  status: string;
  /** What `status` prints after a line that failed with `code`. */
  statusWant(code: number): string;
}

export const DIALECTS: Record<ShellName, Dialect> = {
  bash: {
    prompt: "bash> ",
    nop: ":",
    rcFile: ".bashrc",
    rc: (n, init) =>
      [
        `PS1='bash> '`,
        "unset HISTFILE",
        // A prompt theme: records the status it is given.
        "__theme() { __theme_st=$?; }",
        "PROMPT_COMMAND=__theme",
        ...Array(n).fill(`eval "$(stsh init bash${init})"`),
      ].join("\n") + "\n",
    cmd: (exe, rc) => [exe, "--noprofile", "--rcfile", rc, "-i"],
    env: () => ({}),
    setVars: (v) => "export " + Object.entries(v).map(([k, x]) => `${k}='${x}'`).join(" "),
    cd: (dir) => `cd '${dir}'`,
    cdAndFail: (dir, code) => `cd '${dir}'; (exit ${code})`,
    status: 'echo "st=$? theme=$__theme_st"',
    statusWant: (code) => `st=${code} theme=${code}`,
  },
  zsh: {
    prompt: "zsh> ",
    nop: ":",
    rcFile: ".zshrc",
    rc: (n, init) =>
      [
        `PS1='zsh> '`,
        "unset HISTFILE",
        // A prompt theme: records the status it is given.
        "__theme() { typeset -g __theme_st=$?; }",
        "precmd_functions+=(__theme)",
        ...Array(n).fill(`eval "$(stsh init zsh${init})"`),
      ].join("\n") + "\n",
    // -d: no /etc/zsh files; ZDOTDIR (= HOME) holds the only .zshrc.
    cmd: (exe) => [exe, "-d", "-i"],
    env: (home) => ({ ZDOTDIR: home }),
    setVars: (v) => "export " + Object.entries(v).map(([k, x]) => `${k}='${x}'`).join(" "),
    cd: (dir) => `cd '${dir}'`,
    cdAndFail: (dir, code) => `cd '${dir}'; (exit ${code})`,
    status: 'echo "st=$? theme=$__theme_st"',
    statusWant: (code) => `st=${code} theme=${code}`,
  },
  pwsh: {
    prompt: "pwsh> ",
    nop: "$null",
    // $PROFILE (CurrentUserCurrentHost) on Linux.
    rcFile: ".config/powershell/Microsoft.PowerShell_profile.ps1",
    rc: (n, init) =>
      [
        // Inline predictions would draw history text after the cursor.
        "Set-PSReadLineOption -PredictionSource None",
        // A prompt theme: records the $? and $LASTEXITCODE it is given.
        "function global:prompt { $global:__theme = \"$? $LASTEXITCODE\"; 'pwsh> ' }",
        ...Array(n).fill(`Invoke-Expression (& stsh init pwsh${init} | Out-String)`),
      ].join("\n") + "\n",
    cmd: (exe) => [exe, "-NoLogo"],
    env: () => ({
      POWERSHELL_TELEMETRY_OPTOUT: "1",
      POWERSHELL_UPDATECHECK: "Off",
      DOTNET_CLI_TELEMETRY_OPTOUT: "1",
    }),
    setVars: (v) => Object.entries(v).map(([k, x]) => `$env:${k} = '${x}'`).join("; "),
    cd: (dir) => `cd '${dir}'`,
    cdAndFail: (dir, code) => `cd '${dir}'; bash -c 'exit ${code}'`,
    status: '"st=$LASTEXITCODE theme=$__theme"',
    statusWant: (code) => `st=${code} theme=False ${code}`,
  },
  fish: {
    prompt: "fish> ",
    nop: "true",
    rcFile: ".config/fish/config.fish",
    // fish starts a background python job to scan man pages when this does not exist.
    dirs: [".local/share/fish/generated_completions"],
    rc: (n, init) =>
      [
        "function fish_greeting; end",
        // A prompt theme: records the status it is given.
        "function fish_prompt; set -g __theme_st $status; echo -n 'fish> '; end",
        ...Array(n).fill(`stsh init fish${init} | source`),
      ].join("\n") + "\n",
    cmd: (exe) => [exe, "-i"],
    env: () => ({}),
    setVars: (v) => Object.entries(v).map(([k, x]) => `set -gx ${k} '${x}'`).join("; "),
    cd: (dir) => `cd '${dir}'`,
    cdAndFail: (dir, code) => `cd '${dir}'; sh -c 'exit ${code}'`,
    status: 'echo "st=$status theme=$__theme_st"',
    statusWant: (code) => `st=${code} theme=${code}`,
  },
};

export interface SessionOpts {
  /** How many times the rc file runs the init line (default 1). */
  initTimes?: number;
  /** Hook the shell with `stsh init SHELL --serve` (the endpoint instead of keys). */
  serve?: boolean;
  roleLifetimeSeconds?: number;
  sessionLifetimeSeconds?: number;
  /** More environment for the shell. */
  env?: Record<string, string>;
}

/** A world, a wrapper-counted stsh on PATH, tagged directories and a hooked shell in a pty. */
export class Session {
  #snaps = 0;
  readonly home: string;
  readonly bin: string;
  readonly log: string;
  /** Tagged `a` (trusted), tagged `b` (trusted), and not tagged. */
  readonly dirA: string;
  readonly dirB: string;
  readonly plain: string;
  readonly promptAnywhere: RegExp;
  readonly promptLine: RegExp;
  t!: Pty;

  constructor(readonly shell: ShellName, readonly w: World, readonly d: Dialect) {
    this.home = w.sb.home;
    this.bin = w.sb.path("bin");
    this.log = w.sb.path("starts.log");
    this.dirA = w.sb.path("work", "a");
    this.dirB = w.sb.path("work", "b");
    this.plain = w.sb.path("plain");
    const p = escapeRe(d.prompt.trimEnd());
    this.promptAnywhere = new RegExp(p, "g");
    this.promptLine = new RegExp("^" + p, "m");
  }

  static async start(shell: ShellName, o: SessionOpts = {}): Promise<Session> {
    const w = await world({
      mfaProcess: false,
      roleLifetimeSeconds: o.roleLifetimeSeconds,
      sessionLifetimeSeconds: o.sessionLifetimeSeconds,
    });
    const s = new Session(shell, w, DIALECTS[shell]);
    try {
      await s.#setup(o);
    } catch (e) {
      await s.close();
      throw e;
    }
    return s;
  }

  async #setup(o: SessionOpts): Promise<void> {
    const { w, d } = this;
    // A tag above the sandbox would tag every "untagged" directory of the tests.
    for (let dir = this.home; dir !== "/";) {
      dir = dir.slice(0, dir.lastIndexOf("/")) || "/";
      const tag = `${dir === "/" ? "" : dir}/.aws-profile`;
      if (await Deno.stat(tag).then(() => true, () => false)) {
        throw new Error(`${tag} exists: set TMPDIR elsewhere to run these tests`);
      }
    }
    for (const dir of [this.bin, this.dirA, this.dirB, this.plain]) {
      await Deno.mkdir(dir, { recursive: true });
    }
    for (const dir of d.dirs ?? []) await Deno.mkdir(`${this.home}/${dir}`, { recursive: true });
    // The stsh on PATH: logs every start, then runs the real program.
    const wrapper = `${this.bin}/stsh`;
    await Deno.writeTextFile(
      wrapper,
      `#!/bin/sh\nprintf '%s\\n' "$*" >> '${this.log}'\nexec '${STSH}' "$@"\n`,
    );
    await Deno.chmod(wrapper, 0o755);
    for (const [profile, dir] of [["a", this.dirA], ["b", this.dirB]]) {
      const r = await w.run(["tag", profile, dir]);
      assert.equal(r.code, 0, r.stderr);
    }
    const rc = `${this.home}/${d.rcFile}`;
    await Deno.mkdir(rc.slice(0, rc.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(rc, d.rc(o.initTimes ?? 1, o.serve ? " --serve" : ""));
    this.t = await Pty.start({
      cmd: d.cmd(EXE[this.shell]!, rc),
      env: {
        ...w.env,
        PATH: `${this.bin}:/usr/local/bin:/usr/bin:/bin`,
        STSH_BIN: wrapper,
        TERM: "xterm-256color",
        USER: "tester",
        ...d.env(this.home),
        ...o.env,
      },
      cwd: this.plain,
      prompt: this.promptLine,
      timeoutMs: SLOW,
    });
    const screen = await this.t.waitFor(this.promptLine, { timeoutMs: 45_000 });
    // The init line prints nothing: only blank lines (zsh's PROMPT_SP) before the prompt.
    const lines = screen.split("\n");
    const first = lines.findIndex((l) => this.promptLine.test(l));
    assert.ok(lines.slice(0, first).every((l) => l === ""), `printed at start:\n${screen}`);
    // Loading ran `stsh init` and nothing else; the untagged start directory starts nothing.
    await this.run(d.nop);
    assert.deepEqual(
      await this.starts(),
      Array(o.initTimes ?? 1).fill(`init ${this.shell}${o.serve ? " --serve" : ""}`),
    );
  }

  /** Every start of the program so far (its argv). */
  async starts(): Promise<string[]> {
    try {
      return (await Deno.readTextFile(this.log)).split("\n").filter((l) => l !== "");
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return [];
      throw e;
    }
  }

  /** The starts after the first `n`. */
  async startsSince(n: number): Promise<string[]> {
    return (await this.starts()).slice(n);
  }

  run(line: string, timeoutMs = SLOW): Promise<string> {
    return this.t.run(line, { timeoutMs });
  }

  async prompts(): Promise<number> {
    return (await this.t.screen()).match(this.promptAnywhere)?.length ?? 0;
  }

  async questions(): Promise<string[]> {
    return [...(await this.t.screen()).matchAll(QUESTION)].map((m) => m[1]);
  }

  /**
   * Types `line` and Enter without run()'s marker (which would change the status), then waits
   * for the next prompt, i.e. until the prompt hook has finished. (Text typed while the hook
   * runs a program would meet the terminal in cooked mode, where PSReadLine loses Enter.)
   */
  async enter(line = ""): Promise<void> {
    const before = await this.prompts();
    await this.t.send(line);
    await this.t.key("Enter");
    await this.t.waitFor(this.promptAnywhere, { count: before + 1 });
  }

  /** Types `line` and Enter, and waits for a new MFA question, which must be for `profile`. */
  async expectQuestion(line: string, profile = "a"): Promise<void> {
    const before = (await this.questions()).length;
    await this.t.send(line);
    await this.t.key("Enter");
    try {
      await this.t.waitFor(QUESTION, { count: before + 1 });
    } catch (e) {
      const last = (await this.starts()).slice(-2);
      throw new Error(
        `no new MFA question on the terminal after ${JSON.stringify(line)} ` +
          `(last program starts: ${JSON.stringify(last)})\n${(e as Error).message}`,
      );
    }
    assert.equal((await this.questions())[before], profile);
  }

  /** Types an answer (or presses keys) at the question and waits for the prompt. */
  async answer(code: string | null): Promise<void> {
    const before = await this.prompts();
    if (code === null) await this.t.key("C-c");
    else {
      await this.t.send(code);
      await this.t.key("Enter");
    }
    await this.t.waitFor(this.promptAnywhere, { count: before + 1 });
  }

  /** The shell's exported AWS_* and STSH_* variables, as a child process sees them. */
  async vars(): Promise<Record<string, string>> {
    const file = `${this.home}/env-${++this.#snaps}`;
    await this.run(`/bin/sh -c 'env -0 > ${file}'`);
    const text = await Deno.readTextFile(file);
    await Deno.remove(file);
    const out: Record<string, string> = {};
    for (const entry of text.split("\0")) {
      const i = entry.indexOf("=");
      const name = entry.slice(0, i);
      if (i > 0 && /^(AWS_|STSH_)/.test(name)) out[name] = entry.slice(i + 1);
    }
    return out;
  }

  /** The whole environment a child process of the shell receives, as one text. */
  async childEnv(): Promise<string> {
    const file = `${this.home}/env-${++this.#snaps}`;
    await this.run(`/bin/sh -c 'env -0 > ${file}'`);
    const text = await Deno.readTextFile(file);
    await Deno.remove(file);
    return text;
  }

  /** Who the AWS CLI is, signing with whatever the shell exported. */
  async arn(): Promise<string> {
    return (await this.run(
      `${AWS_CLI} --no-cli-pager --endpoint-url ${this.w.emu.url} sts get-caller-identity --output text --query Arn`,
      45_000,
    )).trim();
  }

  async close(): Promise<void> {
    // A per-user endpoint server the hook started (`--serve`) goes with the test.
    try {
      const { pid } = JSON.parse(await Deno.readTextFile(`${this.w.env.STSH_HOME}/serve.json`));
      if (typeof pid === "number") Deno.kill(pid, "SIGTERM");
    } catch { /* none, or gone */ }
    try {
      await this.t?.close();
    } finally {
      await this.w.close();
    }
  }
}

/** Polls real time until `epochSeconds` has passed. */
export async function until(epochSeconds: number): Promise<void> {
  while (Date.now() / 1000 < epochSeconds) {
    await new Promise((r) => setTimeout(r, Math.min(200, epochSeconds * 1000 - Date.now() + 5)));
  }
}

export async function* walk(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const p = `${dir}/${e.name}`;
    yield p;
    if (e.isDirectory && !e.isSymlink) yield* walk(p);
  }
}

export const ARN_A = /^arn:aws:sts::123456789012:assumed-role\/a\/\S+$/;
export const ARN_B = /^arn:aws:sts::123456789012:assumed-role\/b\/\S+$/;

export function e2e(
  name: string,
  fn: (s: Session) => Promise<void>,
  o: SessionOpts | ((shell: ShellName) => SessionOpts) = {},
  shells = Object.keys(DIALECTS) as ShellName[],
) {
  for (const shell of shells) {
    const missing = EXE[shell] === undefined;
    Deno.test({
      name: `${shell}: ${name}${missing ? ` (skipped: ${shell} is not installed)` : ""}`,
      ignore: missing,
      async fn() {
        const s = await Session.start(shell, typeof o === "function" ? o(shell) : o);
        try {
          await fn(s);
          assert.doesNotMatch(await s.t.screen(), BROKEN);
        } finally {
          await s.close();
        }
      },
    });
  }
}
