/**
 * Helpers stsh runs — mfa_process, credential_process — end within their limit and leave no
 * process behind; what credential_process prints is checked before it is used.
 */
import assert from "node:assert/strict";
import { scenario, type World } from "./support/world.ts";

const alive = (pid: number) => Deno.stat(`/proc/${pid}`).then(() => true, () => false);

/** A helper that starts a grandchild (writing its pid to `pidFile`) and then hangs. */
const hanging = (pidFile: string) => `sleep 300 & echo $! > ${pidFile}; wait`;

async function grandchild(pidFile: string): Promise<number> {
  const pid = Number((await Deno.readTextFile(pidFile)).trim());
  assert.ok(pid > 0);
  return pid;
}

/** The process is gone: killed with its group, not left running after stsh. */
async function gone(pid: number) {
  for (let i = 0; i < 50 && await alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(await alive(pid), false, `process ${pid} was left running`);
}

async function setConfig(w: World, from: RegExp, to: string) {
  const text = await Deno.readTextFile(w.env.AWS_CONFIG_FILE);
  assert.match(text, from);
  await Deno.writeTextFile(w.env.AWS_CONFIG_FILE, text.replace(from, to));
}

scenario("a hanging mfa_process ends at STSH_HELPER_TIMEOUT and leaves no process", async (w) => {
  const pidFile = w.sb.path("grandchild.pid");
  await setConfig(w, /^mfa_process = .*$/m, `mfa_process = ${hanging(pidFile)}`);
  const r = await w.run(["env", "a"], { env: { STSH_HELPER_TIMEOUT: "2" } });
  assert.equal(r.code, 1);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /mfa_process of profile 'a' did not finish within 2 s; stopped it\./);
  assert.match(r.stderr, /STSH_HELPER_TIMEOUT sets the limit/);
  await gone(await grandchild(pidFile));
  assert.equal(w.emu.calls.length, 0);
});

scenario(
  "an mfa_process that leaves a process outside its group holding its output: stsh does not wait for it",
  async (w) => {
    const pidFile = w.sb.path("escaped.pid");
    // Its stdout is the helper's output pipe; its stderr (stsh's, which this test reads) is not held.
    const escape = `setsid sleep 300 2>/dev/null & echo $! > ${pidFile}`;
    try {
      // It answers, then exits; what it left behind keeps the pipe open.
      await w.primeCode();
      await setConfig(w, /^mfa_process = .*$/m, `mfa_process = cat ${w.codeFile}; ${escape}`);
      const t0 = Date.now();
      const ok = await w.run(["env", "a"], { env: { STSH_HELPER_TIMEOUT: "20" } });
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /AWS_ACCESS_KEY_ID=/);
      assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`);
      Deno.kill(await grandchild(pidFile), "SIGKILL");

      // It hangs: the limit ends the wait, though the escaped process still holds the pipe.
      await w.run(["clear", "--all"]);
      await setConfig(w, /^mfa_process = .*$/m, `mfa_process = ${escape}; sleep 300`);
      const t1 = Date.now();
      const r = await w.run(["env", "a"], { env: { STSH_HELPER_TIMEOUT: "1" } });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /did not finish within 1 s; stopped it\./);
      assert.ok(Date.now() - t1 < 10_000, `took ${Date.now() - t1} ms`);
    } finally {
      const pid = await Deno.readTextFile(pidFile).then((t) => Number(t.trim()), () => 0);
      if (pid > 0) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
    }
  },
);

scenario("Ctrl-C while mfa_process runs: exit 130, and the helper goes too", async (w) => {
  const pidFile = w.sb.path("grandchild.pid");
  await setConfig(w, /^mfa_process = .*$/m, `mfa_process = ${hanging(pidFile)}`);
  const { STSH } = await import("./support/fixture.ts");
  const child = new Deno.Command(STSH, {
    args: ["env", "a"],
    env: w.env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  for (let i = 0; i < 300; i++) {
    if (await Deno.stat(pidFile).then(() => true, () => false)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const pid = await grandchild(pidFile);
  Deno.kill(child.pid, "SIGINT");
  const out = await child.output();
  assert.equal(out.code, 130, new TextDecoder().decode(out.stderr));
  await gone(pid);
});

scenario("a hanging credential_process ends at its limit and leaves no process", async (w) => {
  const pidFile = w.sb.path("grandchild.pid");
  await Deno.writeTextFile(
    w.env.AWS_CONFIG_FILE,
    `\n[profile proc]\ncredential_process = ${hanging(pidFile)}\n` +
      `[profile viaproc]\nrole_arn = ${w.roles.open.arn}\nsource_profile = proc\n`,
    { append: true },
  );
  const r = await w.run(["env", "viaproc"], { env: { STSH_HELPER_TIMEOUT: "2" } });
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /credential_process of profile 'proc' did not finish within 2 s; stopped it\./,
  );
  await gone(await grandchild(pidFile));
  assert.equal(w.emu.calls.length, 0);
});

scenario("what credential_process prints is checked before it is used", async (w) => {
  const script = w.sb.path("cp.sh");
  await Deno.writeTextFile(script, 'cat "$HOME/cp.out"\n');
  await Deno.writeTextFile(
    w.env.AWS_CONFIG_FILE,
    `\n[profile proc]\ncredential_process = sh ${script}\n`,
    { append: true },
  );
  const good = {
    Version: 1,
    AccessKeyId: w.plain.accessKeyId,
    SecretAccessKey: w.plain.secretAccessKey,
    SessionToken: "FwoGZXIvYXdzEXAMPLE",
    Expiration: new Date(Date.now() + 3600_000).toISOString(),
  };
  const cases: [unknown, RegExp][] = [
    ["not json", /credential_process of profile 'proc' did not print a JSON object\./],
    [[1, 2], /did not print a JSON object/],
    [{ ...good, Version: 2 }, /printed Version 2; only 1 is known\./],
    [{ ...good, AccessKeyId: undefined }, /printed no AccessKeyId\./],
    [{ ...good, SessionToken: 5 }, /printed a SessionToken that is not a string\./],
    [{ ...good, Expiration: "soon" }, /printed an Expiration that is not a date\./],
    [{ ...good, Expiration: "2001-01-01T00:00:00Z" }, /printed credentials that expired at/],
    [{ ...good, SessionToken: "x'; rm -rf ~; '" }, /contain unexpected characters/],
    [
      { ...good, SessionToken: "A".repeat(40_000) },
      /the session token is 40000 bytes; stsh refuses values over 32768 bytes/,
    ],
  ];
  for (const [printed, expected] of cases) {
    await Deno.writeTextFile(
      w.sb.path("cp.out"),
      typeof printed === "string" ? printed : JSON.stringify(printed),
    );
    const r = await w.run(["env", "proc"]);
    assert.equal(r.code, 1, `${JSON.stringify(printed).slice(0, 80)}: ${r.stderr}`);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, expected);
    assert.ok(!r.stderr.includes(w.plain.secretAccessKey), "no secret printed");
  }
  await Deno.writeTextFile(w.sb.path("cp.out"), JSON.stringify(good));
  const ok = await w.run(["env", "proc", "--format", "json"]);
  assert.equal(ok.code, 0, ok.stderr);
  const j = JSON.parse(ok.stdout);
  assert.equal(j.SessionToken, good.SessionToken);
  assert.equal(j.Expiration, good.Expiration.replace(/\.\d{3}Z$/, "Z"));
});

scenario(
  "a web identity token file that is a FIFO is refused, never read by the SDK",
  async (w) => {
    const fifo = w.sb.path("token");
    await new Deno.Command("mkfifo", { args: [fifo] }).output();
    await Deno.writeTextFile(
      w.env.AWS_CONFIG_FILE,
      `\n[profile wi]\nrole_arn = ${w.roles.open.arn}\nweb_identity_token_file = ${fifo}\n`,
      { append: true },
    );
    const r = await w.run(["env", "wi"], { env: { STSH_HELPER_TIMEOUT: "60" } });
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^stsh: The web_identity_token_file of profile 'wi': .*token is not a regular file\.\n$/,
    );
    const list = await w.run(["profiles"]);
    assert.match(list.stdout, /^wi +role \(web_identity\)/m);
  },
);
