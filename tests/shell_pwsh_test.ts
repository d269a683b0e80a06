/**
 * PowerShell only: the parts of shell/stsh.ps1 that protocol v2 added or that only pwsh has,
 * in a real interactive pwsh in a pseudo-terminal (tests/support/pty.ts).
 *
 * Two kinds of test, as in the shared suites:
 * - with the fake program (tests/support/fake_stsh.bash, logging its argv), for the hook's own
 *   logic: when it starts the program and with what; the fake sits behind a small wrapper
 *   that also logs any STSH_HOOK_STATE it is given;
 * - with the real program behind the hook (tests/support/session.ts), for what a person sees:
 *   hostile tags, completion, a directory reached through a link, Ctrl-C at `assume`.
 */
import assert from "node:assert/strict";
import { Pty } from "./support/pty.ts";
import { EXE } from "./support/shells.ts";
import { BROKEN, QUESTION, Session, USER_VARS } from "./support/session.ts";
import { assertNoTagAbove, FakeProgram } from "./support/fake.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const FAKE_STSH = new URL("./support/fake_stsh.bash", import.meta.url).pathname;
const PWSH = EXE.pwsh;
// Lines on the screen are trimmed: an empty prompt is "pwsh>".
const PROMPT = /^pwsh>/m;
const PROMPTS = /pwsh>/g;

function pwshTest(name: string, fn: () => Promise<void>) {
  Deno.test({
    name: `pwsh: ${name}${PWSH ? "" : " (skipped: pwsh is not installed)"}`,
    ignore: PWSH === undefined,
    fn,
  });
}

/** A pwsh literal string (single quotes, the typographic ones doubled too). */
const ps = (s: string) => `'${s.replace(/['\u2018-\u201b]/g, "$&$&")}'`;

// ---------------------------------------------------------------------------------------------
// With the fake program.

interface FakeOpts {
  /** What @STSH_MODE@ becomes (`--serve`, or empty). */
  mode?: string;
  /** pwsh code after the hook is loaded. */
  post?: string;
  /** Scenario file contents for the fake. */
  scenario?: string;
  /** Start directory under the work dir (default: "plain", untagged). */
  cwd?: string;
}

/** A temp dir with the fake behind a wrapper, a HOME, tagged and untagged directories. */
class Fake extends FakeProgram {
  readonly bin: string;
  readonly work: string;
  t!: Pty;
  private constructor(readonly root: string) {
    super();
    this.bin = `${root}/bin`;
    this.work = `${root}/w`;
  }

  static async start(o: FakeOpts = {}): Promise<Fake> {
    const f = new Fake(await Deno.makeTempDir({ prefix: "stsh-pwsh-" }));
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
    for (const d of ["bin", "home", "tmp", "w/plain", "w/proj/sub", "w/proj2"]) {
      await Deno.mkdir(`${this.root}/${d}`, { recursive: true });
    }
    await Deno.copyFile(FAKE_STSH, `${this.bin}/fake`);
    await Deno.chmod(`${this.bin}/fake`, 0o755);
    // The program the hook runs: notes who gets STSH_HOOK_STATE, then runs the fake (which
    // logs its argv next to itself).
    await Deno.writeTextFile(
      `${this.bin}/stsh`,
      [
        "#!/bin/bash",
        "here=${BASH_SOURCE[0]%/*}",
        "if [[ -n ${STSH_HOOK_STATE+set} ]]; then",
        '  printf "%s: %s\\n" "$*" "$STSH_HOOK_STATE" >>"$here/states"',
        "fi",
        'if [[ $1 == doctor ]]; then printf "%s\\n" "$*" >>"$here/log"; exit 0; fi',
        'exec "$here/fake" "$@"',
        "",
      ].join("\n"),
    );
    await Deno.chmod(`${this.bin}/stsh`, 0o755);
    await Deno.writeTextFile(`${this.work}/proj/.aws-profile`, "dev\n");
    await Deno.writeTextFile(`${this.work}/proj2/.aws-profile`, "prod\n");
    await this.scenario(o.scenario ?? "HOOK_STATUS=0\n");
    const src = await Deno.readTextFile(`${ROOT}shell/stsh.ps1`);
    const init = `${this.root}/init.ps1`;
    await Deno.writeTextFile(
      init,
      src.replaceAll("@STSH_BIN@", ps(`${this.bin}/stsh`)).replaceAll("@STSH_MODE@", o.mode ?? ""),
    );
    const rc = `${this.root}/rc.ps1`;
    await Deno.writeTextFile(
      rc,
      [
        "Set-StrictMode -Version Latest",
        "Set-PSReadLineOption -PredictionSource None",
        "function global:prompt { 'pwsh> ' }",
        `. ${ps(init)}`,
        o.post ?? "",
      ].join("\n") + "\n",
    );
    this.t = await Pty.start({
      cmd: [PWSH!, "-NoLogo", "-NoProfile", "-NoExit", "-Command", `. ${ps(rc)}`],
      env: {
        HOME: `${this.root}/home`,
        TMPDIR: `${this.root}/tmp`,
        TERM: "xterm-256color",
        LANG: "C.UTF-8",
        PATH: `${this.bin}:/usr/local/bin:/usr/bin:/bin`,
        USER: "tester",
        POWERSHELL_TELEMETRY_OPTOUT: "1",
        POWERSHELL_UPDATECHECK: "Off",
        DOTNET_CLI_TELEMETRY_OPTOUT: "1",
      },
      cwd: `${this.work}/${o.cwd ?? "plain"}`,
      prompt: PROMPT,
      timeoutMs: 20_000,
    });
    await this.t.waitFor(PROMPT, { timeoutMs: 30_000 });
  }

  /** "ARGV: STSH_HOOK_STATE" for each start that was given STSH_HOOK_STATE. */
  states(): Promise<string[]> {
    return lines(`${this.bin}/states`);
  }

  run(line: string): Promise<string> {
    return this.t.run(line);
  }

  /** Types `line` and Enter without run()'s marker, then waits for the next prompt. */
  async enter(line = ""): Promise<void> {
    const before = (await this.t.screen()).match(PROMPTS)?.length ?? 0;
    await this.t.send(line);
    await this.t.key("Enter");
    await this.t.waitFor(PROMPTS, { count: before + 1 });
  }

  async close(): Promise<void> {
    try {
      if (this.t) {
        assert.doesNotMatch(await this.t.screen(), BROKEN);
        await this.t.close();
      }
    } finally {
      await Deno.remove(this.root, { recursive: true }).catch(() => undefined);
    }
  }
}

async function lines(file: string): Promise<string[]> {
  try {
    return (await Deno.readTextFile(file)).split("\n").filter((l) => l !== "");
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}

async function withFake(o: FakeOpts, body: (f: Fake) => Promise<void>): Promise<void> {
  const f = await Fake.start(o);
  try {
    await body(f);
  } finally {
    await f.close();
  }
}

pwshTest(
  "an edit that keeps the size and the first line is noticed at the next prompt",
  async () => {
    await withFake({}, async (f) => {
      const tag = `${f.work}/proj/.aws-profile`;
      await Deno.writeTextFile(tag, "dev\n#1\n");
      await f.run("cd ../proj");
      await f.run("$null");
      assert.deepEqual(await f.calls(), ["hook pwsh"]);
      // Rewritten at once, the same size and first line: the next prompt starts the program.
      await Deno.writeTextFile(tag, "dev\n#2\n");
      await f.run("$null");
      assert.equal((await f.calls()).length, 2);
      await Deno.writeTextFile(tag, "dev\n#3\n");
      await f.run("$null");
      await f.run("$null");
      assert.equal((await f.calls()).length, 3);
      // Two writes within one tick of the file clock share a time: a tag whose time is that
      // recent (under 3 s) is read again at the next prompt even when the time did not move.
      // (Should the prompt that read it come too late on a loaded machine, the hook may
      // rightly have trusted the time: the round is then done again.)
      for (let attempt = 0;; attempt++) {
        const n = (await f.calls()).length;
        const recent = Date.now() / 1000;
        await Deno.writeTextFile(tag, `dev\n#A${attempt}\n`);
        await Deno.utime(tag, recent, recent);
        await f.run("$null");
        const late = Date.now() / 1000 - recent > 2.5;
        await Deno.writeTextFile(tag, `dev\n#B${attempt}\n`);
        await Deno.utime(tag, recent, recent);
        await f.run("$null");
        const got = (await f.calls()).length - n;
        if (late && got === 1 && attempt < 5) continue;
        assert.equal(got, 2, "an edit within the same file-clock tick went unnoticed");
        break;
      }
      await Deno.writeTextFile(tag, "dev\n#3\n");
      await f.run("$null");
      const c = (await f.calls()).length;
      // An old file (its time is trusted, so it is not read again) edited in place.
      await Deno.writeTextFile(tag, "dev\n#4\n");
      await Deno.utime(tag, 1_600_000_000, 1_600_000_000);
      await f.run("$null");
      await f.run("$null");
      assert.equal((await f.calls()).length, c + 1);
      await Deno.writeTextFile(tag, "dev\n#5\n");
      await Deno.utime(tag, 1_600_000_001, 1_600_000_001);
      await f.run("$null");
      assert.equal((await f.calls()).length, c + 2);
      // Nothing changed: nothing started.
      await f.t.send("$null\r".repeat(20));
      await f.run("$null");
      assert.equal((await f.calls()).length, c + 2);

      // A tag that is a link: re-pointed, or its target edited, is noticed as well.
      const link = `${f.work}/proj2/.aws-profile`;
      await Deno.writeTextFile(`${f.work}/t1`, "prod\n#1\n");
      await Deno.writeTextFile(`${f.work}/t2`, "prod\n#2\n");
      await Deno.utime(`${f.work}/t1`, 1_600_000_000, 1_600_000_000);
      await Deno.utime(`${f.work}/t2`, 1_600_000_000, 1_600_000_000);
      await Deno.remove(link);
      await Deno.symlink("../t1", link);
      await touchLink(link, 1_600_000_000);
      await f.run("cd ../proj2");
      await f.run("$null");
      assert.equal((await f.calls()).length, c + 3);
      await Deno.writeTextFile(`${f.work}/t1`, "prod\n#3\n");
      await Deno.utime(`${f.work}/t1`, 1_600_000_001, 1_600_000_001);
      await f.run("$null");
      assert.equal((await f.calls()).length, c + 4);
      await Deno.remove(link);
      await Deno.symlink("../t2", link);
      await touchLink(link, 1_600_000_002);
      await f.run("$null");
      assert.equal((await f.calls()).length, c + 5);
      await f.run("$null");
      assert.equal((await f.calls()).length, c + 5);
      assert.deepEqual(new Set(await f.calls()), new Set(["hook pwsh"]));
    });
  },
);

/** Sets the time of a link itself (Deno.utime follows links). */
async function touchLink(path: string, epoch: number): Promise<void> {
  const r = await new Deno.Command("touch", { args: ["-h", "-d", `@${epoch}`, path] }).output();
  assert.ok(r.success, `touch -h ${path}`);
}

pwshTest("STSH_DEBUG=1 says why the program starts, on the slow path only", async () => {
  const soon = Math.floor(Date.now() / 1000) + 300; // within the default 600 s margin
  await withFake({ scenario: `EXPIRES=${soon}\n` }, async (f) => {
    await f.run("$env:STSH_DEBUG = '1'");
    await f.run("cd ../proj");
    const tag = `${f.work}/proj/.aws-profile`;
    await f.t.waitFor(
      `stsh: debug: pwsh hook: the tag changed (now: ${tag}); running stsh hook pwsh`,
    );
    // Near expiry: renewed once, and said why.
    await f.run("$null");
    await f.t.waitFor(
      `stsh: debug: pwsh hook: the credentials are near expiry (STSH_EXPIRES ${soon}, margin 600 s); running stsh hook pwsh`,
    );
    await f.run("$null");
    await f.run("$null");
    assert.equal((await f.calls()).length, 2);
    assert.equal(((await f.t.screen()).match(/stsh: debug:/g) ?? []).length, 2);
    // Pinned by assume and near expiry.
    await f.run("assume prod");
    await f.run("$null");
    await f.t.waitFor(
      `stsh: debug: pwsh hook: the assumed profile is near expiry (STSH_EXPIRES ${soon}, margin 600 s); running stsh hook pwsh`,
    );
    await f.run("cd ../plain");
    await f.run("$null");
    assert.deepEqual((await f.calls()).slice(2), ["hook pwsh --assume prod --prompt", "hook pwsh"]);
    assert.equal(((await f.t.screen()).match(/stsh: debug:/g) ?? []).length, 3);
    // Without STSH_DEBUG: not a word.
    await f.run("assume --clear; Remove-Item Env:STSH_DEBUG");
    await f.run("cd ../proj2");
    assert.equal((await f.calls()).length, 6);
    assert.equal(((await f.t.screen()).match(/stsh: debug:/g) ?? []).length, 3);
  });
});

pwshTest("--serve goes to every hook call, the prompt's and assume's", async () => {
  await withFake({ mode: "--serve" }, async (f) => {
    await f.run("cd ../proj");
    await f.run("assume prod");
    await f.run("assume --clear");
    assert.deepEqual(await f.calls(), [
      "hook pwsh --serve",
      "hook pwsh --serve --assume prod --prompt",
      "hook pwsh --serve --unassume",
      "hook pwsh --serve",
    ]);
  });
  // The default: no mode flag at all.
  await withFake({}, async (f) => {
    await f.run("cd ../proj");
    assert.deepEqual(await f.calls(), ["hook pwsh"]);
  });
});

pwshTest(
  "stsh doctor, and only it, is told whether the hook runs first, late or not at all",
  async () => {
    await withFake({}, async (f) => {
      const version = (await f.run("$PSVersionTable.PSVersion.ToString()")).trim();
      await f.run("stsh doctor");
      await f.run("stsh --debug doctor --verbose");
      await f.run("stsh version");
      await f.run("stsh --profile doctor env");
      assert.equal(await f.run("[string]$env:STSH_HOOK_STATE"), "");
      // Something wraps the prompt after stsh (and calls it): the hook still runs, but late.
      await f.run(
        "$global:__other = $function:prompt; function global:prompt { $null = 1; & $global:__other }",
      );
      await f.run("stsh doctor");
      // A theme replaced the prompt: the hook no longer runs at all.
      await f.run("function global:prompt { 'pwsh> ' }");
      await f.run("stsh doctor");
      // Loading the hook again (after the theme, as README says) puts it first again.
      await f.run(`. ${ps(`${f.root}/init.ps1`)}`);
      await f.run("stsh doctor");
      const state = (hook: string) => `shell=pwsh version=${version} mode=keys hook=${hook}`;
      assert.deepEqual(await f.states(), [
        `doctor: ${state("first")}`,
        `--debug doctor --verbose: ${state("first")}`,
        `doctor: ${state("late")}`,
        `doctor: ${state("missing")}`,
        `doctor: ${state("first")}`,
      ]);
    });
    await withFake({ mode: "--serve" }, async (f) => {
      await f.run("stsh doctor");
      assert.match((await f.states())[0], / mode=serve hook=first$/);
    });
  },
);

pwshTest("Tab completes through stsh complete and leaves $LASTEXITCODE alone", async () => {
  await withFake({}, async (f) => {
    await f.run("bash -c 'exit 7'");
    await f.t.send("stsh cu");
    await f.t.key("Tab");
    await f.t.waitFor(/^pwsh> stsh current$/m);
    await f.t.key("C-u");
    await f.t.send("assume prod-");
    await f.t.key("Tab");
    await f.t.waitFor(/^pwsh> assume prod-eu$/m);
    await f.t.key("C-u");
    await f.t.send("stsh env sta");
    await f.t.key("Tab");
    await f.t.waitFor(/^pwsh> stsh env staging$/m);
    await f.t.key("C-u");
    assert.equal(await f.run("$LASTEXITCODE"), "7");
    assert.deepEqual(await f.calls(), [
      "complete -- stsh cu",
      "complete -- assume prod-",
      "complete -- stsh env sta",
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// With the real program.

/** A real-program session in pwsh; always closed. */
async function withSession(body: (s: Session) => Promise<void>): Promise<void> {
  const s = await Session.start("pwsh");
  try {
    await body(s);
    assert.doesNotMatch(await s.t.screen(), BROKEN);
  } finally {
    await s.close();
  }
}

pwshTest(
  "hostile tags: the prompt comes back, nothing is asked or set, one line per directory",
  async () => {
    await withSession(async (s) => {
      const { d, w } = s;
      await s.run(d.setVars({ AWS_ACCESS_KEY_ID: USER_VARS.AWS_ACCESS_KEY_ID }));
      const before = await s.vars();
      const dir = (name: string) => w.sb.path("work", name);
      const tag = (name: string) => `${dir(name)}/.aws-profile`;
      const make: Record<string, () => Promise<void>> = {
        fifo: async () => await mkfifo(tag("fifo")),
        "link-to-fifo": async () => {
          await mkfifo(`${dir("link-to-fifo")}/pipe`);
          await Deno.symlink("pipe", tag("link-to-fifo"));
        },
        "link-to-proc": async () => await Deno.symlink("/proc/self/pagemap", tag("link-to-proc")),
        "link-to-zero": async () => await Deno.symlink("/dev/zero", tag("link-to-zero")),
        sparse: async () => {
          const file = await Deno.open(tag("sparse"), { write: true, create: true });
          await file.truncate(50 * 2 ** 30);
          file.close();
        },
        nul: async () => await Deno.writeFile(tag("nul"), new Uint8Array(100)),
      };
      if (Deno.uid() === 0) {
        make["other-user"] = async () => {
          await Deno.writeTextFile(tag("other-user"), "a\n");
          await Deno.chown(tag("other-user"), 65534, null);
        };
      }
      for (const [name, f] of Object.entries(make)) {
        await Deno.mkdir(dir(name), { recursive: true });
        await f();
      }
      const n0 = (await s.starts()).length;
      // Each directory twice: a line the first time, none the second.
      for (let round = 0; round < 2; round++) {
        for (const name of Object.keys(make)) {
          await s.run(d.cd(dir(name)));
          await s.run(d.nop);
          assert.deepEqual(await s.vars(), before, name);
          await s.run(d.cd(s.plain));
        }
      }
      const screen = await s.t.screen();
      for (const name of Object.keys(make)) {
        const said = screen.split("\n").filter((l) => l.startsWith(`stsh: ${tag(name)} `));
        assert.equal(said.length, 1, `${name}: ${JSON.stringify(said)}`);
        assert.match(said[0], /; ignored\./);
      }
      assert.deepEqual(await s.questions(), []);
      const hook = "hook pwsh";
      assert.deepEqual(await s.startsSince(n0), [
        ...Object.keys(make).flatMap(() => [hook, hook]),
        ...Object.keys(make).flatMap(() => [`${hook} --quiet`, hook]),
      ]);
      assert.deepEqual(w.emu.counts, {});
    });
  },
);

async function mkfifo(path: string): Promise<void> {
  const r = await new Deno.Command("mkfifo", { args: [path] }).output();
  assert.ok(r.success, `mkfifo ${path}`);
}

pwshTest("a directory reached through a link finds the tag above the link", async () => {
  await withSession(async (s) => {
    const { d, w } = s;
    // work/a is tagged `a`; work/a/linked -> elsewhere/real, which has no tag above it.
    const real = w.sb.path("elsewhere", "real");
    await Deno.mkdir(real, { recursive: true });
    await Deno.symlink(real, `${s.dirA}/linked`);
    await s.expectQuestion(d.cd(`${s.dirA}/linked`), "a");
    await s.answer(await w.emu.code(w.alice));
    assert.equal((await s.vars()).STSH_PROFILE, "a");
    assert.equal(await s.run("[string]$env:PWD -eq $PWD.ProviderPath"), "False");
  });
});

pwshTest("Tab completes stsh commands and profiles with the real program", async () => {
  await withSession(async (s) => {
    const { t } = s;
    await s.run("bash -c 'exit 3'");
    await t.send("stsh cre");
    await t.key("Tab");
    await t.waitFor(/^pwsh> stsh credential-process$/m);
    await t.key("C-u");
    await t.send("stsh env ro");
    await t.key("Tab");
    await t.waitFor(/^pwsh> stsh env robot$/m);
    await t.key("C-u");
    await t.send("stsh env --format pow");
    await t.key("Tab");
    await t.waitFor(/^pwsh> stsh env --format powershell$/m);
    await t.key("C-u");
    await t.send("assume ch");
    await t.key("Tab");
    await t.waitFor(/^pwsh> assume chain$/m);
    await t.key("C-u");
    assert.equal(await s.run("$LASTEXITCODE"), "3");
  });
});

pwshTest("Ctrl-C at assume's question sets nothing and says how to be asked again", async () => {
  await withSession(async (s) => {
    const { d } = s;
    await s.run(d.setVars({ AWS_ACCESS_KEY_ID: USER_VARS.AWS_ACCESS_KEY_ID }));
    const before = await s.vars();
    await s.expectQuestion("assume a", "a");
    await s.answer(null);
    await s.t.waitFor("stsh: cancelled; `assume a` asks again.");
    assert.equal(await s.run("$LASTEXITCODE"), "130");
    assert.deepEqual(await s.vars(), before);
    assert.equal([...(await s.t.screen()).matchAll(QUESTION)].length, 1);
  });
});
