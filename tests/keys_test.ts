/**
 * `stsh keys` and resolution from a secret store, end to end: the real stsh (bin/stsh), the
 * STS emulator, and a real gnome-keyring-daemon in a private D-Bus session — or the
 * encrypted file. The "Done when" list, one test each.
 */
import assert from "node:assert/strict";
import { Cache } from "../lib/cache.ts";
import { openStore, sessionItem } from "../lib/secrets.ts";
import { ROOT } from "./support/fixture.ts";
import { type Keyring, startKeyring } from "./support/keyring.ts";
import { Pty } from "./support/pty.ts";
import { assertNoSecrets, type World, world } from "./support/world.ts";

/** Every regular file under `dir` (the keyring's own files too), as text. */
async function filesUnder(dir: string): Promise<{ path: string; text: string }[]> {
  const out: { path: string; text: string }[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...await filesUnder(p));
    else if (e.isFile) {
      out.push({ path: p, text: new TextDecoder().decode(await Deno.readFile(p)) });
    }
  }
  return out;
}

async function assertNowhere(home: string, secrets: Record<string, string>) {
  const files = await filesUnder(home);
  assert.ok(files.length > 5, "the sandbox has files to look at");
  for (const f of files) {
    for (const [what, s] of Object.entries(secrets)) {
      assert.ok(!f.text.includes(s), `${f.path} holds ${what} in plaintext`);
    }
  }
}

/** The cached MFA session's file (a stub when a store holds it) and its cache key. */
async function mfaStub(w: World) {
  const entries = await new Cache(w.env).list();
  const e = entries.find((x) => x.kind === "mfa-session");
  assert.ok(e, "an MFA session is cached");
  return e;
}

async function withKeyring(
  fn: (w: World, kr: Keyring, env: Record<string, string>) => Promise<void>,
) {
  const w = await world();
  const kr = await startKeyring(w.sb.home);
  try {
    await fn(w, kr, kr.env);
  } finally {
    await kr.close();
    await w.close();
  }
}

Deno.test("keyring: after `keys import me` the file holds no secret, a then b cost one code, no plaintext under HOME", async () => {
  await withKeyring(async (w, _kr, env) => {
    const path = w.env.AWS_SHARED_CREDENTIALS_FILE;
    await Deno.chmod(path, 0o640);
    const before = await Deno.readTextFile(path);
    const imp = await w.run(["keys", "import", "me"], { env });
    assert.equal(imp.code, 0, imp.stderr);
    assert.match(imp.stderr, /moved the keys of 'me' \(AKIA…\w{4}\) into the Secret Service/);
    const after = await Deno.readTextFile(path);
    const expected = before
      .replace(`aws_access_key_id = ${w.alice.accessKeyId}\n`, "")
      .replace(`aws_secret_access_key = ${w.alice.secretAccessKey}\n`, "");
    assert.notEqual(expected, before);
    assert.equal(after, expected, "only the two lines went; [me] and [robot] byte-identical");
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o640, "mode kept");
    assertNoSecrets(imp.stdout + imp.stderr, w.alice.secretAccessKey);

    const list = await w.run(["keys", "list"], { env });
    assert.match(list.stdout, /^me\s+AKIA…\w{4}\s+secret-service\s/m);
    assert.match(list.stdout, /^robot\s+AKIA…\w{4}\s+plaintext/m);
    assert.ok(!list.stdout.includes(w.alice.accessKeyId), "key id masked");

    await w.primeCode();
    const a = await w.run(["env", "a"], { env });
    assert.equal(a.code, 0, a.stderr);
    const b = await w.run(["env", "b"], { env });
    assert.equal(b.code, 0, b.stderr);
    assert.equal(await w.codeRequests(), 1, "one code for a and b");
    assert.equal(w.emu.counts.GetSessionToken, 1);
    assert.equal(w.emu.counts.AssumeRole, 2);
    // The STS calls were signed with alice's keys: the store gave the real secret.
    const gst = w.emu.calls.find((c) => c.action === "GetSessionToken");
    assert.equal(gst?.accessKeyId, w.alice.accessKeyId);

    // The MFA session's file is a stub; its secret is in the keyring.
    const stub = await mfaStub(w);
    assert.equal(stub.stored, "secret-service");
    assert.equal(stub.secretAccessKey, "");
    assert.equal(stub.sessionToken, "");
    const store = await openStore("secret-service", {
      env: { ...w.env, ...env },
      interactive: false,
    });
    const mfa = JSON.parse((await store.get(sessionItem(stub.key)))!);
    assert.match(mfa.sessionToken, /\w{20}/);
    await assertNowhere(w.sb.home, {
      "the long-term secret": w.alice.secretAccessKey,
      "the MFA session's secret key": mfa.secretAccessKey,
      "the MFA session's token": mfa.sessionToken,
    });

    const st = await w.run(["status"], { env });
    assert.match(st.stdout, /^me\s+mfa-session \(secret-service\)/m);
    const pr = await w.run(["profiles"], { env });
    assert.match(pr.stdout, /^me\s.*\ssecret-service\s/m);
    assert.match(pr.stdout, /^a\s.*\ssecret-service\s/m);
    assert.match(pr.stdout, /^robot\s.*\splaintext\s/m);
  });
});

Deno.test("keyring: the warm path never asks the store; a role renewal reads the MFA session from it", async () => {
  await withKeyring(async (w, kr, env) => {
    assert.equal((await w.run(["keys", "import", "me"], { env })).code, 0);
    await w.primeCode();
    const first = await w.run(["env", "a"], { env });
    assert.equal(first.code, 0, first.stderr);
    // With the keyring locked and the bus gone, a cache hit still answers.
    await kr.lock();
    const nobus = { DBUS_SESSION_BUS_ADDRESS: `unix:path=${w.sb.home}/no-bus` };
    const warm = await w.run(["env", "a"], { env: nobus });
    assert.equal(warm.code, 0, warm.stderr);
    assert.equal(warm.stdout, first.stdout);
    // A new role (b) needs the MFA session from the locked keyring: one clear line, no code.
    const b = await w.run(["env", "b"], { env });
    assert.equal(b.code, 1);
    assert.match(b.stderr, /^stsh: the Secret Service is locked.*\n {2}Unlock it/);
    assert.equal(b.stderr.trim().split("\n").length, 2, b.stderr);
    assert.equal(await w.codeRequests(), 1);
  });
});

Deno.test("keyring: eight concurrent resolves with the keyring active make one GetSessionToken", async () => {
  await withKeyring(async (w, _kr, env) => {
    assert.equal((await w.run(["keys", "import", "me"], { env })).code, 0);
    await w.primeCode();
    const runs = await Promise.all(Array.from({ length: 8 }, () => w.run(["env", "a"], { env })));
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    assert.equal(new Set(runs.map((r) => r.stdout)).size, 1);
    assert.equal(w.emu.counts.GetSessionToken, 1);
    assert.equal(w.emu.counts.AssumeRole, 1);
    assert.equal(await w.codeRequests(), 1);
  });
});

Deno.test("keyring: items deleted behind stsh's back are said plainly", async () => {
  await withKeyring(async (w, _kr, env) => {
    assert.equal((await w.run(["keys", "import", "me"], { env })).code, 0);
    await w.primeCode();
    assert.equal((await w.run(["env", "me"], { env })).code, 0);
    const store = await openStore("secret-service", {
      env: { ...w.env, ...env },
      interactive: false,
    });
    // The MFA session gone: a new one, for one new code (said on stderr).
    const stub = await mfaStub(w);
    assert.ok(await store.delete(sessionItem(stub.key)));
    await w.primeCode(1);
    const again = await w.run(["env", "me"], { env });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /could not be read back from the secret-service store/);
    assert.equal(w.emu.counts.GetSessionToken, 2);
    // The keys gone: one line naming the fix.
    assert.ok(await store.delete("keys:me"));
    assert.equal((await w.run(["clear", "--all"], { env })).code, 0);
    const r = await w.run(["env", "a"], { env });
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^stsh: The keys of profile 'me' are no longer in the Secret Service.*\n {2}Store them again: stsh keys add me\n$/,
    );
    const v = await w.run(["keys", "list", "--verify"], { env });
    assert.match(v.stdout, /^me\s.*MISSING$/m);
  });
});

Deno.test("keys: add --env checks shapes first; export is the way back, byte for byte", async () => {
  await withKeyring(async (w, _kr, kenv) => {
    const asia = await w.run(["keys", "add", "ci", "--env"], {
      env: {
        ...kenv,
        AWS_ACCESS_KEY_ID: "ASIAIOSFODNN7EXAMPLE",
        AWS_SECRET_ACCESS_KEY: w.plain.secretAccessKey,
      },
    });
    assert.equal(asia.code, 2);
    assert.match(asia.stderr, /temporary credentials/);
    const short = await w.run(["keys", "add", "ci", "--env"], {
      env: { ...kenv, AWS_ACCESS_KEY_ID: w.plain.accessKeyId, AWS_SECRET_ACCESS_KEY: "short" },
    });
    assert.equal(short.code, 2);
    assert.match(short.stderr, /not a secret access key/);
    assert.match(
      (await w.run(["keys", "list"], { env: kenv })).stdout,
      /^robot/m,
      "nothing stored",
    );

    // A profile that exists only in the keyring: GetSessionToken with robot's keys.
    const keys = {
      AWS_ACCESS_KEY_ID: w.plain.accessKeyId,
      AWS_SECRET_ACCESS_KEY: w.plain.secretAccessKey,
    };
    const add = await w.run(["keys", "add", "ci", "--env"], { env: { ...kenv, ...keys } });
    assert.equal(add.code, 0, add.stderr);
    const ci = await w.run(["env", "ci", "--format", "json"], { env: kenv });
    assert.equal(ci.code, 0, ci.stderr);
    assert.match(JSON.parse(ci.stdout).AccessKeyId, /^ASIA/);
    const dup = await w.run(["keys", "add", "me", "--env"], { env: { ...kenv, ...keys } });
    assert.equal(dup.code, 2);
    assert.match(dup.stderr, /has keys in .*credentials, and those would win/);

    // import, then export: the credentials file is exactly what it was.
    const path = w.env.AWS_SHARED_CREDENTIALS_FILE;
    const original = await Deno.readTextFile(path);
    assert.equal((await w.run(["keys", "import", "me"], { env: kenv })).code, 0);
    assert.ok(!(await Deno.readTextFile(path)).includes(w.alice.secretAccessKey));
    const back = await w.run(["keys", "export", "me"], { env: kenv });
    assert.equal(back.code, 0, back.stderr);
    assert.equal(await Deno.readTextFile(path), original);
    assert.match(
      (await w.run(["keys", "list"], { env: kenv })).stdout,
      /^me\s+AKIA…\w{4}\s+plaintext/m,
    );
    const store = await openStore("secret-service", {
      env: { ...w.env, ...kenv },
      interactive: false,
    });
    assert.equal(await store.get("keys:me"), null, "gone from the keyring");
    const rm = await w.run(["keys", "rm", "ci"], { env: kenv });
    assert.equal(rm.code, 0, rm.stderr);
    assert.deepEqual(await store.list(), []);
  });
});

Deno.test("encrypted file: same flow, one code, no plaintext; a wrong passphrase is one clear line", async () => {
  const w = await world();
  try {
    const env = { STSH_KEYRING: "file", STSH_KEYRING_PASSPHRASE: "correct horse battery" };
    const imp = await w.run(["keys", "import", "me"], { env });
    assert.equal(imp.code, 0, imp.stderr);
    assert.match(imp.stderr, /into the encrypted file .*keyring\.json/);
    await w.primeCode();
    assert.equal((await w.run(["env", "a"], { env })).code, 0);
    assert.equal((await w.run(["env", "b"], { env })).code, 0);
    assert.equal(await w.codeRequests(), 1);
    assert.equal(w.emu.counts.GetSessionToken, 1);
    const stub = await mfaStub(w);
    assert.equal(stub.stored, "file");
    const store = await openStore("file", { env: { ...w.env, ...env }, interactive: false });
    const mfa = JSON.parse((await store.get(sessionItem(stub.key)))!);
    await assertNowhere(w.sb.home, {
      "the long-term secret": w.alice.secretAccessKey,
      "the MFA session's secret key": mfa.secretAccessKey,
      "the MFA session's token": mfa.sessionToken,
    });
    const file = `${w.env.STSH_HOME}/keyring.json`;
    assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);

    // A new role session needs the MFA session from the file, and so the passphrase.
    assert.equal((await w.run(["clear", "a"], { env })).code, 0);
    const wrong = await w.run(["env", "a"], { env: { ...env, STSH_KEYRING_PASSPHRASE: "nope" } });
    assert.equal(wrong.code, 1);
    assert.match(
      wrong.stderr,
      /^stsh: STSH_KEYRING_PASSPHRASE does not open the encrypted keyring .*keyring\.json/,
    );
    assert.equal(wrong.stderr.trim().split("\n").length, 2, wrong.stderr);
    assert.equal(await w.codeRequests(), 1);
  } finally {
    await w.close();
  }
});

Deno.test("no keyring: one line within seconds, nothing changed; auto keeps MFA sessions in files", async () => {
  const w = await world();
  try {
    const path = w.env.AWS_SHARED_CREDENTIALS_FILE;
    const before = await Deno.readTextFile(path);
    // No session bus at all (the sandbox has none).
    const t0 = Date.now();
    const r = await w.run(["keys", "import", "me"]);
    assert.ok(Date.now() - t0 < 20_000);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^stsh: No keyring here: there is no D-Bus session bus/);
    assert.match(r.stderr, /\n {2}Set STSH_KEYRING=file/);
    assert.equal(r.stderr.trim().split("\n").length, 2);
    assert.equal(await Deno.readTextFile(path), before);

    // A bus with no Secret Service on it.
    const bare = await startKeyring(w.sb.home, { provider: false });
    try {
      const r2 = await w.run(["keys", "import", "me"], { env: bare.env });
      assert.equal(r2.code, 1);
      assert.match(r2.stderr, /^stsh: the Secret Service is not on the D-Bus session bus/);
      assert.equal(await Deno.readTextFile(path), before);
      // `auto` resolves as before, the MFA session in a 0600 file.
      await w.primeCode();
      const a = await w.run(["env", "a"], { env: bare.env });
      assert.equal(a.code, 0, a.stderr);
      assert.equal((await mfaStub(w)).stored, undefined);
    } finally {
      await bare.close();
    }
  } finally {
    await w.close();
  }
});

Deno.test("keys add on a terminal: the secret is not echoed", async () => {
  await withKeyring(async (w, _kr, env) => {
    const t = await Pty.start({
      cmd: ["bash", "--norc", "--noprofile", "-i"],
      env: { ...w.env, ...env, PS1: "P> ", TERM: "xterm-256color" },
      prompt: /^P>$/,
      timeoutMs: 30_000,
    });
    try {
      await t.waitFor("P> ");
      await t.send(`${ROOT}/bin/stsh keys add ci`);
      await t.key("Enter");
      await t.waitFor("access key id for 'ci': ");
      await t.send(w.plain.accessKeyId);
      await t.key("Enter");
      await t.waitFor("secret access key (not shown): ");
      await t.send(w.plain.secretAccessKey);
      await t.key("Enter");
      await t.waitFor(/are in the Secret Service\.$/m);
      const screen = await t.screen();
      assert.ok(screen.includes(w.plain.accessKeyId), "the key id is shown as typed");
      assert.ok(!screen.includes(w.plain.secretAccessKey), "the secret is not");
      // Echo is back on for what comes next.
      const out = await t.run("echo visible-again");
      assert.match(out, /visible-again/);
      assert.match(await t.screen(), /P> echo visible-again/);
    } finally {
      await t.close();
    }
    const store = await openStore("secret-service", {
      env: { ...w.env, ...env },
      interactive: false,
    });
    assert.equal(
      JSON.parse((await store.get("keys:ci"))!).secretAccessKey,
      w.plain.secretAccessKey,
    );
  });
});

Deno.test("encrypted file on a terminal: passphrase asked twice when new, unseen, re-asked when wrong; Ctrl-C leaves echo on", async () => {
  const w = await world();
  const t = await Pty.start({
    cmd: ["bash", "--norc", "--noprofile", "-i"],
    env: { ...w.env, STSH_KEYRING: "file", PS1: "P> ", TERM: "xterm-256color" },
    prompt: /^P>$/,
    timeoutMs: 30_000,
  });
  const pass = "correct horse battery";
  try {
    await t.waitFor("P> ");
    // Ctrl-C at the secret question: cancelled, and the terminal echoes again.
    await t.send(`${ROOT}/bin/stsh keys add ci`);
    await t.key("Enter");
    await t.waitFor("access key id for 'ci': ");
    await t.send(w.plain.accessKeyId);
    await t.key("Enter");
    await t.waitFor("secret access key (not shown): ");
    await t.send("half-typed");
    await t.key("C-c");
    await t.waitFor(/^stsh: Cancelled\.$/m);
    await t.waitFor(/^P>$/m);
    const modes = await t.run("echo $?; stty -a </dev/tty");
    assert.match(modes, /^130$/m);
    assert.match(modes, /(^|\s)echo(\s|$)/m, "echo is on");

    await t.send(`${ROOT}/bin/stsh keys add ci`);
    await t.key("Enter");
    await t.waitFor("access key id for 'ci': ", { count: 2 });
    await t.send(w.plain.accessKeyId);
    await t.key("Enter");
    await t.waitFor("secret access key (not shown): ", { count: 2 });
    await t.send(w.plain.secretAccessKey);
    await t.key("Enter");
    await t.waitFor("a passphrase for a new encrypted keyring");
    await t.send(pass);
    await t.key("Enter");
    await t.waitFor("the same passphrase again: ");
    await t.send(pass);
    await t.key("Enter");
    await t.waitFor(/are in the encrypted file .*keyring\.json\.$/m);

    // Resolving needs the keys: the passphrase is asked; a wrong one is asked again.
    await t.send(
      `${ROOT}/bin/stsh env ci --format json > ${w.sb.path("out.json")}; echo "env-done-$?"`,
    );
    await t.key("Enter");
    await t.waitFor("passphrase of the encrypted keyring");
    await t.send("not it");
    await t.key("Enter");
    await t.waitFor("That passphrase does not open it.");
    await t.waitFor("(again): "); // the question again, asked once echo is off
    await t.send(pass);
    await t.key("Enter");
    await t.waitFor(/^env-done-0$/m);
    const screen = await t.screen();
    for (const s of [pass, "not it", w.plain.secretAccessKey, "half-typed"]) {
      assert.ok(!screen.includes(s), `the screen shows ${s}:\n${screen}`);
    }
  } finally {
    await t.close();
  }
  try {
    const j = JSON.parse(await Deno.readTextFile(w.sb.path("out.json")));
    assert.match(j.AccessKeyId, /^ASIA/);
    // Without a terminal or STSH_KEYRING_PASSPHRASE: exit 3, as for an MFA code.
    assert.equal((await w.run(["clear", "--all"], { env: { STSH_KEYRING: "none" } })).code, 0);
    const r = await w.run(["env", "ci"], { env: { STSH_KEYRING: "file" } });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /^stsh: The passphrase of the encrypted keyring .* is needed\./);
    // The hook without --prompt: 4, "ask again with --prompt", as for an MFA code.
    const dir = w.sb.path("proj");
    await Deno.mkdir(dir);
    assert.equal((await w.run(["tag", "ci", dir])).code, 0);
    const h = await w.run(["hook", "bash"], { env: { STSH_KEYRING: "file" }, cwd: dir });
    assert.equal(h.code, 4, h.stderr);
  } finally {
    await w.close();
  }
});
