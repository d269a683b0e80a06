/**
 * `deno task demo` end to end, once per shell, the way a newcomer goes through it: in a real
 * terminal (tmux), with HOME pointing at a stand-in "real home" whose ~/.aws must come out
 * untouched. The demo's own clock mechanism (libfaketime + the emulator's virtual clock) is
 * what `stsh-demo skip` exercises here; nothing is faked by the test.
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { Pty } from "./support/pty.ts";
import { StsEmulator } from "../emulator/sts.ts";
import { banner, defaultShell, parseArgs } from "../demo/demo.ts";
import {
  formatDuration,
  listAwsVariables,
  moreSeconds,
  parseDuration,
  readOffset,
} from "../demo/stsh_demo.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const HOME = Deno.env.get("HOME") ?? "/root";
/** pwsh as `dotnet tool install --global PowerShell` puts it. */
const DOTNET_TOOLS = join(HOME, ".dotnet", "tools");
const PATH = [dirname(Deno.execPath()), Deno.env.get("PATH") ?? "/usr/bin:/bin", DOTNET_TOOLS]
  .join(":");
const DENO_DIR = Deno.env.get("DENO_DIR") ?? join(HOME, ".cache", "deno");

function which(name: string): string | null {
  for (const dir of PATH.split(":")) {
    try {
      const p = join(dir, name);
      if (Deno.statSync(p).isFile) return p;
    } catch {
      // not here
    }
  }
  return null;
}

/** Every entry under `dir`: its kind, size, mtime and (files) content, by relative path. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string) => {
    for await (const e of Deno.readDir(join(dir, rel))) {
      const r = join(rel, e.name);
      const st = await Deno.lstat(join(dir, r));
      let what = `${e.isDirectory ? "dir" : e.isSymlink ? "link" : "file"} ${st.size} ` +
        `${st.mtime?.getTime()} ${st.mode}`;
      if (e.isFile) what += " " + await Deno.readTextFile(join(dir, r));
      out[r] = what;
      if (e.isDirectory) await walk(r);
    }
  };
  await walk("");
  return out;
}

/** Processes whose environment names this sandbox (the demo must leave none behind). */
function sandboxProcesses(sandbox: string): number[] {
  const needle = `STSH_DEMO_SANDBOX=${sandbox}`;
  const found: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const env = Deno.readTextFileSync(`/proc/${e.name}/environ`).split("\0");
      if (env.includes(needle)) found.push(Number(e.name));
    } catch {
      // gone, or not ours
    }
  }
  return found;
}

/** Waits until process `pid` has ended (gone, or a zombie nobody reaped yet). */
async function waitGone(pid: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    let state = "";
    try {
      state = (await Deno.readTextFile(`/proc/${pid}/stat`)).replace(/^.*\) /s, "")[0];
    } catch {
      return;
    }
    if (state === "Z") return;
    if (Date.now() > deadline) throw new Error(`process ${pid} still running (state ${state})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** A prompt line of the demo, empty or with a command typed after it. */
const PROMPT_LINE = /^demo \d\d:\d\d .*?(?:\$|%|PS>)(?: .*)?$/m;

const PROMPT: Record<string, RegExp> = {
  bash: /^demo \d\d:\d\d .*\$$/m,
  zsh: /^demo \d\d:\d\d .*%$/m,
  pwsh: /^demo \d\d:\d\d .*PS>$/m,
};

/** The code the demo shows below an open MFA question. */
const HINT = /^stsh-demo: your authenticator app shows (\d{6}) \(for \d+ more seconds?\):/m;
const HINT_G = new RegExp(HINT.source, "gm");

const count = (text: string, re: RegExp) =>
  text.match(new RegExp(re.source, re.flags.replace("g", "") + "g"))?.length ?? 0;

type Shell = "bash" | "zsh" | "pwsh";

function demoTest(shell: Shell) {
  const installed = which(shell) !== null;
  Deno.test({
    name: installed
      ? `demo (${shell}): code, cd asks once, whoami, silent renewal, re-prompt, exit cleans up`
      : `demo (${shell}): skipped, ${shell} is not installed`,
    ignore: !installed,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      // A stand-in for the person's real HOME, with an AWS config the demo must not touch.
      const realHome = await Deno.realPath(await Deno.makeTempDir({ prefix: "stsh-realhome-" }));
      await Deno.mkdir(join(realHome, ".aws"), { mode: 0o700 });
      await Deno.writeTextFile(
        join(realHome, ".aws", "config"),
        "[default]\nregion = us-west-2\n\n[profile dev]\nrole_arn = arn:aws:iam::999999999999:role/real\nsource_profile = default\n",
      );
      await Deno.writeTextFile(
        join(realHome, ".aws", "credentials"),
        "[default]\naws_access_key_id = AKIAREALREALREAL0000\naws_secret_access_key = real\n",
        { mode: 0o600 },
      );
      const past = new Date(Date.now() - 86400_000);
      for (const f of [".aws/config", ".aws/credentials", ".aws"]) {
        await Deno.utime(join(realHome, f), past, past);
      }
      const before = await snapshot(realHome);
      try {
        await walkThrough(shell, realHome);
        // The real home: same entries, same contents, same times; nothing new.
        assert.deepEqual(await snapshot(realHome), before);
      } finally {
        await Deno.remove(realHome, { recursive: true });
      }
    },
  });
}

/** The banner's steps, in a terminal, in `shell`, with HOME=`realHome`. */
async function walkThrough(shell: Shell, realHome: string) {
  const t = await Pty.start({
    cmd: [Deno.execPath(), "task", "--quiet", "demo", "--shell", shell],
    cwd: ROOT,
    env: {
      PATH,
      HOME: realHome,
      DENO_DIR,
      DENO_NO_UPDATE_CHECK: "1",
      TERM: "xterm-256color",
      LANG: "C.UTF-8",
    },
    dialect: shell === "pwsh" ? "pwsh" : "posix",
    // run() also waits for the prompt after the output: typing ahead while a prompt hook
    // runs loses the Enter in pwsh.
    prompt: /^demo \d\d:\d\d .*(?:\$|%|PS>)$/,
    timeoutMs: 20_000,
  });
  let sandbox = "";
  // Things a newcomer would trip over but that do not stop the walk-through: collected,
  // and the test fails with them at the end (after checking everything else).
  const problems: string[] = [];
  /** Prompts on the screen so far (with or without a command typed after them). */
  const prompts = async () => count(await t.screen(), PROMPT_LINE);
  /** Types `text` and Enter. */
  const type = async (text: string) => {
    await t.send(text);
    await t.key("Enter");
  };
  /** Types `text` and Enter, and waits for the next prompt (the prompt hooks have run). */
  const line = async (text: string) => {
    const n = await prompts();
    await type(text);
    await t.waitFor(PROMPT_LINE, { count: n + 1 });
  };
  /** The MFA question must be on the screen before anything is typed. */
  const question = async (profile: string) => {
    const re = new RegExp(
      `stsh: MFA code for ${profile} \\(arn:aws:iam::123456789012:mfa/demo-user\\):`,
    );
    try {
      return await t.waitFor(re, { timeoutMs: 10_000 });
    } catch {
      problems.push(
        `${shell}: the MFA question for ${profile} is not on the screen before the code is ` +
          "typed (it shows up only after Enter)",
      );
      return await t.screen();
    }
  };
  /** `stsh-demo whoami`: the AWS CLI, signing with what stsh exported, is `arn` + digits. */
  const whoami = async (arn: string) => {
    const out = await t.run("stsh-demo whoami", { timeoutMs: 30_000 });
    if (!out.includes(`"Arn": "${arn}`)) {
      problems.push(`${shell}: stsh-demo whoami is not ${arn}…: ${out.split("\n").pop()}`);
    }
  };
  try {
    const prompt = PROMPT[shell];
    let screen = await t.waitFor(prompt, { timeoutMs: 30_000 });
    assert.match(screen, /stsh demo/);
    assert.match(screen, /stsh-demo code/);
    sandbox = (await t.run("printenv STSH_DEMO_SANDBOX")).trim();
    assert.ok(sandbox.startsWith("/") && await exists(sandbox), `sandbox ${sandbox}`);
    const demoPid = Number(await Deno.readTextFile(join(sandbox, "demo.pid")));
    assert.ok(demoPid > 0);
    assert.equal((await t.run("printenv HOME")).trim(), join(sandbox, "home"));
    const url = (await t.run("printenv AWS_ENDPOINT_URL_STS")).trim();
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    // libfaketime's semaphore and shared memory, which the demo must remove.
    const shared = (await t.run("printenv FAKETIME_SHARED")).trim().split(/\s+/);
    assert.equal(shared.length, 2, `FAKETIME_SHARED: ${shared}`);

    // The banner's texts are in this shell's language, and what it suggests works here.
    assert.ok(screen.includes(listAwsVariables(shell)), `${shell}: ${listAwsVariables(shell)}`);
    if (shell === "pwsh") assert.doesNotMatch(screen, /printenv/);
    assert.doesNotMatch(screen, /\b1 more seconds\b/);

    // 1. The code the authenticator shows, and for how long ("1 more second", not "seconds").
    const shown = await t.run("stsh-demo code");
    const m = /app shows: (\d{6}) +\(for (\d+) more (seconds?); then a new one\)/.exec(shown);
    assert.ok(m, `stsh-demo code: ${shown}`);
    assert.equal(m[3], m[2] === "1" ? "second" : "seconds");

    // 2. cd into the dev project: the question, and below it the code the app shows (stsh-demo
    // code cannot run while the question is open). The code changes while the question is
    // open (30 s pass: skipped from outside), and the demo shows the new one, which is typed.
    let n = await prompts();
    await type("cd ~/projects/dev-app");
    await question("dev");
    screen = await t.waitFor(HINT, { timeoutMs: 10_000 });
    assert.match(screen, /MFA code for dev \(.*\): *\nstsh-demo: your authenticator app shows/);
    const before = [...screen.matchAll(HINT_G)].pop()![1];
    const skipped = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        join(ROOT, "demo", "stsh_demo.ts"),
        join(sandbox, "demo.json"),
        "skip",
        "30s",
      ],
      stdout: "null",
      stderr: "inherit",
    }).output();
    assert.ok(skipped.success, "stsh_demo.ts skip 30s");
    screen = await t.waitFor(/stsh-demo: now it shows (\d{6}) \(for \d+ more seconds?\):$/m, {
      timeoutMs: 10_000,
    });
    const first = /stsh-demo: now it shows (\d{6})/.exec(screen)![1];
    assert.notEqual(first, before, "a new code after 30 s");
    await t.send(first);
    await t.key("Enter");
    await t.waitFor(PROMPT_LINE, { count: n + 1 });
    await t.waitFor(/^demo \d\d:\d\d \[dev \d+m\] ~\/projects\/dev-app/m); // the prompt shows it
    assert.equal((await t.run("printenv STSH_PROFILE")).trim(), "dev");
    // What the banner suggests for the AWS_* variables shows them, in this shell.
    assert.match(await t.run(listAwsVariables(shell)), /AWS_ACCESS_KEY_ID/);

    // 3. The AWS CLI, signing with what stsh exported, is the dev role.
    await whoami("arn:aws:sts::111111111111:assumed-role/developer/stsh-");

    // 4. prod, without a question: the MFA session is reused.
    await line("cd ../prod-infra");
    assert.equal((await t.run("printenv STSH_PROFILE")).trim(), "prod");
    await whoami("arn:aws:sts::222222222222:assumed-role/admin/stsh-");
    assert.equal(count(await t.screen(), /MFA code for/), 1, "asked once so far");

    // 5. 55 minutes later the role is near its end: renewed at the next prompt, silently.
    const key1 = (await t.run("printenv AWS_ACCESS_KEY_ID")).trim();
    assert.match(key1, /^ASIA/);
    await line("stsh-demo skip 55m");
    await t.waitFor(/^55m later: it is \d\d:\d\d in the sandbox/m);
    await line(""); // and Enter
    // Every clock in the sandbox moved: the shell's own (the one its hook compares
    // STSH_EXPIRES with) and Deno's (stsh's).
    const ahead = async (cmd: string) =>
      Number((await t.run(cmd)).trim()) - Math.floor(Date.now() / 1000);
    const shellClock = shell === "pwsh"
      ? "[DateTimeOffset]::UtcNow.ToUnixTimeSeconds()"
      : "echo $EPOCHSECONDS";
    for (const cmd of [shellClock, "deno eval 'console.log(Math.floor(Date.now() / 1000))'"]) {
      const by = await ahead(cmd);
      assert.ok(Math.abs(by - 3300) < 60, `${cmd}: ${by} s ahead, not 55m`);
    }
    const key2 = (await t.run("printenv AWS_ACCESS_KEY_ID")).trim();
    assert.match(key2, /^ASIA/);
    assert.notEqual(key2, key1, "new credentials after the skip");
    assert.equal((await t.run("printenv STSH_PROFILE")).trim(), "prod");
    assert.equal(count(await t.screen(), /MFA code for/), 1, "renewed without a question");

    // 6. 12 hours later the MFA session has ended: the question again, with a fresh code
    // (a code is accepted once; the skip moved the clock, so the authenticator shows a new
    // one, which `stsh-demo skip` prints, and the demo shows it below the question).
    n = await prompts();
    await type("stsh-demo skip 12h");
    await t.waitFor(/^12h later: it is \d\d:\d\d in the sandbox/m);
    screen = await question("prod");
    assert.match(screen, /app now shows: \d{6}/, "skip printed the code the app shows now");
    // Below the question, its own line with the code (the second question, the second line).
    screen = await t.waitFor(HINT, { timeoutMs: 10_000, count: 2 });
    const fresh = [...screen.matchAll(HINT_G)].pop()?.[1];
    assert.ok(fresh, "the demo showed the code below the question");
    await t.send(fresh);
    await t.key("Enter");
    await t.waitFor(/MFA code for prod \(/);
    await t.waitFor(PROMPT_LINE, { count: n + 1 });
    assert.equal((await t.run("printenv STSH_PROFILE")).trim(), "prod");
    const key3 = (await t.run("printenv AWS_ACCESS_KEY_ID")).trim();
    assert.notEqual(key3, key2);
    await whoami("arn:aws:sts::222222222222:assumed-role/admin/stsh-");
    assert.equal(count(await t.screen(), /MFA code for/), 2);

    // 7. assume: pinned, from the cache, no question.
    await t.run("stsh status"); // no question: no code shown either
    await t.run("assume prod");
    assert.match(await t.run("assume"), /^prod \(assumed\): \d+m left/m);
    assert.equal(count(await t.screen(), /MFA code for/), 2);
    assert.equal(count(await t.screen(), /stsh-demo: your authenticator app shows/), 2);

    // 8. exit: the demo ends, the emulator stops, the sandbox goes.
    await t.send("exit");
    await t.key("Enter");
    await t.waitFor(/STS emulator stopped, sandbox deleted\./);
    await waitGone(demoPid);
    assert.equal(await exists(sandbox), false, "sandbox deleted");
    const port = Number(new URL(url).port);
    await assert.rejects(
      Deno.connect({ hostname: "127.0.0.1", port }).then((c) => c.close()),
      Deno.errors.ConnectionRefused,
    );
    for (const name of shared) {
      const file = name.includes("sem") ? `sem.${name.slice(1)}` : name.slice(1);
      assert.equal(await exists(join("/dev/shm", file)), false, `/dev/shm/${file} removed`);
    }
    assert.deepEqual(sandboxProcesses(sandbox), [], "no process of the sandbox is left");
  } catch (e) {
    console.error(`--- ${shell} screen ---\n${await t.screen().catch(() => "")}\n---`);
    throw e;
  } finally {
    await t.close();
    if (sandbox) await Deno.remove(sandbox, { recursive: true }).catch(() => {});
  }
  assert.deepEqual(problems, [], "the walk-through had rough edges");
}

Deno.test("demo: arguments, default shell, durations, the clock file", () => {
  assert.deepEqual(parseArgs(["--shell", "zsh"], {}), { shell: "zsh" });
  assert.deepEqual(parseArgs(["--shell=pwsh"], { SHELL: "/bin/zsh" }), { shell: "pwsh" });
  assert.deepEqual(parseArgs([], { SHELL: "/usr/bin/zsh" }), { shell: "zsh" });
  assert.throws(() => parseArgs(["--shell", "fish"], {}), /zsh, bash or pwsh, not 'fish'/);
  assert.throws(() => parseArgs(["--shell"], {}), /needs a value/);
  assert.throws(() => parseArgs(["--frobnicate"], {}), /unknown argument/);
  assert.equal(defaultShell("/opt/microsoft/powershell/7/pwsh"), "pwsh");
  assert.equal(defaultShell("/usr/bin/fish"), "bash");
  assert.equal(defaultShell(undefined), "bash");
  assert.equal(parseDuration("55m"), 3300);
  assert.equal(parseDuration("12h"), 43200);
  assert.equal(parseDuration("90s"), 90);
  assert.equal(parseDuration("1h30m"), 5400);
  assert.equal(parseDuration("2d"), 172800);
  assert.equal(parseDuration("600"), 600);
  assert.equal(parseDuration("soon"), null);
  assert.equal(parseDuration("-5m"), null);
  assert.equal(formatDuration(3300), "55m");
  assert.equal(formatDuration(46500), "12h55m");
  assert.equal(formatDuration(90), "1m30s");
  assert.equal(readOffset("+3300\n"), 3300);
  assert.equal(readOffset(""), 0);
  assert.equal(moreSeconds(1), "1 more second");
  assert.equal(moreSeconds(17), "17 more seconds");
  assert.equal(listAwsVariables("pwsh"), "Get-ChildItem Env:AWS_*");
  assert.equal(listAwsVariables("zsh"), "printenv | grep ^AWS_");
  // The banner: each shell's own commands, and no line wider than 80 columns.
  for (const shell of ["bash", "zsh", "pwsh"] as const) {
    for (const [faketime, aws] of [[true, true], [false, false]]) {
      const text = banner({
        shell,
        sandbox: "/tmp/stsh-demo-0123456789abcdef",
        url: "http://127.0.0.1:45678",
        faketime,
        aws,
        color: false,
      });
      const wide = text.split("\n").filter((l) => l.length > 80);
      assert.deepEqual(wide, [], `${shell}: lines over 80 columns`);
      assert.ok(text.includes(listAwsVariables(shell)));
      assert.equal(text.includes("printenv"), shell !== "pwsh", shell);
    }
  }
});

Deno.test({
  name: "stsh-demo: skip moves the clock file and the emulator together; whoami without a CLI",
  sanitizeResources: false,
  fn: async () => {
    const emu = await StsEmulator.start({ control: true, virtualClock: true });
    const dir = await Deno.makeTempDir({ prefix: "stsh-demo-unit-" });
    try {
      const user = emu.addUser({ name: "demo-user" });
      const clockFile = join(dir, "clock");
      await Deno.writeTextFile(clockFile, "+0\n");
      const state = join(dir, "demo.json");
      await Deno.writeTextFile(
        state,
        JSON.stringify({ url: emu.url, serial: user.mfaSerial, clockFile, aws: "" }),
      );
      const run = async (args: string[], env: Record<string, string> = {}) => {
        const out = await new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", join(ROOT, "demo", "stsh_demo.ts"), state, ...args],
          env,
          stdout: "piped",
          stderr: "piped",
        }).output();
        const dec = new TextDecoder();
        return { code: out.code, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
      };
      let r = await run(["skip", "1h30m"]);
      assert.equal(r.code, 0, r.text);
      assert.match(r.text, /^1h30m later: .*\(1h30m ahead of the real clock\)/m);
      assert.match(r.text, /now shows: \d{6}/);
      assert.equal(await Deno.readTextFile(clockFile), "+5400\n");
      assert.ok(Math.abs(emu.now() - Date.now() - 5400_000) < 2000);
      r = await run(["skip", "90s"]);
      assert.equal(await Deno.readTextFile(clockFile), "+5490\n");
      assert.ok(Math.abs(emu.now() - Date.now() - 5490_000) < 2000);
      r = await run(["skip", "soon"]);
      assert.equal(r.code, 1);
      assert.match(r.text, /say how long/);
      r = await run(["code"]);
      assert.equal(r.text.match(/app shows: (\d{6})/)?.[1], await emu.code(user));
      r = await run(["whoami"], { AWS_ACCESS_KEY_ID: "ASIAEXAMPLE" });
      assert.equal(r.code, 1);
      assert.match(r.text, /the AWS CLI is not installed.*`printenv \| grep \^AWS_`/s);
      await Deno.writeTextFile(
        state,
        JSON.stringify({ url: emu.url, serial: user.mfaSerial, clockFile, aws: "", shell: "pwsh" }),
      );
      r = await run(["whoami"], { AWS_ACCESS_KEY_ID: "ASIAEXAMPLE" });
      assert.match(r.text, /`Get-ChildItem Env:AWS_\*` shows what stsh set/);
      assert.doesNotMatch(r.text, /printenv/);
      r = await run(["whoami"], { AWS_ACCESS_KEY_ID: "" });
      assert.match(r.text, /No AWS credentials in this shell yet/);
      r = await run(["frob"]);
      assert.equal(r.code, 2);
    } finally {
      await emu.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

demoTest("bash");
demoTest("zsh");
demoTest("pwsh");

Deno.test({
  name: "demo: SIGINT to the demo, or the shell crashing, also stops everything and cleans up",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const realHome = await Deno.realPath(await Deno.makeTempDir({ prefix: "stsh-realhome-" }));
    try {
      for (
        const [how, status] of [["SIGINT to the demo", 130], ["SIGSEGV to the shell", 139]] as const
      ) {
        const t = await Pty.start({
          // The shell around it reports how the demo ended.
          cmd: [
            "/bin/sh",
            "-c",
            '"$0" task --quiet demo --shell bash; echo "demo exited with $?"',
            Deno.execPath(),
          ],
          cwd: ROOT,
          env: { PATH, HOME: realHome, DENO_DIR, TERM: "xterm-256color", LANG: "C.UTF-8" },
          timeoutMs: 20_000,
        });
        let sandbox = "";
        try {
          await t.waitFor(PROMPT.bash, { timeoutMs: 30_000 });
          sandbox = (await t.run("printenv STSH_DEMO_SANDBOX")).trim();
          const shared = (await t.run("printenv FAKETIME_SHARED")).trim();
          const url = (await t.run("printenv AWS_ENDPOINT_URL_STS")).trim();
          await t.run("sleep 300 & true"); // a job the shell leaves behind when it dies
          assert.equal(sandboxProcesses(sandbox).length >= 2, true);
          const pid = Number(
            await Deno.readTextFile(join(sandbox, how.includes("demo") ? "demo.pid" : "shell.pid")),
          );
          Deno.kill(pid, how.includes("demo") ? "SIGINT" : "SIGSEGV");
          await t.waitFor(/STS emulator stopped, sandbox deleted\./);
          await t.waitFor(`demo exited with ${status}`);
          assert.equal(await exists(sandbox), false, `${how}: sandbox deleted`);
          assert.deepEqual(sandboxProcesses(sandbox), [], `${how}: no process left`);
          await assert.rejects(
            Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(url).port) }),
            Deno.errors.ConnectionRefused,
          );
          const shm = /faketime_shm_\d+/.exec(shared)?.[0];
          assert.ok(shm && !(await exists(join("/dev/shm", shm))), `${how}: /dev/shm cleaned`);
        } catch (e) {
          console.error(`--- ${how} ---\n${await t.screen().catch(() => "")}\n---`);
          throw e;
        } finally {
          await t.close();
          if (sandbox) await Deno.remove(sandbox, { recursive: true }).catch(() => {});
        }
      }
      assert.deepEqual(await snapshot(realHome), {}, "nothing written to HOME");
    } finally {
      await Deno.remove(realHome, { recursive: true });
    }
  },
});
