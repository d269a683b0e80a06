/**
 * bash and zsh hooks, protocol v2 (shell/PROTOCOL.md): what shell/stsh.bash and
 * shell/stsh.zsh do beyond the shared suites (shell_hooks_test.ts, shell_e2e_test.ts).
 *
 * Two kinds of test, each run for both shells from one table:
 * - with the REAL program (tests/support/session.ts): hostile tags, an edit that keeps size,
 *   first line and mtime, Tab completion through `stsh complete`, STSH_DEBUG=1;
 * - with the fake program of shell_hooks_test.ts (tests/support/fake_stsh.bash, behind a small
 *   wrapper written here that answers `doctor`, `complete` and `version` itself and logs
 *   argv), where the point is the exact arguments and environment the hook hands over:
 *   `stsh init SHELL --serve`, `STSH_HOOK_STATE` for `stsh doctor` only, the debug lines,
 *   strict options around the fast path, completion candidates taken as data.
 */
import assert from "node:assert/strict";
import { Pty } from "./support/pty.ts";
import { EXE } from "./support/shells.ts";
import { ROOT, STSH } from "./support/fixture.ts";
import { BROKEN, escapeRe, Session, type SessionOpts, SLOW } from "./support/session.ts";
import { FakeProgram, mtimeYear, referenceFile, touch } from "./support/fake.ts";

type Posix = "bash" | "zsh";
const POSIX: Posix[] = ["bash", "zsh"];

function posixTest(name: string, fn: (shell: Posix) => Promise<void>, only: Posix[] = POSIX) {
  for (const shell of only) {
    const missing = EXE[shell] === undefined;
    Deno.test({
      name: `${shell}: ${name}${missing ? ` (skipped: ${shell} is not installed)` : ""}`,
      ignore: missing,
      fn: () => fn(shell),
    });
  }
}

/** A real-program session (see session.ts); always closed, and never a broken screen. */
async function withSession(
  shell: Posix,
  o: SessionOpts,
  fn: (s: Session) => Promise<void>,
): Promise<void> {
  const s = await Session.start(shell, o);
  try {
    await fn(s);
    assert.doesNotMatch(await s.t.screen(), BROKEN);
  } finally {
    await s.close();
  }
}

/** Lines of the screen that start with `stsh:` and mention `text`. */
async function noticesAbout(s: Session, text: string): Promise<string[]> {
  return (await s.t.screen()).split("\n").filter((l) => l.startsWith("stsh:") && l.includes(text));
}

// ---------------------------------------------------------------------------------------------
// Hostile tags (issue 12.1): the shell never opens what cannot be a tag, never reads more than
// 257 characters, and the prompt comes back; the binary says one line per directory.

/** Each kind of tag that must never wedge a prompt, and how to make it in `dir`. */
const HOSTILE_TAGS: { kind: string; make(dir: string): Promise<void>; root?: boolean }[] = [
  {
    kind: "fifo",
    make: (d) => mkfifo(`${d}/.aws-profile`),
  },
  {
    kind: "link-to-fifo",
    async make(d) {
      await mkfifo(`${d}/target-fifo`);
      await Deno.symlink(`${d}/target-fifo`, `${d}/.aws-profile`);
    },
  },
  {
    kind: "link-to-pagemap",
    make: (d) => Deno.symlink("/proc/self/pagemap", `${d}/.aws-profile`),
  },
  {
    kind: "sparse-50G",
    async make(d) {
      await Deno.writeFile(`${d}/.aws-profile`, new Uint8Array());
      await Deno.truncate(`${d}/.aws-profile`, 50 * 2 ** 30);
    },
  },
  {
    kind: "link-to-dev-zero",
    make: (d) => Deno.symlink("/dev/zero", `${d}/.aws-profile`),
  },
  {
    kind: "nul-bytes",
    make: (d) => Deno.writeFile(`${d}/.aws-profile`, new Uint8Array(4096)),
  },
  {
    kind: "other-user",
    root: true,
    async make(d) {
      await Deno.writeTextFile(`${d}/.aws-profile`, "a\n");
      await Deno.chown(`${d}/.aws-profile`, 65534, 65534);
    },
  },
];

async function mkfifo(path: string): Promise<void> {
  const r = await new Deno.Command("mkfifo", { args: [path] }).output();
  assert.ok(r.success, `mkfifo ${path}`);
}

posixTest(
  "hostile tags: the prompt comes back, nothing asked or set, one line each",
  async (shell) => {
    await withSession(shell, {}, async (s) => {
      const { d } = s;
      await s.run(d.setVars({ AWS_ACCESS_KEY_ID: "AKIAUSEROWN000000001" }));
      const before = await s.vars();
      const asRoot = Deno.uid() === 0;
      const kinds = HOSTILE_TAGS.filter((k) => !k.root || asRoot);
      const dirs: string[] = [];
      for (const k of kinds) {
        const dir = s.w.sb.path("work", `hostile-${k.kind}`);
        await Deno.mkdir(dir, { recursive: true });
        await k.make(dir);
        dirs.push(dir);
      }
      const n0 = (await s.starts()).length;
      for (const [i, dir] of dirs.entries()) {
        // In, a prompt there, out, in again (quiet), out. A read of a FIFO would block this
        // prompt for good, a read without limit of the 50 GB file for minutes: run() fails on
        // its timeout then.
        await s.run(d.cd(dir));
        await s.run(d.nop);
        assert.deepEqual(await s.vars(), before, kinds[i].kind);
        await s.run(d.cd(s.plain));
        await s.run(d.cd(dir));
        await s.run(d.cd(s.plain));
      }
      assert.deepEqual(await s.questions(), [], "a hostile tag asked for a code");
      assert.deepEqual(await s.vars(), before);
      const hook = `hook ${shell}`;
      assert.deepEqual(
        await s.startsSince(n0),
        dirs.flatMap(() => [hook, hook, `${hook} --quiet`, hook]),
        "one start per change of tag, never one on an unchanged prompt",
      );
      for (const [i, dir] of dirs.entries()) {
        const lines = await noticesAbout(s, `${dir}/.aws-profile`);
        assert.equal(lines.length, 1, `${kinds[i].kind}: ${JSON.stringify(lines)}`);
        assert.match(lines[0], /ignored\.$/, kinds[i].kind);
      }
    });
  },
);

// ---------------------------------------------------------------------------------------------
// The key is the root plus the WHOLE content: an edit that keeps the size and the first line,
// or lands in the same clock tick as the last read, is noticed at the next prompt.

posixTest(
  "an edit that keeps size and first line is noticed at the next prompt, in place or by rename",
  async (shell) => {
    await withSession(shell, {}, async (s) => {
      const dir = s.w.sb.path("work", "edited");
      const tag = `${dir}/.aws-profile`;
      await Deno.mkdir(dir, { recursive: true });
      await Deno.writeTextFile(tag, "a\nxx\n");
      const n0 = (await s.starts()).length;
      await s.run(s.d.cd(dir));
      assert.deepEqual(await s.startsSince(n0), [`hook ${shell}`]);
      assert.equal((await noticesAbout(s, tag)).length, 1);
      await s.enter(s.d.nop);
      assert.deepEqual(await s.startsSince(n0), [`hook ${shell}`], "an unchanged prompt started");

      // In place: the same size and first line, another second line.
      const { size } = await Deno.stat(tag);
      await Deno.writeTextFile(tag, "a\nyy\n");
      assert.equal((await Deno.stat(tag)).size, size);
      await s.enter(s.d.nop);
      assert.deepEqual(await s.startsSince(n0), [`hook ${shell}`, `hook ${shell}`]);
      // A new content is a new tag for the notices too: the binary says its line again.
      assert.equal((await noticesAbout(s, tag)).length, 2);
      await s.enter(s.d.nop);
      assert.equal((await s.startsSince(n0)).length, 2, "an unchanged prompt started");

      // As editors save: a new file, renamed over the tag.
      await Deno.writeTextFile(`${dir}/.aws-profile.swp`, "a\nzz\n");
      await Deno.rename(`${dir}/.aws-profile.swp`, tag);
      await s.enter(s.d.nop);
      assert.deepEqual(await s.startsSince(n0), [
        `hook ${shell}`,
        `hook ${shell}`,
        `hook ${shell}`,
      ]);
      await s.enter(s.d.nop);
      assert.equal((await s.startsSince(n0)).length, 3, "an unchanged prompt started");

      // An unchanged prompt opens nothing: the reference file, written just before every full
      // read, keeps a time set in the past (the tag's older still).
      const ref = referenceFile(`${s.w.env.STSH_HOME}/run`, shell);
      await touch("-d", "2020-01-01", tag);
      await touch("-d", "2021-01-01", ref);
      await s.enter(s.d.nop);
      await s.enter(s.d.nop);
      assert.equal(mtimeYear(ref), 2021, "an unchanged prompt read the tag");
      assert.equal((await s.startsSince(n0)).length, 3, "an unchanged prompt started");

      // In the same clock tick as the last read: stamped with the reference file's own mtime
      // (what an edit right after the read gets on a coarse clock), it is still read again.
      await Deno.writeTextFile(tag, "a\nww\n");
      await touch("-r", ref, tag);
      await s.enter(s.d.nop);
      assert.equal((await s.startsSince(n0)).length, 4, "an edit in the read's tick was missed");
      await s.enter(s.d.nop);
      assert.equal((await s.startsSince(n0)).length, 4, "an unchanged prompt started");

      // An older file moved over the tag is older than the reference too (the documented
      // limit): not seen by an unchanged prompt, but by the next cd, even under the same tag.
      await Deno.mkdir(`${dir}/sub`);
      await Deno.writeTextFile(`${dir}/older`, "a\nvv\n");
      await touch("-d", "2020-01-01", `${dir}/older`);
      await touch("-d", "2021-01-01", ref);
      await Deno.rename(`${dir}/older`, tag);
      await s.enter(s.d.nop);
      assert.equal((await s.startsSince(n0)).length, 4);
      await s.run(s.d.cd(`${dir}/sub`));
      assert.equal((await s.startsSince(n0)).length, 5, "a cd did not read the tag again");
    });
  },
);

// ---------------------------------------------------------------------------------------------
// Tab completion through `stsh complete` (the real program), only when Tab is pressed.

/** A zsh rc of its own (the Session's has no compinit): `where` the compinit line goes. */
async function zshRc(where: "before" | "after"): Promise<{ dir: string; opts: SessionOpts }> {
  const dir = await Deno.makeTempDir({ prefix: "stsh-zdot-" });
  const compinit = "autoload -Uz compinit; compinit -u -D";
  const init = 'eval "$(stsh init zsh)"';
  await Deno.writeTextFile(
    `${dir}/.zshrc`,
    [
      "PS1='zsh> '",
      "unset HISTFILE",
      ...(where === "before" ? [compinit, init] : [init, compinit]),
    ].join("\n") + "\n",
  );
  return { dir, opts: { env: { ZDOTDIR: dir } } };
}

/** Types `line`, presses Tab, waits until the line reads `want`, then clears it. */
async function tab(s: Session, line: string, want: string | RegExp): Promise<void> {
  const n = (await s.starts()).length;
  await s.t.send(line);
  await s.t.key("Tab");
  const re = typeof want === "string"
    ? new RegExp(`${escapeRe(s.d.prompt.trimEnd())} ${escapeRe(want)}$`, "m")
    : want;
  try {
    await s.t.waitFor(re, { timeoutMs: SLOW });
  } finally {
    await s.t.key("C-e", "C-u");
  }
  await s.enter();
  // Completion asked the program (or nothing); the empty Enter after it started nothing.
  assert.ok((await s.startsSince(n)).every((l) => /^complete --/.test(l)));
}

/** What every completion setup must do, with the Session's world (profiles me, a, b, long…). */
async function completes(s: Session): Promise<void> {
  // A command only exec can complete, and a directory only tag can.
  await Deno.writeTextFile(`${s.bin}/stshtestcmd`, "#!/bin/sh\n");
  await Deno.chmod(`${s.bin}/stshtestcmd`, 0o755);
  await Deno.mkdir(`${s.plain}/zzdir-only`);
  // zsh hashes the commands on PATH once (compinit does, at start): see the new one.
  if (s.shell === "zsh") await s.run("rehash");
  const n0 = (await s.starts()).length;
  await tab(s, "stsh cre", "stsh credential-process");
  assert.deepEqual(await s.startsSince(n0), ["complete -- stsh cre"]);
  await tab(s, "stsh env lo", "stsh env long");
  await tab(s, "stsh env --format pow", "stsh env --format powershell");
  await tab(s, "assume ch", "assume chain");
  // Where stsh offers nothing: a command after `exec PROFILE --`, a directory after `tag`.
  await tab(s, "stsh exec a -- stshtestc", "stsh exec a -- stshtestcmd");
  await tab(s, "stsh tag a zzd", "stsh tag a zzdir-only/");
  const screen = await s.t.screen();
  assert.doesNotMatch(screen, /command not found|bad pattern|no such|_stsh\w*:\d+:/i);
}

posixTest("Tab completes subcommands, flags, values and profiles", async (shell) => {
  // zsh here: the Session's rc has no compinit, so this is the compctl path.
  await withSession(shell, {}, completes);
});

posixTest("Tab completes with compinit loaded before the init line (compdef)", async () => {
  const { dir, opts } = await zshRc("before");
  try {
    await withSession("zsh", opts, async (s) => {
      assert.equal(await s.run("print -r -- ${_comps[stsh]-none}"), "__stsh_complete");
      await completes(s);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}, ["zsh"]);

posixTest("Tab completes with compinit loaded after the init line (first prompt)", async () => {
  const { dir, opts } = await zshRc("after");
  try {
    await withSession("zsh", opts, async (s) => {
      assert.equal(await s.run("print -r -- ${_comps[assume]-none}"), "__stsh_complete_assume");
      // The one-time check is gone after the first prompt.
      assert.equal(await s.run('print -r -- "${precmd_functions[*]}"'), "__stsh_precmd");
      await completes(s);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}, ["zsh"]);

// ---------------------------------------------------------------------------------------------
// STSH_DEBUG=1: one line from the hook on the slow path only, saying why; the binary's follow.

posixTest(
  "STSH_DEBUG=1 says why the hook starts the program, on the slow path only",
  async (shell) => {
    await withSession(shell, {}, async (s) => {
      const dir = s.w.sb.path("work", "untrusted");
      await s.w.sb.write("work/untrusted/.aws-profile", "a\n", 0o644);
      await s.run(s.d.setVars({ STSH_DEBUG: "1" }));
      await s.run(s.d.cd(dir));
      const screen = await s.t.screen();
      const lines = screen.split("\n");
      const why = lines.findIndex((l) => l.startsWith(`stsh: debug: hook ${shell}: key changed: `));
      assert.ok(why >= 0, screen);
      assert.match(lines[why], new RegExp(escapeRe(`${dir}/.aws-profile`)));
      assert.match(lines[why + 1], /^stsh: debug: /, "the binary's own debug lines follow");
      const count = async () =>
        (await s.t.screen()).split("\n").filter((l) => l.includes("debug: hook ")).length;
      const n = await count();
      await s.enter(s.d.nop);
      await s.enter(s.d.nop);
      assert.equal(await count(), n, "a debug line on the fast path");
      await s.run(s.d.cd(s.plain));
      assert.ok(
        (await s.t.screen()).includes(`stsh: debug: hook ${shell}: key changed: no tag here`),
      );
    });
  },
);

// ---------------------------------------------------------------------------------------------
// The fake program: exact arguments and environment.

const FAKE_STSH = `${ROOT}/tests/support/fake_stsh.bash`;

/**
 * In front of the fake: logs and answers `doctor` (the STSH_HOOK_STATE it got), `version`
 * (the same, which must be unset there) and `complete` (the candidates in ./candidates);
 * everything else goes to the fake.
 */
const WRAPPER = `#!/bin/bash
here=\${BASH_SOURCE[0]%/*}
case " $* " in
*" doctor "* | *" version "*)
  printf '%s\\n' "$*" >>"$here/log"
  printf '%s state=[%s]\\n' "\${*: -1}" "\${STSH_HOOK_STATE-unset}"
  ;;
" complete "*)
  printf '%s\\n' "$*" >>"$here/log"
  cat "$here/candidates"
  ;;
*) exec bash "$here/fake_stsh.bash" "$@" ;;
esac
`;

class Fake extends FakeProgram {
  constructor(readonly root: string, readonly shell: Posix, readonly t: Pty) {
    super();
  }
  get bin() {
    return `${this.root}/bin`;
  }
  get work() {
    return `${this.root}/w`;
  }
  /** A variable as the shell has it (exported or not). */
  async value(name: string): Promise<string> {
    return await this.t.run(`printf '%s\\n' "\${${name}-<unset>}"`);
  }
}

const FAKE_PROMPT: Record<Posix, RegExp> = { bash: /^bash>/m, zsh: /^zsh>/m };

/**
 * A shell hooked with the output of the REAL `stsh init SHELL [--serve]`, whose program is the
 * fake. `pre`: shell code before the init line; `post`: after it.
 */
async function withFake(
  shell: Posix,
  o: { serve?: boolean; pre?: string; post?: string; cwd?: string; scenario?: string },
  fn: (f: Fake) => Promise<void>,
): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "stsh-posix-" });
  let t: Pty | undefined;
  try {
    for (const d of ["bin", "home", "tmp", "zdot", "w/plain", "w/proj/sub", "w/proj2"]) {
      await Deno.mkdir(`${root}/${d}`, { recursive: true });
    }
    await Deno.copyFile(FAKE_STSH, `${root}/bin/fake_stsh.bash`);
    await Deno.writeTextFile(`${root}/bin/stsh`, WRAPPER);
    await Deno.chmod(`${root}/bin/stsh`, 0o755);
    await Deno.writeTextFile(`${root}/bin/scenario`, o.scenario ?? "HOOK_STATUS=0\n");
    await Deno.writeTextFile(`${root}/bin/candidates`, "");
    await Deno.writeTextFile(`${root}/w/proj/.aws-profile`, "dev\n");
    await Deno.writeTextFile(`${root}/w/proj2/.aws-profile`, "prod\n");
    // The product's own init output, with the fake as the program.
    const init = await new Deno.Command(STSH, {
      args: ["init", shell, ...(o.serve ? ["--serve"] : [])],
      env: { STSH_BIN: `${root}/bin/stsh`, HOME: `${root}/home` },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(init.success, new TextDecoder().decode(init.stderr));
    await Deno.writeFile(`${root}/init.${shell}`, init.stdout);
    const rc = [
      `PS1='${shell}> '`,
      "unset HISTFILE",
      o.pre ?? "",
      `. '${root}/init.${shell}'`,
      o.post ?? "",
    ].join("\n") + "\n";
    const rcFile = shell === "bash" ? `${root}/rc.bash` : `${root}/zdot/.zshrc`;
    await Deno.writeTextFile(rcFile, rc);
    t = await Pty.start({
      cmd: shell === "bash"
        ? [EXE.bash!, "--noprofile", "--rcfile", rcFile, "-i"]
        : [EXE.zsh!, "-d", "-i"],
      env: {
        HOME: `${root}/home`,
        TMPDIR: `${root}/tmp`,
        TERM: "xterm-256color",
        LANG: "C.UTF-8",
        PATH: `${root}/bin:/usr/local/bin:/usr/bin:/bin`,
        USER: "tester",
        ...(shell === "zsh" ? { ZDOTDIR: `${root}/zdot` } : {}),
      },
      cwd: `${root}/w/${o.cwd ?? "plain"}`,
      prompt: FAKE_PROMPT[shell],
      timeoutMs: SLOW,
    });
    await t.waitFor(FAKE_PROMPT[shell], { timeoutMs: SLOW });
    await fn(new Fake(root, shell, t));
    assert.doesNotMatch(
      await t.screen(),
      /unbound variable|parameter not set|command not found|syntax error|bad pattern|PWNED/i,
    );
  } finally {
    await t?.close();
    await Deno.remove(root, { recursive: true }).catch(() => undefined);
  }
}

/** Types `line` + Enter without run()'s marker and waits for the next prompt. */
async function enter(f: Fake, line = ""): Promise<void> {
  const re = new RegExp(FAKE_PROMPT[f.shell].source, "gm");
  const before = (await f.t.screen()).match(re)?.length ?? 0;
  await f.t.send(line);
  await f.t.key("Enter");
  await f.t.waitFor(re, { count: before + 1 });
}

posixTest("stsh init --serve: every hook call carries --serve", async (shell) => {
  await withFake(shell, { serve: true }, async (f) => {
    await f.t.run("cd ../proj");
    assert.deepEqual(await f.calls(), [`hook ${shell} --serve`]);
    assert.equal(await f.value("STSH_PROFILE"), "dev");
    // MFA needed: the second call too.
    await f.scenario("HOOK_STATUS=4\n");
    await f.t.send("cd ../proj2");
    await f.t.key("Enter");
    await f.t.waitFor(/^MFA code:$/m);
    await enter(f, "123456");
    await f.scenario("HOOK_STATUS=0\n");
    await f.t.run("assume prod");
    await f.t.run("assume --clear");
    assert.deepEqual((await f.calls()).slice(1), [
      `hook ${shell} --serve`,
      `hook ${shell} --serve --prompt`,
      `hook ${shell} --serve --assume prod --prompt`,
      `hook ${shell} --serve --unassume`,
      `hook ${shell} --serve`, // unpinned in a tagged dir: the next prompt looks again
    ]);
  });
  // Without --serve: no flag at all (not even an empty argument).
  await withFake(shell, {}, async (f) => {
    await f.t.run("cd ../proj");
    await f.t.run("assume prod");
    assert.deepEqual(await f.calls(), [`hook ${shell}`, `hook ${shell} --assume prod --prompt`]);
  });
});

/** How to put another prompt function before the hook, or in its place. */
const OTHER: Record<Posix, { before: string; instead: string }> = {
  bash: {
    before: '__other() { :; }; PROMPT_COMMAND="__other;$PROMPT_COMMAND"',
    instead: "PROMPT_COMMAND=__other",
  },
  zsh: {
    before: "__other() { :; }; precmd_functions=(__other $precmd_functions)",
    instead: "precmd_functions=(__other)",
  },
};

posixTest(
  "stsh doctor alone gets STSH_HOOK_STATE: shell, version, mode, hook place",
  async (shell) => {
    await withFake(shell, { serve: true }, async (f) => {
      const version = await f.value(shell === "bash" ? "BASH_VERSION" : "ZSH_VERSION");
      const state = (hook: string) =>
        `doctor state=[shell=${shell} version=${version} mode=serve hook=${hook}]`;
      assert.equal(await f.t.run("stsh doctor"), state("first"));
      // Flags before the subcommand are no obstacle.
      assert.equal(await f.t.run("stsh --debug doctor"), state("first"));
      // Only doctor gets it, and the shell keeps nothing of it.
      assert.equal(await f.t.run("stsh version"), "version state=[unset]");
      assert.equal(await f.value("STSH_HOOK_STATE"), "<unset>");
      await f.t.run(OTHER[shell].before);
      assert.equal(await f.t.run("stsh doctor"), state("late"));
      await f.t.run(OTHER[shell].instead);
      assert.equal(await f.t.run("stsh doctor"), state("missing"));
    });
    await withFake(shell, {}, async (f) => {
      assert.match(await f.t.run("stsh doctor"), / mode=keys hook=first\]$/);
    });
  },
);

posixTest(
  "debug lines name the reason: key changed, near expiry, pinned renewal",
  async (shell) => {
    const soon = Math.floor(Date.now() / 1000) + 300; // inside the default 600 s margin
    await withFake(shell, { scenario: `EXPIRES=${soon}\n` }, async (f) => {
      await f.t.run("export STSH_DEBUG=1");
      await f.t.run("cd ../proj");
      await f.t.waitFor(`stsh: debug: hook ${shell}: key changed: '${f.work}/proj/.aws-profile'`);
      await enter(f);
      await f.t.waitFor(
        `stsh: debug: hook ${shell}: near expiry: 'dev' ends at ${soon} (margin 600 s)`,
      );
      await f.t.run("assume prod");
      await enter(f);
      await f.t.waitFor(
        `stsh: debug: hook ${shell}: pinned renewal: 'prod' ends at ${soon} (margin 600 s)`,
      );
      const lines = (await f.t.screen()).split("\n").filter((l) => l.includes(": debug: hook"));
      assert.equal(lines.length, 3, lines.join("\n"));
      assert.deepEqual((await f.calls()).length, 4);
    });
  },
);

/** Strict options of the user's own, set before the init line. */
const STRICT: Record<Posix, string> = {
  // Every failing command in a function runs the ERR trap (errtrace): the fast path has none.
  bash: "set -u -o pipefail -E; __errs=0; trap '((++__errs))' ERR",
  zsh: [
    "setopt nounset ksh_arrays sh_word_split glob_subst warn_create_global err_return",
    "setopt extended_glob ksh_glob no_multibyte posix_builtins",
    "typeset -gi __errs=0; TRAPZERR() { ((++__errs)); }",
  ].join("; "),
};

posixTest("the hook is safe under the user's strict options and ERR/ZERR traps", async (shell) => {
  await withFake(shell, { pre: STRICT[shell] }, async (f) => {
    await f.t.run("cd ../proj");
    assert.deepEqual(await f.calls(), [`hook ${shell}`]);
    await f.t.run(`__errs=0`);
    for (let i = 0; i < 20; i++) await enter(f);
    await f.t.run("cd sub");
    await enter(f);
    assert.equal(await f.t.run('echo "errs=$__errs"'), "errs=0");
    assert.deepEqual(await f.calls(), [`hook ${shell}`]);
    // A tag with glob characters, blanks and a NUL in its directory's name is still data.
    await Deno.mkdir(`${f.work}/[*] x`);
    await Deno.writeFile(`${f.work}/[*] x/.aws-profile`, new TextEncoder().encode("de\0v\n"));
    await f.t.run("cd '../../[*] x'");
    await enter(f);
    assert.deepEqual((await f.calls()).slice(1), [`hook ${shell}`]);
    assert.equal(await f.t.run('echo "errs=$__errs"'), "errs=0");
  });
});

posixTest(
  "completion candidates are data: added one by one, quoted, never expanded",
  async (shell) => {
    await withFake(shell, {}, async (f) => {
      await Deno.writeTextFile(`${f.bin}/candidates`, "x$(touch PWNED)`touch PWNED`\n");
      await f.t.send("stsh env x");
      await f.t.key("Tab");
      await f.t.waitFor(/env x\\\$\\\(touch\\ PWNED\\\)\\`touch\\ PWNED\\`/);
      await f.t.key("C-e", "C-u");
      await enter(f);
      assert.deepEqual(await f.calls(), ["complete -- stsh env x"]);
      const found: string[] = [];
      for await (const e of Deno.readDir(`${f.work}/plain`)) found.push(e.name);
      assert.deepEqual(found, []);
    });
  },
);
