/**
 * The hook scripts shell/stsh.{bash,zsh,ps1,fish} in real interactive shells, in a
 * pseudo-terminal (tests/support/pty.ts).
 *
 * These tests check the hooks' own logic, so the program behind @STSH_BIN@ is a fake
 * (tests/support/fake_stsh.bash, copied into a temp dir that is first on PATH): it logs one
 * line per invocation (its argv) and answers from a scenario file the test writes —
 * HOOK_STATUS=0|2|4 for `stsh hook SHELL`, EXPIRES=epoch to fix the expiry it hands out (as a
 * cache would), DIE_ON_INT=1 to die from Ctrl-C instead of exiting 130. With `--prompt` it
 * asks "MFA code: " on /dev/tty and exits 130 on Ctrl-C or an empty answer, like the real one.
 * Counting the log lines is how "no process on an unchanged prompt" is checked.
 *
 * Every shell starts clean (no user or system rc files; HOME, TMPDIR, ZDOTDIR in a temp dir)
 * and with strictness switched on before the hook is loaded: bash `set -u`, zsh `nounset
 * ksh_arrays sh_word_split`, pwsh `Set-StrictMode -Version Latest`.
 */
import assert from "node:assert/strict";
import { Pty } from "./support/pty.ts";
import { EXE, type ShellName } from "./support/shells.ts";
import { assertNoTagAbove, FakeProgram } from "./support/fake.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** The fake program (see the top of this file); copied into each fixture's bin/. */
const FAKE_STSH = new URL("./support/fake_stsh.bash", import.meta.url).pathname;

interface RcOpts {
  /** Shell code before the hook is loaded. */
  pre?: string;
  /** Shell code after it. */
  post?: string;
  /** Load the hook twice. */
  twice?: boolean;
  /** Scenario file contents. */
  scenario?: string;
  /** Start directory, relative to the work dir (default: "plain", untagged). */
  cwd?: string;
}

/** A temp dir with the fake, a HOME, tagged and untagged directories, and the rc files. */
class Fixture extends FakeProgram {
  readonly root: string;
  readonly bin: string;
  readonly home: string;
  readonly work: string;
  constructor(root: string) {
    super();
    this.root = root;
    this.bin = `${root}/bin`;
    this.home = `${root}/home`;
    this.work = `${root}/w`;
  }

  static async create(): Promise<Fixture> {
    const f = new Fixture(await Deno.makeTempDir({ prefix: "stsh-hooks-" }));
    await assertNoTagAbove(f.root).catch(async (e) => {
      await f.cleanup();
      throw e;
    });
    for (const d of ["bin", "home", "tmp", "zdot", "w/plain", "w/proj/sub", "w/proj2"]) {
      await Deno.mkdir(`${f.root}/${d}`, { recursive: true });
    }
    await Deno.copyFile(FAKE_STSH, `${f.bin}/stsh`);
    await Deno.chmod(`${f.bin}/stsh`, 0o755);
    await Deno.writeTextFile(`${f.work}/proj/.aws-profile`, "dev\n");
    await Deno.writeTextFile(`${f.work}/proj2/.aws-profile`, "prod\n");
    return f;
  }

  async cleanup(): Promise<void> {
    await Deno.remove(this.root, { recursive: true }).catch(() => undefined);
  }
}

/** What differs between the shells. */
interface Dialect {
  prompt: string;
  /** A command that does nothing. */
  nop: string;
  /** A command writing the variable's value (exactly) to a file. */
  saveVar(name: string, file: string): string;
  /** A command setting an environment variable. */
  setVar(name: string, value: string): string;
  /** A command changing to a directory named literally. */
  cd(dir: string): string;
  /** Starts the shell on the fixture. */
  start(f: Fixture, o: RcOpts): Promise<Pty>;
}

async function render(shell: ShellName, f: Fixture): Promise<string> {
  const ext = shell === "pwsh" ? "ps1" : shell;
  const src = await Deno.readTextFile(`${ROOT}shell/stsh.${ext}`);
  assert.ok(src.includes("@STSH_BIN@"), `shell/stsh.${ext} has no @STSH_BIN@`);
  const path = `${f.root}/init.${ext}`;
  // POSIX, fish and PowerShell single quotes look the same for a path without quotes in it.
  await Deno.writeTextFile(
    path,
    src.replaceAll("@STSH_BIN@", `'${f.bin}/stsh'`).replaceAll("@STSH_MODE@", ""),
  );
  return path;
}

function env(f: Fixture, extra: Record<string, string> = {}): Record<string, string> {
  return {
    HOME: f.home,
    TMPDIR: `${f.root}/tmp`,
    TERM: "xterm-256color",
    LANG: "C.UTF-8",
    PATH: `${f.bin}:/usr/local/bin:/usr/bin:/bin`,
    USER: "tester",
    ...extra,
  };
}

/** A prompt line on the screen (trailing blanks are trimmed there). */
function promptRe(prompt: string): RegExp {
  return new RegExp("^" + prompt.trimEnd().replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "m");
}

async function begin(cmd: string[], f: Fixture, o: RcOpts, prompt: string, e = {}): Promise<Pty> {
  await f.scenario(o.scenario ?? "HOOK_STATUS=0\n");
  const t = await Pty.start({
    cmd,
    env: env(f, e),
    cwd: `${f.work}/${o.cwd ?? "plain"}`,
    prompt: promptRe(prompt),
    timeoutMs: 15_000,
  });
  try {
    const screen = await t.waitFor(promptRe(prompt), { timeoutMs: 20_000 });
    // Loading the hook prints nothing: only blank lines (zsh's PROMPT_SP) before the prompt.
    const lines = screen.split("\n");
    const first = lines.findIndex((l) => promptRe(prompt).test(l));
    assert.ok(
      lines.slice(0, first).every((l) => l === ""),
      `something was printed before the first prompt:\n${screen}`,
    );
  } catch (e) {
    await t.close();
    throw e;
  }
  return t;
}

const SHELLS: Record<ShellName, Dialect> = {
  bash: {
    prompt: "bash> ",
    nop: ":",
    saveVar: (name, file) => `printenv ${name} > '${file}'`,
    setVar: (name, value) => `export ${name}='${value}'`,
    cd: (dir) => `cd -- '${dir.replaceAll("'", "'\\''")}'`,
    async start(f, o) {
      const init = await render("bash", f);
      const rc = `${f.root}/rc.bash`;
      await Deno.writeTextFile(
        rc,
        [
          `PS1='bash> '`,
          "set -u",
          o.pre ?? "",
          `. '${init}'`,
          o.twice ? `. '${init}'` : "",
          o.post ?? "",
        ].join("\n") + "\n",
      );
      return await begin([EXE.bash!, "--noprofile", "--rcfile", rc, "-i"], f, o, this.prompt);
    },
  },
  zsh: {
    prompt: "zsh> ",
    nop: ":",
    saveVar: (name, file) => `printenv ${name} > '${file}'`,
    setVar: (name, value) => `export ${name}='${value}'`,
    cd: (dir) => `cd -- '${dir.replaceAll("'", "'\\''")}'`,
    async start(f, o) {
      const init = await render("zsh", f);
      await Deno.writeTextFile(
        `${f.root}/zdot/.zshrc`,
        [
          `PS1='zsh> '`,
          "setopt nounset ksh_arrays sh_word_split",
          o.pre ?? "",
          `. '${init}'`,
          o.twice ? `. '${init}'` : "",
          o.post ?? "",
        ].join("\n") + "\n",
      );
      // -d: no /etc/zsh/* files; ZDOTDIR holds the only .zshrc.
      return await begin([EXE.zsh!, "-d", "-i"], f, o, this.prompt, {
        ZDOTDIR: `${f.root}/zdot`,
      });
    },
  },
  pwsh: {
    prompt: "pwsh> ",
    nop: "$null",
    saveVar: (name, file) =>
      `[IO.File]::WriteAllText('${file}', [string][Environment]::GetEnvironmentVariable('${name}'))`,
    setVar: (name, value) => `$env:${name} = '${value}'`,
    cd: (dir) => `Set-Location -LiteralPath '${dir.replace(/['‘’‚‛]/g, "$&$&")}'`,
    async start(f, o) {
      const init = await render("pwsh", f);
      const rc = `${f.root}/rc.ps1`;
      await Deno.writeTextFile(
        rc,
        [
          "Set-StrictMode -Version Latest",
          // Inline predictions would draw history text after the cursor.
          "Set-PSReadLineOption -PredictionSource None",
          // The user's prompt records the $? and $LASTEXITCODE it is given (a theme would
          // show them): the wrapper must hand them over unchanged.
          "$global:__seen = ''",
          "function global:prompt {",
          "  $ok = $?",
          "  $code = Get-Variable LASTEXITCODE -Scope Global -ValueOnly -ErrorAction Ignore",
          '  $global:__seen = "$ok $code"',
          "  'pwsh> '",
          "}",
          o.pre ?? "",
          `. '${init}'`,
          o.twice ? `. '${init}'` : "",
          o.post ?? "",
        ].join("\n") + "\n",
      );
      return await begin(
        [EXE.pwsh!, "-NoLogo", "-NoProfile", "-NoExit", "-Command", `. '${rc}'`],
        f,
        o,
        this.prompt,
        {
          POWERSHELL_TELEMETRY_OPTOUT: "1",
          POWERSHELL_UPDATECHECK: "Off",
          DOTNET_CLI_TELEMETRY_OPTOUT: "1",
        },
      );
    },
  },
  fish: {
    prompt: "fish> ",
    nop: "true",
    saveVar: (name, file) => `printenv ${name} > '${file}'`,
    setVar: (name, value) => `set -gx ${name} '${value}'`,
    cd: (dir) => `cd -- '${dir.replace(/[\\']/g, "\\$&")}'`,
    async start(f, o) {
      const init = await render("fish", f);
      const rc = `${f.root}/rc.fish`;
      await Deno.writeTextFile(
        rc,
        [
          "function fish_greeting; end",
          "function fish_prompt; echo -n 'fish> '; end",
          o.pre ?? "",
          `source '${init}'`,
          o.twice ? `source '${init}'` : "",
          o.post ?? "",
        ].join("\n") + "\n",
      );
      // --no-config: no user, system or vendor files; fish has no strict mode to switch on.
      return await begin(
        [EXE.fish!, "--no-config", "-i", "-C", `source '${rc}'`],
        f,
        o,
        this.prompt,
      );
    },
  },
};

/** Runs `body` with a fresh fixture and shell; always closes both. */
async function session(
  shell: ShellName,
  o: RcOpts,
  body: (t: Pty, f: Fixture, d: Dialect) => Promise<void>,
): Promise<void> {
  const f = await Fixture.create();
  let t: Pty | undefined;
  try {
    t = await SHELLS[shell].start(f, o);
    await body(t, f, SHELLS[shell]);
    const screen = await t.screen();
    // Strictness (set -u, nounset, StrictMode) never tripped over the hook.
    assert.doesNotMatch(
      screen,
      /unbound variable|parameter not set|has not been set|command not found|syntax error|Exception/i,
    );
  } finally {
    await t?.close();
    await f.cleanup();
  }
}

function countPrompts(screen: string, prompt: string): number {
  return screen.split("\n").filter((l) => promptRe(prompt).test(l)).length;
}

/**
 * Types `line` and Enter *without* run()'s marker (which would change $?), then waits for the
 * next prompt, i.e. until the prompt hook has finished. Waiting matters: text typed while the
 * hook runs a program meets the terminal in cooked mode, where pwsh's PSReadLine loses Enter.
 */
async function enter(t: Pty, d: Dialect, line = ""): Promise<void> {
  const before = countPrompts(await t.screen(), d.prompt);
  await t.send(line);
  await t.key("Enter");
  await t.waitFor(promptRe(d.prompt), { count: before + 1 });
}

async function readVar(t: Pty, f: Fixture, d: Dialect, name: string): Promise<string | null> {
  const file = `${f.root}/var-${name}-${crypto.randomUUID().slice(0, 6)}`;
  await t.run(d.saveVar(name, file));
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch {
    return null;
  }
  if (d === SHELLS.pwsh) return text === "" ? null : text;
  return text === "" ? null : text.replace(/\n$/, "");
}

/** The tests whose bodies need nothing of a shell but its Dialect also run in fish. */
const WITH_FISH: ShellName[] = ["bash", "zsh", "pwsh", "fish"];

function hookTest(
  name: string,
  fn: (shell: ShellName) => Promise<void>,
  only: ShellName[] = ["bash", "zsh", "pwsh"],
) {
  for (const shell of only) {
    const missing = EXE[shell] === undefined;
    Deno.test({
      name: `${shell}: ${name}${missing ? ` (skipped: ${shell} is not installed)` : ""}`,
      ignore: missing,
      sanitizeResources: true,
      sanitizeOps: true,
      fn: () => fn(shell),
    });
  }
}

// (1) The fast path: unchanged prompts start no process at all.
hookTest("200 unchanged prompts start no process", async (shell) => {
  await session(shell, { cwd: "proj" }, async (t, f, d) => {
    // The first prompt in a tagged directory asks once and gets credentials (1 h).
    await t.run(d.nop);
    assert.deepEqual(await f.calls(), [`hook ${shell}`]);
    await t.send(`${d.nop}\r`.repeat(200));
    await t.run(d.nop, { timeoutMs: 60_000 });
    const screen = await t.screen();
    assert.ok(countPrompts(screen, d.prompt) >= 202, "not all 200 prompts were drawn");
    assert.deepEqual(await f.calls(), [`hook ${shell}`], "a prompt started a process");
  });
}, WITH_FISH);

// (2) cd into a tagged directory: exactly one call; status 4 → --prompt; leaving restores.
hookTest("cd into a tagged dir calls once, asks for MFA on status 4", async (shell) => {
  await session(shell, {}, async (t, f, d) => {
    await t.run(d.nop);
    assert.deepEqual(await f.calls(), [], "an untagged start directory started a process");
    // cd in and out within one command line: nothing changed at the prompt, no call.
    await t.run("cd ../proj; cd ../plain");
    assert.deepEqual(await f.calls(), []);

    await t.run("cd ../proj");
    assert.deepEqual(await f.calls(), [`hook ${shell}`]);
    assert.equal(await readVar(t, f, d, "STSH_PROFILE"), "dev");
    assert.equal(await readVar(t, f, d, "AWS_SESSION_TOKEN"), "session");
    await t.run("cd sub");
    await t.run(d.nop);
    assert.equal((await f.calls()).length, 1, "a subdirectory of the same tag started a process");

    await f.scenario("HOOK_STATUS=4\n");
    await t.send("cd ../../proj2");
    await t.key("Enter");
    await t.waitFor(/^MFA code:$/m);
    await enter(t, d, "123456");
    assert.deepEqual((await f.calls()).slice(1), [`hook ${shell}`, `hook ${shell} --prompt`]);
    assert.equal(await readVar(t, f, d, "AWS_SESSION_TOKEN"), "code-123456");
    assert.equal(await readVar(t, f, d, "STSH_PROFILE"), "prod");

    await t.run("cd ../plain");
    assert.deepEqual((await f.calls()).slice(3), [`hook ${shell}`]);
    assert.equal(await readVar(t, f, d, "STSH_PROFILE"), null);
    assert.equal(await readVar(t, f, d, "AWS_SESSION_TOKEN"), null);
    assert.equal((await f.calls()).length, 4);
  });
}, WITH_FISH);

// (3) Ctrl-C at the MFA question, with a program that exits 130 on SIGINT (as stsh does) and
// with one that dies from it. Without its own INT trap, bash aborts the hook in the second
// case, sets $? to 130 and runs PROMPT_COMMAND again at once; zsh aborts it and skips the
// later precmd functions. Any INT trap (ours, or the user's) prevents both.
hookTest(
  "Ctrl-C at the MFA question keeps the shell, its status, and does not ask again",
  async (shell) => {
    // A prompt function that runs after the hook and records the status it was given
    // (bash: a later PROMPT_COMMAND element; zsh: a later precmd function).
    const post = {
      bash: "__after() { __after=$?; }\nPROMPT_COMMAND+=(__after)",
      zsh: "__after() { typeset -g __after=$?; }\nprecmd_functions+=(__after)",
      pwsh: "",
      fish: "", // not run in fish: tests/shell_fish_test.ts has fish's own
    }[shell];
    await session(shell, { post }, async (t, f, d) => {
      await t.run(d.nop);
      const rounds = [
        { dir: "proj", die: false, code: 1, userTrap: false },
        { dir: "proj2", die: true, code: 5, userTrap: false },
        ...(shell === "pwsh" ? [] : [{ dir: "proj", die: true, code: 3, userTrap: true }]),
      ];
      for (const r of rounds) {
        await f.scenario(`HOOK_STATUS=4\n${r.die ? "DIE_ON_INT=1\n" : ""}`);
        if (r.userTrap) await t.run("trap 'echo user''-trap' INT");
        // Prompts counted anywhere on a line: without a newline after ^C the prompt follows it.
        const anywhere = new RegExp(promptRe(d.prompt).source.slice(1), "g");
        const before = (await t.screen()).match(anywhere)?.length ?? 0;
        await t.send(
          shell === "pwsh"
            ? `cd ../${r.dir}; bash -c 'exit ${r.code}'`
            : `cd ../${r.dir}; (exit ${r.code})`,
        );
        await t.key("Enter");
        await t.waitFor(/MFA code:$/m);
        await t.key("C-c");
        await t.waitFor(anywhere, { count: before + 1 });
        if (shell === "pwsh") {
          assert.equal(await t.run('"st=$? code=$LASTEXITCODE"'), `st=False code=${r.code}`);
        } else {
          assert.equal(
            await t.run('echo "st=$? after=$__after"'),
            `st=${r.code} after=${r.code}`,
          );
        }
        if (r.userTrap) {
          // The user's trap did not run for our question, and is back afterwards.
          assert.doesNotMatch(await t.screen(), /user-trap/);
          assert.match(
            await t.run(shell === "bash" ? "trap -p INT" : "trap"),
            /'echo user-trap' (SIG)?INT/,
          );
        }
        await enter(t, d);
        await t.run(d.nop);
        assert.equal(await t.run("echo alive"), "alive");
        assert.equal(await readVar(t, f, d, "AWS_SESSION_TOKEN"), null);
      }
      assert.deepEqual(
        await f.calls(),
        rounds.flatMap(() => [`hook ${shell}`, `hook ${shell} --prompt`]),
      );
    });
  },
);

// Protocol step 3: near expiry the binary is asked once per expiry value, pinned or not.
hookTest(
  "credentials near expiry are refreshed once per expiry, pinned ones too",
  async (shell) => {
    const soon = Math.floor(Date.now() / 1000) + 300; // inside the default 600 s margin
    await session(shell, { scenario: `EXPIRES=${soon}\n` }, async (t, f, d) => {
      await t.run("cd ../proj"); // a new tag: call; the credentials expire in 5 minutes
      await t.run(d.nop); // near expiry: one refresh (the same expiry comes back, as from a cache)
      await t.run(d.nop);
      await t.run(d.nop);
      assert.deepEqual(await f.calls(), [`hook ${shell}`, `hook ${shell}`]);

      // STSH_REFRESH_MARGIN: with 60 s, 6 minutes left is not near; with 1000 s it is.
      await t.run(d.setVar("STSH_REFRESH_MARGIN", "60"));
      await f.scenario(`EXPIRES=${soon + 60}\n`);
      await t.run("cd ../proj2");
      await t.run(d.nop);
      assert.equal((await f.calls()).length, 3);
      await t.run(d.setVar("STSH_REFRESH_MARGIN", "1000"));
      await t.run(d.nop);
      assert.equal((await f.calls()).length, 4);

      // Pinned by assume: a tag never replaces it, but its expiry is still refreshed, once.
      await f.scenario(`EXPIRES=${soon + 120}\n`);
      await t.run("assume prod");
      await t.run(d.nop);
      await t.run("cd ../proj");
      await t.run(d.nop);
      assert.deepEqual((await f.calls()).slice(4), [
        `hook ${shell} --assume prod --prompt`,
        `hook ${shell}`,
      ]);
    });
  },
  WITH_FISH,
);

// Protocol step 3 on the fast path: an unchanged prompt itself notices that the deadline
// (STSH_EXPIRES - margin) passed; nothing else changes between the two prompts but the clock.
hookTest("an unchanged prompt notices the deadline passing", async (shell) => {
  await session(shell, {}, async (t, f, d) => {
    // The run/ directory the real program keeps: with it bash, zsh and fish take the fast path
    // (the tag older than their reference file) instead of reading the tag at every prompt.
    await Deno.mkdir(`${f.home}/.aws/stsh/run`, { recursive: true, mode: 0o700 });
    const deadline = Math.floor(Date.now() / 1000) + 4; // near expiry 4 s from now
    await f.scenario(`EXPIRES=${deadline + 600}\n`); // the default margin
    await t.run("cd ../proj");
    await t.run(d.nop);
    await t.run(d.nop);
    // (Only when the clock did not pass the deadline meanwhile, as on a very slow machine.)
    if (Date.now() < deadline * 1000 - 500) assert.deepEqual(await f.calls(), [`hook ${shell}`]);
    // Past it (fish's clock may run up to 1 s late, never early): the next prompt calls.
    await new Promise((r) => setTimeout(r, Math.max(0, deadline * 1000 + 1500 - Date.now())));
    await t.run(d.nop);
    await t.run(d.nop);
    assert.deepEqual(await f.calls(), [`hook ${shell}`, `hook ${shell}`]);
  });
}, WITH_FISH);

// (4) Loading the hook twice installs it once.
hookTest("loading the hook twice runs it once per prompt", async (shell) => {
  await session(shell, { twice: true }, async (t, f, d) => {
    if (shell === "bash") {
      assert.equal(await t.run(`echo "[\${PROMPT_COMMAND[*]}]"`), "[__stsh_hook]");
    } else if (shell === "zsh") {
      assert.equal(
        await t.run(`echo "[\${precmd_functions[*]}] [\${chpwd_functions[*]}]"`),
        // No compinit in this rc: the one-time completion check left at the first prompt.
        "[__stsh_precmd] [__stsh_chpwd]",
      );
    } else {
      assert.equal(
        await t.run(
          "$ExecutionContext.SessionState.InvokeCommand.LocationChangedAction.GetInvocationList().Count",
        ),
        "1",
      );
      // The wrapper wrapped the user's prompt, not itself.
      assert.equal(
        await t.run('"$global:__stsh_prompt_old" -like "*__stsh_prompt_wrapper*"'),
        "False",
      );
    }
    await t.run("cd ../proj");
    await t.run(d.nop);
    assert.deepEqual(await f.calls(), [`hook ${shell}`]);
    await t.run("cd ../proj2");
    assert.deepEqual(await f.calls(), [`hook ${shell}`, `hook ${shell}`]);
  });
});

hookTest("install keeps other PROMPT_COMMAND entries, in every form", async () => {
  const pre = [
    '__seen() { __last="$? ${PIPESTATUS[*]}"; }',
    // What starship's init does with an existing string PROMPT_COMMAND (starship.bash).
    'starship_precmd() { local STATUS=$?; eval "${STARSHIP_PROMPT_COMMAND-}"; }',
    "PROMPT_COMMAND='__seen; '", // a string ending in '; ' (the ';;' trap)
  ].join("\n");
  await session("bash", { pre, twice: true }, async (t, f) => {
    const init = `. '${f.root}/init.bash'`;
    // Shared with a later command, the hook returns the user's $? for it to read.
    assert.equal(await t.run('echo "[$PROMPT_COMMAND]"'), "[__stsh_hook_keep;__seen]");
    await enter(t, SHELLS.bash, "(exit 5)");
    assert.match(await t.run('echo "$__last"'), /^5 /);
    // An array (bash 5.1+): prepended once, other elements kept.
    await t.run(`PROMPT_COMMAND=(__seen 'true'); ${init}; ${init}`);
    assert.equal(
      await t.run('echo "${#PROMPT_COMMAND[@]}:${PROMPT_COMMAND[*]}"'),
      "3:__stsh_hook __seen true",
    );
    // Later array elements still see the user's $? and PIPESTATUS after the hook ran.
    await enter(t, SHELLS.bash, "cd ../proj; false | true | (exit 3)");
    assert.equal(await t.run('echo "$__last"'), "3 1 0 3");
    assert.deepEqual(await f.calls(), ["hook bash"]);
    // starship already owns a string PROMPT_COMMAND: go into STARSHIP_PROMPT_COMMAND.
    await t.run(
      `unset PROMPT_COMMAND; PROMPT_COMMAND=starship_precmd; STARSHIP_PROMPT_COMMAND='__seen;'; ${init}; ${init}`,
    );
    assert.equal(
      await t.run('echo "[$PROMPT_COMMAND] [$STARSHIP_PROMPT_COMMAND]"'),
      "[starship_precmd] [__stsh_hook_keep;__seen;]",
    );
    await t.run("cd ../proj2");
    assert.deepEqual(await f.calls(), ["hook bash", "hook bash"]);
    // bash-preexec: first in precmd_functions, and nowhere else.
    await t.run(
      `unset PROMPT_COMMAND; bash_preexec_imported=defined; precmd_functions=(__seen); ${init}; ${init}`,
    );
    assert.equal(
      await t.run(
        'echo "[${PROMPT_COMMAND-}] [${precmd_functions[*]}] [$STARSHIP_PROMPT_COMMAND]"',
      ),
      "[] [__stsh_hook __seen] [__seen;]",
    );
  });
}, ["bash"]);

// (5) Hostile tag contents are data: never executed, passed through unchanged.
const HOSTILE = [
  "$(touch PWNED)",
  "`touch PWNED`",
  "'; touch PWNED; '",
  '"; touch PWNED; "',
  "dev\ntouch PWNED",
  "O’Brien’; New-Item PWNED; ‘",
  "$(New-Item PWNED)",
  "${IFS}x;touch${IFS}PWNED",
];

hookTest("hostile tag contents never execute", async (shell) => {
  await session(shell, {}, async (t, f, d) => {
    const path = await readVar(t, f, d, "PATH");
    for (const [i, text] of HOSTILE.entries()) {
      await Deno.mkdir(`${f.work}/h${i}`);
      await Deno.writeTextFile(`${f.work}/h${i}/.aws-profile`, text + "\n");
    }
    for (const [i, text] of HOSTILE.entries()) {
      await t.run(`cd ../h${i}`);
      assert.equal(await readVar(t, f, d, "STSH_PROFILE"), text.split("\n")[0], `tag ${i}`);
      assert.equal(await readVar(t, f, d, "EVIL"), null);
      await t.run("cd ../plain");
    }
    // A hostile directory name (the key holds $PWD; the walk uses it).
    const evil = "$(touch PWNED) `touch PWNED`;'x\"";
    await Deno.mkdir(`${f.work}/${evil}`);
    await Deno.writeTextFile(`${f.work}/${evil}/.aws-profile`, "dev\n");
    await t.run(d.cd(`../${evil}`));
    assert.equal(await readVar(t, f, d, "STSH_PROFILE"), "dev");
    await t.run(d.nop);
    await t.run("cd ..");
    assert.equal(await readVar(t, f, d, "PATH"), path);
    assert.equal((await f.calls()).length, 2 * HOSTILE.length + 2);
    const found: string[] = [];
    for await (const e of walk(f.root)) if (e.endsWith("/PWNED")) found.push(e);
    assert.deepEqual(found, [], "a tag's contents were executed");
  });
}, WITH_FISH);

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const p = `${dir}/${e.name}`;
    yield p;
    if (e.isDirectory) yield* walk(p);
  }
}

// (6) The stsh wrapper forgets, so the next prompt looks again; notices are --quiet once seen.
hookTest("stsh allow makes the next prompt call again", async (shell) => {
  await session(shell, { scenario: "HOOK_STATUS=2\n" }, async (t, f, d) => {
    await t.run("cd ../proj");
    await t.waitFor("asks for 'dev'");
    await t.run("cd sub");
    await t.run(d.nop);
    assert.deepEqual(await f.calls(), [`hook ${shell}`]);
    await t.run("cd ../../plain");
    await t.run("cd ../proj");
    assert.deepEqual(await f.calls(), [`hook ${shell}`, `hook ${shell}`, `hook ${shell} --quiet`]);

    // A refused allow changed nothing: the next prompt does not look again (which would
    // print the refusal a second time).
    await f.scenario("HOOK_STATUS=2\nREFUSE=2\n");
    assert.equal(await t.run("stsh allow"), "fake-stsh allow");
    if (shell !== "pwsh") assert.equal(t.lastStatus, "2");
    await t.run(d.nop);
    assert.deepEqual((await f.calls()).slice(3), ["allow"]);

    await f.scenario("HOOK_STATUS=0\n");
    assert.equal(await t.run("stsh allow"), "fake-stsh allow");
    assert.deepEqual((await f.calls()).slice(4), ["allow", `hook ${shell}`]);
    assert.equal(await readVar(t, f, d, "STSH_PROFILE"), "dev");
    await t.run(d.nop);
    assert.equal((await f.calls()).length, 6);
    // Commands that change nothing about directories do not reset.
    await t.run("stsh version");
    await t.run(d.nop);
    assert.deepEqual((await f.calls()).slice(6), ["version"]);
    // The wrapper hands back the program's exit status.
    if (shell === "pwsh") {
      assert.equal(await t.run("stsh fail; $LASTEXITCODE"), "3");
    } else {
      await t.run("stsh fail");
      assert.equal(t.lastStatus, "3");
    }
  });
}, WITH_FISH);

// (7) assume / assume --clear / assume, and Tab completion of profile names.
hookTest("assume pins a profile, assume --clear restores, Tab completes names", async (shell) => {
  // zsh: compinit runs after the hook is loaded (the deferred compdef path).
  const post = shell === "zsh" ? "autoload -Uz compinit; compinit -u -D" : "";
  await session(shell, { post }, async (t, f, d) => {
    // Extra words: refused with the usage, nothing run (pwsh's binder refuses them itself).
    for (const line of ["assume prod extra", "assume --clear extra"]) {
      assert.match(
        await t.run(line),
        shell === "pwsh"
          ? /positional parameter cannot be found/i
          : /usage: assume \[PROFILE \| --clear\]/,
      );
      if (shell !== "pwsh") assert.equal(t.lastStatus, "2");
    }
    assert.deepEqual(await f.calls(), []);
    // An option other than --clear: the usage too, and nothing run.
    assert.match(await t.run("assume --bogus"), /usage: assume \[PROFILE \| --clear\]/);
    if (shell !== "pwsh") assert.equal(t.lastStatus, "2");
    assert.deepEqual(await f.calls(), []);
    await t.run("assume prod");
    assert.deepEqual(await f.calls(), [`hook ${shell} --assume prod --prompt`]);
    assert.equal(await readVar(t, f, d, "STSH_PROFILE"), "prod");
    assert.equal(await readVar(t, f, d, "STSH_PINNED"), "1");
    // Pinned: a tagged directory does not replace it.
    await t.run("cd ../proj");
    await t.run(d.nop);
    assert.equal((await f.calls()).length, 1);
    assert.equal(await t.run("assume"), "fake-current");
    await t.run("assume --clear");
    assert.deepEqual((await f.calls()).slice(1), [
      "current",
      `hook ${shell} --unassume`,
      `hook ${shell}`, // unpinned in a tagged dir: the next prompt looks again
    ]);
    assert.equal(await readVar(t, f, d, "STSH_PINNED"), null);
    assert.equal(await readVar(t, f, d, "STSH_PROFILE"), "dev");

    await t.send("assume st");
    await t.key("Tab");
    await t.waitFor(/assume staging/);
    await enter(t, d);
    await t.run(d.nop);
    const calls = await f.calls();
    assert.deepEqual(calls.slice(4), [
      // Every shell completes through `stsh complete` (PROTOCOL.md); zsh's completion
      // system matches the word itself, so it asks for every candidate.
      shell === "zsh" ? "complete -- assume " : "complete -- assume st",
      `hook ${shell} --assume staging --prompt`,
    ]);
  });
});

// (8) $? and PIPESTATUS survive the hook; loading under strict settings prints nothing.
hookTest("$? and PIPESTATUS survive the hook", async (shell) => {
  const bash = shell === "bash";
  // The prompt shows $? and the pipe status; zsh needs prompt_subst for ${pipestatus}.
  const post = bash ? "" : "setopt prompt_subst";
  await session(shell, { post }, async (t, f, d) => {
    await t.run(
      bash ? `PS1='bash> [$? \${PIPESTATUS[*]}] '` : `PS1='zsh> [%? \${pipestatus[*]}] '`,
    );
    const pipes = bash ? "${PIPESTATUS[*]}" : "${pipestatus[*]}";
    // The hook starts the binary on this prompt (new tag) …
    await enter(t, d, "cd ../proj; false | true | (exit 3)");
    await t.waitFor(new RegExp(`^${shell}> \\[3 1 0 3\\]$`, "m"));
    assert.equal(await t.run(`echo "$? ${pipes}"`), "3 1 0 3");
    assert.deepEqual(await f.calls(), [`hook ${shell}`]);
    // … and takes the fast path on this one.
    await enter(t, d, "false | (exit 4) | true");
    await t.waitFor(new RegExp(`^${shell}> \\[0 1 4 0\\]$`, "m"));
    assert.equal(await t.run(`echo "$? ${pipes}"`), "0 1 4 0");
    assert.equal((await f.calls()).length, 1);
  });
}, ["bash", "zsh"]);

hookTest("$? and $LASTEXITCODE survive the hook", async () => {
  await session("pwsh", {}, async (t, f) => {
    const d = SHELLS.pwsh;
    // Each line changes directory, so the hook runs the program (which exits 0) before the
    // next prompt; the user's $? and $LASTEXITCODE must come through unchanged.
    // "$__seen" is what the wrapped prompt saw; the first statement of a line reads the
    // previous line's status.
    await enter(t, d, "cd ../proj; bash -c 'exit 5'");
    assert.equal(await t.run('"$? $LASTEXITCODE / $__seen"'), "False 5 / False 5");
    await enter(t, d, "cd ../proj2; Get-Item ./nothing-here -ErrorAction SilentlyContinue");
    assert.equal(await t.run('"$? $LASTEXITCODE / $__seen"'), "False 5 / False 5");
    await enter(t, d, "cd ../plain; 'x'");
    assert.equal(await t.run('"$? $LASTEXITCODE / $__seen"'), "True 5 / True 5");
    assert.deepEqual(await f.calls(), ["hook pwsh", "hook pwsh", "hook pwsh"]);
  });
}, ["pwsh"]);

async function quiet(cmd: string[], cwd: string, e: Record<string, string>) {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd,
    clearEnv: true,
    env: e,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

hookTest("loading under strict settings prints nothing and starts nothing", async (shell) => {
  const f = await Fixture.create();
  try {
    const init = await render(shell, f);
    const cwd = `${f.work}/proj`; // a tagged directory: still nothing may run while loading
    const cmd: Record<ShellName, string[]> = {
      bash: [
        EXE.bash!,
        "--noprofile",
        "--norc",
        "-euo",
        "pipefail",
        "-c",
        `. '${init}'; echo done`,
      ],
      zsh: [EXE.zsh!, "-f", "-euo", "pipefail", "-c", `. '${init}'; . '${init}'; echo done`],
      pwsh: [
        EXE.pwsh!,
        "-NoLogo",
        "-NoProfile",
        "-NonInteractive",
        "-Command",
        `Set-StrictMode -Version Latest; $ErrorActionPreference = 'Stop'; . '${init}'; . '${init}'; 'done'`,
      ],
      fish: [EXE.fish!, "--no-config", "-c", `source '${init}'; source '${init}'; echo done`],
    };
    const r = await quiet(cmd[shell], cwd, env(f, { POWERSHELL_TELEMETRY_OPTOUT: "1" }));
    assert.deepEqual(r, { code: 0, stdout: "done\n", stderr: "" });
    assert.deepEqual(await f.calls(), []);
  } finally {
    await f.cleanup();
  }
}, WITH_FISH);

hookTest("calling prompt under StrictMode applies only allow-listed names", async () => {
  const f = await Fixture.create();
  try {
    const init = await render("pwsh", f);
    await f.scenario("HOOK_STATUS=0\n");
    const script = [
      "Set-StrictMode -Version Latest",
      "$ErrorActionPreference = 'Stop'",
      `. '${init}'`,
      "$path = $env:PATH",
      "$null = prompt",
      // Another prompt within the same command (PSReadLine's InvokePrompt from a key
      // handler) after a location change: never a second run, never a question.
      "Set-Location ../proj2",
      "$null = prompt",
      "'{0}|{1}|{2}|{3}' -f $env:STSH_PROFILE, $env:AWS_SESSION_TOKEN, [string]$env:EVIL, ($env:PATH -eq $path)",
    ].join("; ");
    const r = await quiet(
      [EXE.pwsh!, "-NoLogo", "-NoProfile", "-NonInteractive", "-Command", script],
      `${f.work}/proj`,
      env(f, { POWERSHELL_TELEMETRY_OPTOUT: "1" }),
    );
    assert.equal(r.stderr, "");
    assert.equal(r.stdout, "dev|session||True\n");
    assert.deepEqual(await f.calls(), ["hook pwsh"]);
  } finally {
    await f.cleanup();
  }
}, ["pwsh"]);

hookTest("a non-zero status never throws, and notices reach stderr", async () => {
  const f = await Fixture.create();
  try {
    const init = await render("pwsh", f);
    await f.scenario("HOOK_STATUS=2\n");
    const script = [
      "Set-StrictMode -Version Latest",
      "$ErrorActionPreference = 'Stop'",
      "$PSNativeCommandUseErrorActionPreference = $true", // a non-zero exit would throw
      `. '${init}'`,
      "try { bash -c 'exit 6' } catch { }", // sets $LASTEXITCODE = 6
      "$null = prompt",
      "'{0}|{1}' -f [string]$env:STSH_PROFILE, $global:LASTEXITCODE",
    ].join("; ");
    const r = await quiet(
      [EXE.pwsh!, "-NoLogo", "-NoProfile", "-NonInteractive", "-Command", script],
      `${f.work}/proj`,
      env(f, { POWERSHELL_TELEMETRY_OPTOUT: "1" }),
    );
    assert.equal(r.stderr, "fake: ./.aws-profile asks for 'dev': run stsh allow\n");
    assert.equal(r.stdout, "|6\n");
    assert.deepEqual(await f.calls(), ["hook pwsh"]);
  } finally {
    await f.cleanup();
  }
}, ["pwsh"]);
