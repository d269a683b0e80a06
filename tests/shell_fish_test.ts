/**
 * What only fish has, or what the shared suites do not cover for it: shell/stsh.fish in a
 * real interactive fish (3.1+; 3.6 here) in a pseudo-terminal.
 *
 * Two kinds of test. Those against the REAL program run a `Session` (tests/support/session.ts:
 * a sandbox world with the STS emulator, `stsh init fish | source` in config.fish, a counting
 * `stsh` wrapper on PATH). Those about the hook's own logic run a fake program: the shared
 * tests/support/fake_stsh.bash behind a small wrapper written here that also answers
 * `stsh doctor` (it prints the STSH_HOOK_STATE it was given) and `stsh showstate` (the same,
 * for a command that must not get it). Both log every start, which is how "no process" and
 * "once" are counted. A third kind runs fish without a terminal, for the change-set parser.
 *
 * The shared suites already run fish through tests/shell_e2e_test.ts (all of it) and the
 * shell-neutral tests of tests/shell_hooks_test.ts.
 */
import assert from "node:assert/strict";
import { fishLineQuote, HOOK_FORMATS } from "../lib/formats.ts";
import { dirname, join, resolvePath } from "../lib/paths.ts";
import { STSH } from "./support/fixture.ts";
import { Pty } from "./support/pty.ts";
import { BROKEN, escapeRe, Session, type SessionOpts, USER_VARS } from "./support/session.ts";
import { EXE } from "./support/shells.ts";
import { assertNoTagAbove, FakeProgram, mtimeYear, referenceFile, touch } from "./support/fake.ts";

const FISH = EXE.fish;
const ROOT = new URL("..", import.meta.url).pathname;
const FAKE = new URL("./support/fake_stsh.bash", import.meta.url).pathname;
const dec = new TextDecoder();

function fishTest(name: string, fn: () => Promise<void>) {
  Deno.test({
    name: `fish: ${name}${FISH ? "" : " (skipped: fish is not installed)"}`,
    ignore: FISH === undefined,
    fn,
  });
}

/** A Session of the real program in fish; always closed; nothing broken on its screen. */
async function real(o: SessionOpts, fn: (s: Session) => Promise<void>): Promise<void> {
  const s = await Session.start("fish", o);
  try {
    await fn(s);
    assert.doesNotMatch(await s.t.screen(), BROKEN);
  } finally {
    await s.close();
  }
}

/** The wrapper in front of the fake: `doctor` and `showstate` print STSH_HOOK_STATE. */
const WRAPPER = `#!/bin/bash
here=\${BASH_SOURCE[0]%/*}
case " $* " in
*" doctor "* | *" showstate "*)
  printf '%s\\n' "$*" >>"$here/log"
  printf 'state=[%s]\\n' "\${STSH_HOOK_STATE-<unset>}"
  ;;
*) exec "$here/fake" "$@" ;;
esac
`;

/** In front of the `date` and `stty` the hook runs: records whether they got STSH_PREV. */
const SPY = `#!/bin/bash
here=\${BASH_SOURCE[0]%/*}
printf '%s STSH_PREV=%s\\n' "\${0##*/}" "\${STSH_PREV+set}" >>"$here/others.log"
exec "/usr/bin/\${0##*/}" "$@"
`;

interface FakeOpts {
  /** fish code before the hook is loaded, and after it. */
  pre?: string;
  post?: string;
  scenario?: string;
  /** Start directory under the work dir (default "plain", untagged). */
  cwd?: string;
  /** Render the hook with `stsh init fish --serve` instead of `stsh init fish`. */
  serve?: boolean;
}

/** A temp dir with the fake program, a HOME with config.fish, tagged and untagged dirs. */
class Fake extends FakeProgram {
  /** The program's directory: its name has a quote and a space, for the init's quoting. */
  readonly bin: string;
  readonly home: string;
  readonly work: string;
  t!: Pty;
  private constructor(readonly root: string) {
    super();
    this.bin = `${root}/b'in x`;
    this.home = `${root}/home`;
    this.work = `${root}/w`;
  }

  static async start(o: FakeOpts = {}): Promise<Fake> {
    const f = new Fake(await Deno.realPath(await Deno.makeTempDir({ prefix: "stsh-fish-" })));
    try {
      await f.#setup(o);
    } catch (e) {
      await f.close();
      throw e;
    }
    return f;
  }

  async #setup(o: FakeOpts): Promise<void> {
    await assertNoTagAbove(this.root);
    for (
      const d of [
        this.bin,
        `${this.home}/.config/fish`,
        // fish starts a background python job to scan man pages when this does not exist.
        `${this.home}/.local/share/fish/generated_completions`,
        `${this.work}/plain`,
        `${this.work}/proj/sub`,
        `${this.work}/proj2`,
      ]
    ) await Deno.mkdir(d, { recursive: true });
    await Deno.copyFile(FAKE, `${this.bin}/fake`);
    await Deno.writeTextFile(`${this.bin}/stsh`, WRAPPER);
    for (const p of ["date", "stty"]) await Deno.writeTextFile(`${this.bin}/${p}`, SPY);
    for (const p of ["fake", "stsh", "date", "stty"]) await Deno.chmod(`${this.bin}/${p}`, 0o755);
    await Deno.writeTextFile(`${this.work}/proj/.aws-profile`, "dev\n");
    await Deno.writeTextFile(`${this.work}/proj2/.aws-profile`, "prod\n");
    await this.scenario(o.scenario ?? "HOOK_STATUS=0\n");

    // The hook as the product prints it, with the fake as the program.
    const init = await new Deno.Command(STSH, {
      args: ["init", "fish", ...(o.serve ? ["--serve"] : [])],
      env: { ...Deno.env.toObject(), STSH_BIN: `${this.bin}/stsh`, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(init.success, dec.decode(init.stderr));
    await Deno.writeFile(`${this.root}/init.fish`, init.stdout);
    await Deno.writeTextFile(
      `${this.home}/.config/fish/config.fish`,
      [
        "function fish_greeting; end",
        // A prompt theme: records the status and pipe status it is given.
        `function fish_prompt; set -g __seen "$status $pipestatus"; echo -n 'fish> '; end`,
        o.pre ?? "",
        `source '${this.root}/init.fish'`,
        o.post ?? "",
      ].join("\n") + "\n",
    );
    this.t = await Pty.start({
      cmd: [FISH!, "-i"],
      env: this.env(),
      cwd: `${this.work}/${o.cwd ?? "plain"}`,
      prompt: /^fish>/m,
      timeoutMs: 15_000,
    });
    const screen = await this.t.waitFor(/^fish>/m, { timeoutMs: 30_000 });
    assert.equal(
      screen.trim(),
      "fish>",
      `something was printed before the first prompt:\n${screen}`,
    );
  }

  env(): Record<string, string> {
    return {
      HOME: this.home,
      TERM: "xterm-256color",
      LANG: "C.UTF-8",
      PATH: `${this.bin}:/usr/local/bin:/usr/bin:/bin`,
      USER: "tester",
    };
  }

  /** An exported variable as a child process sees it (null: not in its environment). */
  async child(name: string): Promise<string | null> {
    const out = await this.t.run(`/bin/sh -c 'printf "[%s]\\n" "\${${name}-<unset>}"'`);
    return out === "[<unset>]" ? null : out.slice(1, -1);
  }

  /** Types a line and Enter without run()'s marker, and waits for the next prompt. */
  async enter(line = ""): Promise<void> {
    const before = await this.prompts();
    await this.t.send(line);
    await this.t.key("Enter");
    await this.t.waitFor(/fish>/g, { count: before + 1 });
  }

  async prompts(): Promise<number> {
    return (await this.t.screen()).match(/fish>/g)?.length ?? 0;
  }

  async close(): Promise<void> {
    try {
      if (this.t) assert.doesNotMatch(await this.t.screen(), BROKEN);
    } finally {
      await this.t?.close();
      await Deno.remove(this.root, { recursive: true }).catch(() => undefined);
    }
  }
}

async function fake(o: FakeOpts, fn: (f: Fake) => Promise<void>): Promise<void> {
  const f = await Fake.start(o);
  try {
    await fn(f);
  } finally {
    await f.close();
  }
}

async function exists(p: string): Promise<boolean> {
  return await Deno.lstat(p).then(() => true, () => false);
}

/** fish's own single quotes, for paths typed into the shell. */
const fq = (s: string) => `'${s.replace(/[\\']/g, "\\$&")}'`;

// ---------------------------------------------------------------------------------------------
// The change set: rendered by the binary, taken apart by fish's tokenizer, applied as data.

/** Values that would do something if any of them were ever evaluated, or were split. */
const TRICKY = [
  "it's",
  "a\\b",
  "\\'",
  "ends in a backslash\\",
  "$(touch PWNED)",
  "(touch PWNED)",
  "'; touch PWNED; '",
  "two\nlines",
  "\n",
  "trailing newline\n",
  "\\n is not a newline",
  "",
  " leading and trailing ",
  "O’Brien ☃ \t tab",
  "{a,b} * ~ #not a comment",
  "-e",
  "--",
  "set -gx PATH '/nowhere'",
];

/** Runs fish without a terminal: the rendered hook, then `script`; returns stdout. */
async function fishScript(script: string, cwd = "/"): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "stsh-fish-" });
  try {
    const init = `${dir}/init.fish`;
    const src = await Deno.readTextFile(`${ROOT}shell/stsh.fish`);
    await Deno.writeTextFile(
      init,
      src.replaceAll("@STSH_BIN@", fq(`${dir}/nothing`)).replaceAll("@STSH_MODE@", ""),
    );
    const out = await new Deno.Command(FISH!, {
      args: ["--no-config", "-c", `source ${fq(init)}; ${script}`],
      cwd,
      clearEnv: true,
      env: { HOME: dir, PATH: "/usr/bin:/bin", LANG: "C.UTF-8", EVIL: "untouched" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(dec.decode(out.stderr), "");
    assert.ok(out.success);
    return dec.decode(out.stdout);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("fish hook format: one record per line, fish single quotes, newlines outside them", () => {
  assert.equal(fishLineQuote("a'b\\c"), `'a\\'b\\\\c'`);
  assert.equal(fishLineQuote("x\ny"), `'x'\\n'y'`);
  assert.equal(
    HOOK_FORMATS.fish.export({
      AWS_REGION: "eu-west-1",
      AWS_PROFILE: null,
      STSH_ROOT: "/p/x\ny",
      STSH_PREV: '{"AWS_PROFILE":"it\'s"}',
    }),
    [
      "set -gx AWS_REGION 'eu-west-1'",
      "set -e AWS_PROFILE",
      "set -gx STSH_ROOT '/p/x'\\n'y'",
      `set -g __stsh_prev '{"AWS_PROFILE":"it\\'s"}'`,
      "",
    ].join("\n"),
  );
  assert.equal(HOOK_FORMATS.fish.export({ STSH_PREV: null }), "set -e __stsh_prev\n");
  for (const v of TRICKY) {
    const line = HOOK_FORMATS.fish.export({ AWS_REGION: v });
    assert.equal(line.split("\n").length, 2, `${JSON.stringify(v)} took more than one line`);
  }
});

Deno.test("paths: outside Windows a backslash is a character of a name, not a separator", () => {
  if (Deno.build.os === "windows") return;
  assert.equal(resolvePath("/w/x\\y/./z/.."), "/w/x\\y");
  assert.equal(dirname("/w/x\\y"), "/w");
  assert.equal(join("/w/x\\", ".aws-profile"), "/w/x\\/.aws-profile");
});

fishTest("the change set is applied as data, exactly, and only for allowed names", async () => {
  const dir = await Deno.makeTempDir({ prefix: "stsh-fish-cs-" });
  try {
    // Every tricky value through a real rendering, under names the hook may set.
    const records = TRICKY.map((v, i) =>
      HOOK_FORMATS.fish.export({ [i % 2 ? "AWS_REGION" : "STSH_ROOT"]: v }) + "show\n"
    );
    // Lines that are not records of an allowed shape and name: all ignored.
    const ignored = [
      "set -gx EVIL 'pwned'",
      "set -gx PATH '/nowhere'",
      "set -e PATH",
      "set -e EVIL",
      "set -U AWS_REGION 'u'",
      "set -gx AWS_REGION 'x' ; set -gx EVIL 'y'",
      "set -gx STSH_PREV 'exported saved values'",
      "echo pwned > PWNED",
      "set -gx AWS_REGION",
      "eval 'set -gx EVIL z'",
      "show",
    ].join("\n") + "\n";
    await Deno.writeTextFile(`${dir}/records`, records.join("") + ignored);
    // Applies the records one group at a time (each group ends with "show"), printing the
    // two values after each, NUL-separated.
    const out = await fishScript(
      [
        "set -l group",
        `for line in (cat ${fq(`${dir}/records`)})`,
        '  if test "$line" = show',
        "    __stsh_apply $group; set group",
        `    printf '%s\\0' "$STSH_ROOT" "$AWS_REGION"`,
        "  else",
        "    set -a group $line",
        "  end",
        "end",
        `printf '%s\\0' "$EVIL" "$PATH" (set -q STSH_PREV; echo $status) "$__stsh_prev"`,
      ].join("\n"),
      dir,
    );
    const got = out.split("\0");
    const want: string[] = [];
    let root = "", region = "";
    TRICKY.forEach((v, i) => {
      if (i % 2) region = v;
      else root = v;
      want.push(root, region);
    });
    want.push(root, region, "untouched", "/usr/bin:/bin", "1", "", "");
    assert.deepEqual(got, want);
    assert.equal(await exists(`${dir}/PWNED`), false, "a record was executed");

    // The saved values go to the private variable, never to the environment.
    const prev = await fishScript(
      [
        `__stsh_apply ${fq('set -g __stsh_prev \'{"a":"it\\\'s"}\'')}`,
        `printf '%s|' "$__stsh_prev" (set -qx __stsh_prev; echo $status) (set -q STSH_PREV; echo $status)`,
        "__stsh_apply 'set -e __stsh_prev'",
        `printf '%s|' (count $__stsh_prev) (set -q __stsh_prev; echo $status)`,
      ].join("\n"),
    );
    assert.equal(prev, `{"a":"it's"}|1|1|0|0|`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

fishTest(
  "a tag its owner cannot read is never opened (fish would warn at every prompt)",
  async () => {
    // Only as another user: root reads any file. Tests run as root here; setpriv switches.
    const setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => Deno.statSync(p).isFile);
    if (Deno.uid() !== 0 || !setpriv) return;
    const dir = await Deno.makeTempDir({ prefix: "stsh-fish-perm-" });
    try {
      await Deno.chmod(dir, 0o777);
      const src = await Deno.readTextFile(`${ROOT}shell/stsh.fish`);
      // The program: /bin/true, which prints an empty change set.
      await Deno.writeTextFile(
        `${dir}/init.fish`,
        src.replaceAll("@STSH_BIN@", "/bin/true").replaceAll("@STSH_MODE@", ""),
      );
      await Deno.mkdir(`${dir}/t`, { mode: 0o777 });
      await Deno.chmod(`${dir}/t`, 0o777);
      await Deno.writeTextFile(`${dir}/t/.aws-profile`, "dev\n", { mode: 0o000 });
      await Deno.chown(`${dir}/t/.aws-profile`, 65534, 65534);
      await Deno.chmod(`${dir}/t/.aws-profile`, 0o000);
      const out = await new Deno.Command(setpriv, {
        args: [
          "--reuid=65534",
          "--regid=65534",
          "--clear-groups",
          FISH!,
          "--no-config",
          "-c",
          `source ${fq(`${dir}/init.fish`)}; __stsh_prompt; __stsh_prompt; ` +
          `test "$__stsh_key" = "$PWD"\\n"$__stsh_marker"; and echo marker`,
        ],
        cwd: `${dir}/t`,
        clearEnv: true,
        env: { HOME: dir, PATH: "/usr/bin:/bin", LANG: "C.UTF-8" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(dec.decode(out.stderr), "");
      assert.equal(dec.decode(out.stdout), "marker\n");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

fishTest("without a terminal the hook never asks: status 4 is left at that", async () => {
  const f = await Fake.start({ scenario: "HOOK_STATUS=4\n" });
  await f.t.close();
  try {
    // A non-interactive fish (a script, `fish -c`) that still fires fish_prompt.
    const out = await new Deno.Command(FISH!, {
      args: [
        "--no-config",
        "-c",
        `source ${fq(`${f.root}/init.fish`)}; cd ../proj; emit fish_prompt; echo rc=$__stsh_rc`,
      ],
      cwd: `${f.work}/plain`,
      clearEnv: true,
      env: f.env(),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(dec.decode(out.stdout), "rc=4\n");
    assert.deepEqual(await f.calls(), ["hook fish"]);
  } finally {
    await Deno.remove(f.root, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// The hook's own logic, against the fake program.

fishTest(
  "$status and $pipestatus reach the prompt and the next line, slow path or not",
  async () => {
    await fake({}, async (f) => {
      // The hook runs the program on this prompt (a new tag) …
      await f.enter("cd ../proj; false | true | sh -c 'exit 3'");
      assert.equal(await f.t.run('echo "$status $pipestatus / $__seen"'), "3 1 0 3 / 3 1 0 3");
      assert.deepEqual(await f.calls(), ["hook fish"]);
      // … takes the fast path on this one …
      await f.enter("false | sh -c 'exit 4' | true");
      assert.equal(await f.t.run('echo "$status $pipestatus / $__seen"'), "0 1 4 0 / 0 1 4 0");
      // … and asks a question (status 4, then --prompt) on this one.
      await f.scenario("HOOK_STATUS=4\n");
      await f.t.send("cd ../proj2; sh -c 'exit 6'");
      await f.t.key("Enter");
      await f.t.waitFor(/^MFA code:$/m);
      await f.enter("123456");
      assert.equal(await f.t.run('echo "$status $pipestatus / $__seen"'), "6 6 / 6 6");
      assert.equal(await f.child("AWS_SESSION_TOKEN"), "code-123456");
      assert.deepEqual((await f.calls()).slice(1), ["hook fish", "hook fish --prompt"]);
      // The terminal's modes were saved, set and put back, and the clock set, by programs
      // that never saw the saved values (only the program's own call gets STSH_PREV).
      const others = (await Deno.readTextFile(`${f.bin}/others.log`)).trim().split("\n");
      assert.deepEqual([...new Set(others)].sort(), ["date STSH_PREV=", "stty STSH_PREV="]);
      assert.equal(others.filter((l) => l.startsWith("stty")).length, 3);
    });
  },
);

fishTest(
  "an edit that keeps the size and first line is noticed; a removed tag is looked past",
  async () => {
    await fake({ cwd: "proj" }, async (f) => {
      const tag = `${f.work}/proj/.aws-profile`;
      assert.deepEqual(await f.calls(), ["hook fish"]);
      // The run/ directory the real program keeps: from now on fish 3.6+ reads the tag only
      // when it is not older than its reference file.
      const run = `${f.home}/.aws/stsh/run`;
      await Deno.mkdir(run, { recursive: true, mode: 0o700 });
      await Deno.writeTextFile(tag, "dev\nxx\n");
      await f.t.run("true");
      assert.equal((await f.calls()).length, 2);
      await f.t.run("true");
      assert.equal((await f.calls()).length, 2);
      // Same size, same first line, same second: still a new key at the next prompt.
      await Deno.writeTextFile(tag, "dev\nyy\n");
      await f.t.run("true");
      assert.equal((await f.calls()).length, 3, "the edit was not noticed");
      await f.t.run("true");
      assert.equal((await f.calls()).length, 3);
      // An unchanged prompt opens nothing: the reference file, written just before every full
      // read, keeps a time set in the past (the tag's older still).
      const ref = referenceFile(run, "fish");
      await touch("-d", "2020-01-01", tag);
      await touch("-d", "2021-01-01", ref);
      await f.t.run("true");
      await f.t.run("true");
      assert.equal(mtimeYear(ref), 2021, "an unchanged prompt read the tag");
      assert.equal((await f.calls()).length, 3);
      // Stamped with the reference file's own mtime (an edit in the same clock tick as the
      // read): still read again.
      await Deno.writeTextFile(tag, "dev\nzz\n");
      await touch("-r", ref, tag);
      await f.t.run("true");
      assert.equal((await f.calls()).length, 4, "an edit in the read's tick was missed");
      await f.t.run("true");
      assert.equal((await f.calls()).length, 4);
      // An older file moved over the tag is older than the reference too: a cd, even one
      // that finds the same tag, reads it again (the way to make the hook look, as in bash).
      const older = `${f.work}/older`;
      await Deno.writeTextFile(older, "dev\nww\n");
      await touch("-d", "2020-01-01", older);
      await touch("-d", "2021-01-01", ref);
      await Deno.rename(older, tag);
      await f.t.run("true");
      assert.equal((await f.calls()).length, 4);
      await f.t.run("cd sub");
      assert.equal((await f.calls()).length, 5, "a cd did not read the tag again");
      await f.t.run("cd ..");
      assert.equal((await f.calls()).length, 5);

      // A tag below: its own key; removed, the walk finds the one above at the next prompt.
      await Deno.writeTextFile(`${f.work}/proj/sub/.aws-profile`, "prod\n");
      await f.t.run("cd sub");
      assert.equal(await f.child("STSH_PROFILE"), "prod");
      await Deno.remove(`${f.work}/proj/sub/.aws-profile`);
      await f.t.run("true");
      assert.equal(await f.child("STSH_PROFILE"), "dev");
      assert.equal(await f.child("STSH_ROOT"), `${f.work}/proj`);
      assert.equal((await f.calls()).length, 7);

      // A FIFO in its place is never opened (the prompt would hang): a new key, one start.
      await Deno.remove(tag);
      await new Deno.Command("mkfifo", { args: [tag] }).output();
      await f.t.run("true");
      await f.t.run("true");
      assert.equal((await f.calls()).length, 8);
    });
  },
);

fishTest("the walk follows the logical directory, as the binary does", async () => {
  await fake({}, async (f) => {
    // proj/lnk is a link to plain: logically inside the tagged tree, physically not.
    await Deno.symlink(`${f.work}/plain`, `${f.work}/proj/lnk`);
    await f.t.run(`cd ${fq(`${f.work}/proj/lnk`)}`);
    assert.equal(await f.child("STSH_PROFILE"), "dev");
    assert.equal(await f.child("STSH_ROOT"), `${f.work}/proj`);
    await f.t.run("cd ..");
    assert.deepEqual(await f.calls(), ["hook fish"]);

    // A tagged tree whose path holds a newline, a space and a leading dash: from below it the
    // walk finds the same tag (the same key: no second start), and sees it change.
    const weird = `${f.work}/we\nird -x`;
    await Deno.mkdir(`${weird}/sub`, { recursive: true });
    await Deno.writeTextFile(`${weird}/.aws-profile`, "prod\n");
    await f.t.run(`cd ${fishLineQuote(weird)}`);
    assert.equal(await f.child("STSH_ROOT"), weird);
    await f.t.run("cd sub");
    await f.t.run("true");
    assert.equal(await f.child("STSH_PROFILE"), "prod");
    assert.deepEqual(await f.calls(), ["hook fish", "hook fish"]);
    await Deno.writeTextFile(`${weird}/.aws-profile`, "dev\n");
    await f.t.run("true");
    assert.equal(await f.child("STSH_PROFILE"), "dev");
    assert.equal((await f.calls()).length, 3, "the walk lost the tag above a newline");
  });
});

fishTest(
  "Ctrl-C at the question: status kept, nothing set, not asked again, editor intact",
  async () => {
    await fake({}, async (f) => {
      const rounds = [
        { dir: "proj", scenario: "HOOK_STATUS=4\n", code: 1 },
        // A program that dies from the signal instead of exiting 130.
        { dir: "proj2", scenario: "HOOK_STATUS=4\nDIE_ON_INT=1\n", code: 5 },
        // The user's own INT handler stays, and fish still does not cancel the hook.
        {
          dir: "proj",
          scenario: "HOOK_STATUS=4\nDIE_ON_INT=1\n",
          code: 3,
          pre: "function my_int --on-signal INT; end",
        },
      ];
      for (const r of rounds) {
        await f.scenario(r.scenario);
        if (r.pre) await f.t.run(r.pre);
        const before = await f.prompts();
        await f.t.send(`cd ../${r.dir}; sh -c 'exit ${r.code}'`);
        await f.t.key("Enter");
        // (A program dying from the signal leaves no newline: fish's prompt then overwrites
        // the end of the question line.)
        await f.t.waitFor(/MFA co/g, { count: rounds.indexOf(r) + 1 });
        await f.t.key("C-c");
        await f.t.waitFor(/fish>/g, { count: before + 1 });
        assert.equal(
          await f.t.run('echo "st=$status seen=$__seen"'),
          `st=${r.code} seen=${r.code} ${r.code}`,
        );
        // fish did not cancel the hook when the signal came: it saw the program end.
        assert.equal(await f.t.run("echo $__stsh_rc"), "130");
        await f.enter();
        await f.enter("true");
        assert.equal(await f.t.run("echo alive"), "alive");
        assert.equal(await f.child("AWS_SESSION_TOKEN"), null);
        // The hook's INT handler is gone again; the user's is still there.
        assert.equal(await f.t.run("functions -q __stsh_on_int; echo $status"), "1");
        if (r.pre) assert.equal(await f.t.run("functions -q my_int; echo $status"), "0");
      }
      assert.deepEqual(await f.calls(), rounds.flatMap(() => ["hook fish", "hook fish --prompt"]));
      assert.equal(await f.child("AWS_SESSION_TOKEN"), null);
    });
  },
);

fishTest("stsh doctor alone learns how the hook is placed: first, late, missing", async () => {
  await fake({}, async (f) => {
    const version = (await f.t.run("echo $version")).trim();
    assert.equal(
      await f.t.run("stsh doctor"),
      `state=[shell=fish version=${version} mode=keys hook=first]`,
    );
    // Only doctor gets it.
    assert.equal(await f.t.run("stsh showstate"), "state=[<unset>]");
    assert.equal(await f.child("STSH_HOOK_STATE"), null);
    // Another fish_prompt handler that runs before ours (the init line sourced again after a
    // plugin moves ours behind it).
    await f.t.run("function other_hook --on-event fish_prompt; end");
    await f.t.run(`source ${fq(`${f.root}/init.fish`)}`);
    assert.match(await f.t.run("stsh --debug doctor"), /hook=late\]$/);
    // Erased by something else.
    await f.t.run("functions -e __stsh_prompt");
    assert.match(await f.t.run("stsh doctor"), /hook=missing\]$/);
    assert.deepEqual(await f.calls(), ["doctor", "showstate", "--debug doctor", "doctor"]);
  });
});

fishTest("stsh init fish --serve passes --serve to every hook call", async () => {
  await fake({ serve: true }, async (f) => {
    await f.t.run("cd ../proj");
    await f.scenario("HOOK_STATUS=4\n");
    await f.t.send("cd ../proj2");
    await f.t.key("Enter");
    await f.t.waitFor(/^MFA code:$/m);
    await f.enter("654321");
    await f.scenario("HOOK_STATUS=0\n");
    // Extra words, or an option other than --clear: the usage, and nothing run.
    assert.match(await f.t.run("assume prod extra"), /usage: assume \[PROFILE \| --clear\]/);
    assert.match(await f.t.run("assume --bogus"), /usage: assume \[PROFILE \| --clear\]/);
    assert.match(await f.t.run("assume --clear extra"), /usage: assume \[PROFILE \| --clear\]/);
    await f.t.run("assume prod");
    await f.t.run("assume --clear");
    assert.match(await f.t.run("stsh doctor"), / mode=serve hook=first\]$/);
    assert.deepEqual(await f.calls(), [
      "hook fish --serve",
      "hook fish --serve",
      "hook fish --serve --prompt",
      "hook fish --serve --assume prod --prompt",
      "hook fish --serve --unassume",
      // unpinned in a tagged directory: the next prompt looks again
      "hook fish --serve",
      "doctor",
    ]);
  });
});

fishTest(
  "the clock without /proc/uptime (fish's path mtime) refreshes once per expiry",
  async () => {
    const soon = Math.floor(Date.now() / 1000) + 300; // inside the default 600 s margin
    // As on a system without /proc: the clock is __stsh_now, in epoch seconds.
    const post = "set -g __stsh_uptime; set -g __stsh_boot 0";
    await fake({ scenario: `EXPIRES=${soon}\n`, post }, async (f) => {
      const now = Number(await f.t.run("__stsh_now"));
      assert.ok(Math.abs(now - Date.now() / 1000) < 5, `__stsh_now said ${now}`);
      await f.t.run("cd ../proj");
      await f.t.run("true");
      await f.t.run("true");
      assert.deepEqual(await f.calls(), ["hook fish", "hook fish"]);
      await f.t.run("set -gx STSH_REFRESH_MARGIN 60");
      await f.t.run("true");
      assert.equal((await f.calls()).length, 2);
    });
  },
);

// ---------------------------------------------------------------------------------------------
// Against the real program.

fishTest(
  "hostile tag files: the prompt comes back, nothing asked or set, one line each",
  async () => {
    await real({}, async (s) => {
      const { w } = s;
      const base = w.sb.path("hostile");
      const kinds: Record<string, (tag: string) => Promise<void>> = {
        fifo: async (t) => void await sh(`mkfifo ${fq(t)}`),
        "link-to-fifo": async (t) => {
          await sh(`mkfifo ${fq(`${base}/a-fifo`)}`);
          await Deno.symlink(`${base}/a-fifo`, t);
        },
        pagemap: (t) => Deno.symlink("/proc/self/pagemap", t),
        sparse: async (t) => {
          const file = await Deno.open(t, { create: true, write: true, mode: 0o600 });
          await file.truncate(50 * 2 ** 30); // 50 GB of holes
          file.close();
        },
        zero: (t) => Deno.symlink("/dev/zero", t),
        nul: (t) => Deno.writeFile(t, new Uint8Array(4096), { mode: 0o600 }),
        dangling: (t) => Deno.symlink(`${base}/nothing-here`, t),
        ...(Deno.uid() === 0
          ? {
            "other-owner": async (t: string) => {
              await Deno.writeTextFile(t, "a\n", { mode: 0o644 });
              await Deno.chown(t, 65534, 65534);
            },
          }
          : {}),
      };
      await s.run(s.d.setVars({ AWS_ACCESS_KEY_ID: USER_VARS.AWS_ACCESS_KEY_ID }));
      const before = await s.vars();
      const n0 = (await s.starts()).length;
      for (const [kind, make] of Object.entries(kinds)) {
        await Deno.mkdir(`${base}/${kind}`, { recursive: true });
        await make(`${base}/${kind}/.aws-profile`);
        await s.run(s.d.cd(`${base}/${kind}`));
        await s.run(s.d.nop);
        assert.deepEqual(await s.vars(), before, kind);
        await s.run(s.d.cd(s.plain));
      }
      // Back into the first one: the notice is not repeated.
      await s.run(s.d.cd(`${base}/fifo`));
      await s.run(s.d.cd(s.plain));
      const screen = await s.t.screen();
      for (const kind of Object.keys(kinds)) {
        const lines = screen.split("\n").filter((l) =>
          l.startsWith("stsh: ") && l.includes(`${base}/${kind}/.aws-profile`)
        );
        assert.equal(lines.length, 1, `${kind}: not one line:\n${lines.join("\n")}`);
      }
      assert.deepEqual(await s.questions(), []);
      const hook = "hook fish";
      assert.deepEqual(await s.startsSince(n0), [
        ...Object.keys(kinds).flatMap(() => [hook, hook]),
        `${hook} --quiet`,
        hook,
      ]);
      assert.deepEqual(w.emu.counts, {});
    });
  },
);

fishTest("Tab completes stsh subcommands, profiles after stsh env, and assume", async () => {
  await real({}, async (s) => {
    const n0 = (await s.starts()).length;
    for (
      const [typed, want] of [
        ["stsh cre", "stsh credential-process "],
        ["stsh env ro", "stsh env robot "],
        ["assume ch", "assume chain "],
        ["stsh env --format fi", "stsh env --format fish "],
      ]
    ) {
      await s.t.send(typed);
      await s.t.key("Tab");
      await s.t.waitFor(new RegExp(`fish> ${escapeRe(want.trimEnd())}$`, "m"));
      await s.t.key("C-u");
      await s.t.key("C-k");
    }
    await s.run(s.d.nop);
    assert.deepEqual(await s.startsSince(n0), [
      "complete -- stsh cre",
      "complete -- stsh env ro",
      "complete -- assume ch",
      "complete -- stsh env --format fi",
    ]);
  });
});

fishTest(
  "STSH_DEBUG says why on the slow path only; values with newlines; universal variables",
  async () => {
    await real({}, async (s) => {
      const { w } = s;
      // A directory whose name a command substitution would split, and that quotes would end.
      const dir = w.sb.path("work", "x\ny 'q' $(z) \\");
      await Deno.mkdir(dir, { recursive: true });
      const r = await w.run(["tag", "a", dir]);
      assert.equal(r.code, 0, r.stderr);
      // The user's AWS_PROFILE is a universal variable: stsh must not erase it.
      await s.run("set -Ux AWS_PROFILE mine; set -gx STSH_DEBUG 1");
      const n0 = (await s.starts()).length;
      await s.expectQuestion(`cd ${fishLineQuote(dir)}`, "a");
      await s.answer(await w.emu.code(w.alice));
      assert.deepEqual(await s.startsSince(n0), ["hook fish", "hook fish --prompt"]);
      let screen = await s.t.screen();
      const why = "stsh: debug: fish hook: the tag or directory changed; running stsh hook fish";
      assert.equal(screen.split(why).length - 1, 1, screen);
      // The binary's own debug lines follow the hook's.
      assert.match(screen.slice(screen.indexOf(why)), /\nstsh: debug: /);
      const v = await s.vars();
      assert.equal(v.STSH_ROOT, dir);
      assert.equal(v.STSH_PROFILE, "a");
      assert.match(v.AWS_ACCESS_KEY_ID, /^ASIA/);
      // The universal AWS_PROFILE is still there (and programs still see it): said once.
      assert.equal(v.AWS_PROFILE, "mine");
      assert.match(screen, /stsh: AWS_PROFILE is a universal variable \(set -U\), left as it is/);

      // An unchanged prompt: no start, no debug line.
      await s.run(s.d.nop);
      await s.run(s.d.nop);
      screen = await s.t.screen();
      assert.equal(screen.split(why).length - 1, 1);
      assert.equal((await s.starts()).length, n0 + 2);

      await s.run(s.d.cd(s.plain));
      const out = await s.vars();
      assert.equal(out.AWS_PROFILE, "mine");
      assert.equal(out.STSH_PROFILE, undefined);
      assert.equal(out.AWS_ACCESS_KEY_ID, undefined);
      assert.equal(await s.run("set -qU AWS_PROFILE; and echo $status"), "0");
      assert.equal((await s.t.screen()).split("is a universal variable").length - 1, 1);
    });
  },
);

async function sh(cmd: string): Promise<string> {
  const out = await new Deno.Command("/bin/sh", { args: ["-c", cmd], stdout: "piped" }).output();
  assert.ok(out.success, cmd);
  return dec.decode(out.stdout);
}
