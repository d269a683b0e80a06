/**
 * `stsh hook SHELL`, the binary's half of shell/PROTOCOL.md, through the real stsh against
 * the STS emulator: statuses, change sets, restore, pinning, and the warm-cache path.
 */
import assert from "node:assert/strict";
import { parseExports, stsh } from "./support/fixture.ts";
import { assertNoSecrets, type World, world } from "./support/world.ts";

/** Apply a change set to an environment, as `eval` would. */
function apply(env: Record<string, string>, changes: Record<string, string | null>) {
  const out = { ...env };
  for (const [k, v] of Object.entries(changes)) v === null ? delete out[k] : (out[k] = v);
  return out;
}

async function hook(_w: World, env: Record<string, string>, cwd: string, ...flags: string[]) {
  // Exactly `env`: a variable the change set unset must really be absent in the next run.
  const r = await stsh(["hook", "bash", ...flags], { env, cwd });
  return { ...r, changes: parseExports(r.stdout) };
}

async function tagged(w: World, profile: string, dir: string, trust = true) {
  await Deno.mkdir(w.sb.path(dir), { recursive: true });
  if (trust) assert.equal((await w.run(["tag", profile, w.sb.path(dir)])).code, 0);
  else await w.sb.write(`${dir}/.aws-profile`, profile + "\n", 0o644);
  return w.sb.path(dir);
}

Deno.test("hook: enter, stay, switch, leave — statuses and change sets", async () => {
  const w = await world({ mfaProcess: false });
  try {
    const a = await tagged(w, "a", "work/a");
    const b = await tagged(w, "b", "work/a/nested-b");
    const home = w.sb.home;
    let env: Record<string, string> = {
      ...w.env,
      AWS_PROFILE: "mine",
      AWS_ACCESS_KEY_ID: "AKIAUSERSOWNKEY00000",
    };

    const none = await hook(w, env, home);
    assert.equal(none.code, 0);
    assert.deepEqual(none.changes, {});

    // No code source and no --prompt: status 4, nothing set.
    const need = await hook(w, env, a);
    assert.equal(need.code, 4);
    assert.deepEqual(need.changes, {});
    // --prompt but no terminal: status 3, never a hang.
    assert.equal((await hook(w, env, a, "--prompt")).code, 3);

    // Give the code through the config's mfa_process, as a person's 1Password would.
    await Deno.writeTextFile(
      w.env.AWS_CONFIG_FILE,
      (await Deno.readTextFile(w.env.AWS_CONFIG_FILE)).replace(
        "[profile a]",
        `[profile a]\nmfa_process = cat ${w.codeFile}`,
      ),
    );
    await w.primeCode();
    const on = await hook(w, env, a);
    assert.equal(on.code, 0, on.stderr);
    assert.match(on.changes.AWS_ACCESS_KEY_ID!, /^ASIA/);
    assert.equal(on.changes.AWS_PROFILE, null);
    assert.equal(on.changes.STSH_PROFILE, "a");
    assert.equal(on.changes.STSH_ROOT, a);
    assert.ok(Number(on.changes.STSH_EXPIRES) > Date.now() / 1000 + 3000);
    env = apply(env, on.changes);

    // Unchanged: nothing to do.
    const stay = await hook(w, env, a);
    assert.equal(stay.code, 0);
    assert.deepEqual(stay.changes, {});

    // A nested tag for another role that shares the source: switches, no new code.
    const sw = await hook(w, env, b);
    assert.equal(sw.code, 0, sw.stderr);
    assert.equal(sw.changes.STSH_PROFILE, "b");
    assert.notEqual(sw.changes.AWS_ACCESS_KEY_ID, env.AWS_ACCESS_KEY_ID);
    assert.equal(w.emu.counts.GetSessionToken, 1);
    env = apply(env, sw.changes);

    // Leaving restores exactly what was there before.
    const off = await hook(w, env, home);
    assert.equal(off.code, 0);
    env = apply(env, off.changes);
    assert.equal(env.AWS_PROFILE, "mine");
    assert.equal(env.AWS_ACCESS_KEY_ID, "AKIAUSERSOWNKEY00000");
    for (const k of ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "STSH_PROFILE", "STSH_PREV"]) {
      assert.equal(env[k], undefined, k);
    }
  } finally {
    await w.close();
  }
});

Deno.test("hook: untrusted, denied and hostile tags: status 2, no credentials, no code asked", async () => {
  const w = await world();
  try {
    await w.primeCode();
    const dir = await tagged(w, "a", "untrusted", false);
    const r = await hook(w, w.env, dir);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /asks for 'a': run `stsh allow` to trust it/);
    assert.deepEqual(r.changes, {});
    assert.equal((await hook(w, w.env, dir, "--quiet")).stderr, "");
    assert.equal(await w.codeRequests(), 0);
    assert.equal((await w.run(["allow"], { cwd: dir })).code, 0);
    assert.equal((await hook(w, w.env, dir)).code, 0);
    // An edit needs a new allow.
    await Deno.writeTextFile(`${dir}/.aws-profile`, "b\n");
    assert.equal((await hook(w, w.env, dir)).code, 2);
    assert.equal((await w.run(["deny"], { cwd: dir })).code, 0);
    assert.match((await hook(w, w.env, dir)).stderr, /is denied/);
    // A valid name that is not a profile in the config: refused, with the reason.
    const ghost = await tagged(w, "ghost", "ghost", false);
    const allowed = await w.run(["allow"], { cwd: ghost });
    assert.match(allowed.stderr, /warning: 'ghost' is not in .*config \(yet\)/);
    const g = await hook(w, w.env, ghost);
    assert.equal(g.code, 2);
    assert.match(
      g.stderr,
      /profile 'ghost' is not in your AWS config; nothing set\. Known profiles: .*\ba\b/,
    );
    // A tag owned by someone else is never read as trusted, whatever the trust store says.
    if (Deno.uid() === 0) {
      const other = await tagged(w, "a", "other");
      await Deno.chown(`${other}/.aws-profile`, 65534, 65534);
      const o = await hook(w, w.env, other);
      assert.equal(o.code, 2);
      assert.match(o.stderr, /belongs to another user; ignored/);
    }
    const evil = await tagged(w, "$(touch PWNED)", "evil", false);
    const e = await hook(w, w.env, evil);
    assert.equal(e.code, 2);
    assert.match(e.stderr, /does not hold one profile name/);
    assert.equal((await w.run(["allow"], { cwd: evil })).code, 2);
  } finally {
    await w.close();
  }
});

Deno.test("hook: a warm cache skips the config parser, but an edited config is read again", async () => {
  const w = await world();
  try {
    await w.primeCode();
    const dir = await tagged(w, "a", "proj");
    const first = await hook(w, w.env, dir);
    assert.equal(first.code, 0, first.stderr);
    const warm = await w.run(["hook", "bash", "--debug"], { env: w.env, cwd: dir });
    assert.match(warm.stderr, /cache hit without parsing the config: a/);
    assertNoSecrets(
      warm.stderr,
      first.changes.AWS_SECRET_ACCESS_KEY!,
      first.changes.AWS_SESSION_TOKEN!,
    );
    assert.equal(parseExports(warm.stdout).AWS_ACCESS_KEY_ID, first.changes.AWS_ACCESS_KEY_ID);
    // Point profile a at role b: the next hook must see it, not the remembered session.
    const cfg = await Deno.readTextFile(w.env.AWS_CONFIG_FILE);
    await Deno.writeTextFile(
      w.env.AWS_CONFIG_FILE,
      cfg.replace(
        `role_arn = ${w.roles.a.arn}\nsource_profile = me`,
        `role_arn = ${w.roles.b.arn}\nsource_profile = me`,
      ),
    );
    const after = await w.run(["hook", "bash", "--debug"], { env: w.env, cwd: dir });
    assert.doesNotMatch(after.stderr, /without parsing/);
    const exp = await w.run(["env", "a", "--format", "json"]);
    assert.match(JSON.parse(exp.stdout).Arn, /assumed-role\/b\//);
  } finally {
    await w.close();
  }
});

Deno.test("hook: assume pins over tags; unassume restores", async () => {
  const w = await world();
  try {
    await w.primeCode();
    const dir = await tagged(w, "b", "proj");
    let env: Record<string, string> = { ...w.env, AWS_REGION: "eu-north-1" };
    const pin = await hook(w, env, w.sb.home, "--assume", "a", "--prompt");
    assert.equal(pin.code, 0, pin.stderr);
    assert.equal(pin.changes.STSH_PINNED, "1");
    assert.equal(pin.changes.STSH_ROOT, "");
    env = apply(env, pin.changes);
    const inTag = await hook(w, env, dir);
    assert.deepEqual(inTag.changes, {}, "the pinned profile stays in a tagged directory");
    const cur = await w.run(["current"], { env });
    assert.match(cur.stdout, /^a \(assumed\): (59|60)m left, until \d\d:\d\d$/m);
    const off = await hook(w, env, dir, "--unassume");
    env = apply(env, off.changes);
    assert.equal(env.STSH_PROFILE, undefined);
    assert.equal(env.AWS_REGION, "eu-north-1");
    assert.equal(env.AWS_ACCESS_KEY_ID, undefined);
    assert.equal((await hook(w, env, dir, "--assume", "bad name")).code, 2);
  } finally {
    await w.close();
  }
});

Deno.test("hook: a tag above a symlinked directory is found the way the shell walks ($PWD)", async () => {
  const w = await world();
  try {
    await w.primeCode();
    const dir = await tagged(w, "a", "logical");
    await Deno.mkdir(w.sb.path("elsewhere/real"), { recursive: true });
    await Deno.symlink(w.sb.path("elsewhere/real"), `${dir}/link`);
    const logical = `${dir}/link`;
    // The process's physical cwd is elsewhere/real (no tag above it); $PWD says logical/link.
    const r = await stsh(["hook", "bash"], { env: { ...w.env, PWD: logical }, cwd: logical });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(parseExports(r.stdout).STSH_PROFILE, "a");
    // A stale $PWD that is not the working directory is ignored.
    const stale = await stsh(["hook", "bash"], {
      env: { ...w.env, PWD: dir },
      cwd: w.sb.path("elsewhere/real"),
    });
    assert.equal(stale.stdout, "");
  } finally {
    await w.close();
  }
});

Deno.test('hook: credentials from `eval "$(stsh env …)"` are the user\'s own: kept, saved, restored', async () => {
  const w = await world();
  try {
    await w.primeCode();
    const dir = await tagged(w, "a", "proj");
    // What `eval "$(stsh env b)"` leaves in a shell: b's keys, STSH_PROFILE and STSH_EXPIRES.
    const set = await w.run(["env", "b"]);
    assert.equal(set.code, 0, set.stderr);
    const fromEnv = parseExports(set.stdout);
    assert.equal(fromEnv.STSH_PROFILE, "b");
    assert.ok(Number(fromEnv.STSH_EXPIRES) > Date.now() / 1000);
    let env = apply(w.env, fromEnv);
    assert.match((await w.run(["current"], { env })).stdout, /^b \(set by `stsh env`\): /);

    // The hook does not take them away where there is no tag…
    const none = await hook(w, env, w.sb.home);
    assert.equal(none.code, 0);
    assert.deepEqual(none.changes, {});
    // …replaces them in a tagged tree, and puts them back, STSH_PROFILE included, on leaving.
    await w.primeCode(1);
    const on = await hook(w, env, dir);
    assert.equal(on.code, 0, on.stderr);
    env = apply(env, on.changes);
    assert.equal(env.STSH_PROFILE, "a");
    const off = await hook(w, env, w.sb.home);
    env = apply(env, off.changes);
    for (
      const k of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "STSH_PROFILE", "STSH_EXPIRES"]
    ) {
      assert.equal(env[k], fromEnv[k] ?? undefined, k);
    }
    assert.equal(env.STSH_PREV, undefined);
  } finally {
    await w.close();
  }
});

Deno.test("hook: one line when credentials are set or cleared; STSH_QUIET=1 silences it", async () => {
  const w = await world();
  try {
    await w.primeCode();
    const dir = await tagged(w, "a", "proj");
    const on = await hook(w, w.env, dir);
    assert.equal(on.code, 0, on.stderr);
    assert.match(
      on.stderr,
      new RegExp(
        `^stsh: a \\(role a in 123456789012\\) from ${dir}/\\.aws-profile: (59|60)m left, until \\d\\d:\\d\\d\\.\\n$`,
      ),
    );
    const env = apply(w.env, on.changes);
    const off = await hook(w, env, w.sb.home);
    assert.equal(off.stderr, "stsh: a cleared; your own AWS variables are back.\n");
    const { AWS_REGION: _, ...bare } = w.env;
    const alone = await hook(w, bare, dir);
    const gone = await hook(w, apply(bare, alone.changes), w.sb.home);
    assert.equal(gone.stderr, "stsh: a cleared; no AWS credentials are set.\n");
    const quiet = { ...w.env, STSH_QUIET: "1" };
    const q = await hook(w, quiet, dir);
    assert.equal(q.code, 0);
    assert.equal(q.stderr, "");
    assert.equal((await hook(w, apply(quiet, q.changes), w.sb.home)).stderr, "");
  } finally {
    await w.close();
  }
});

Deno.test("hook: hostile tag files are refused in well under a second, and never quoted", async () => {
  const w = await world();
  try {
    await w.primeCode();
    const secret = await w.sb.write("secret.txt", "AKIASECRETPREFIX0000wJalrXUtnFEMI\n", 0o600);
    const cases: Record<string, (tag: string) => Promise<void>> = {
      fifo: async (tag) => {
        const r = await new Deno.Command("mkfifo", { args: [tag] }).output();
        assert.ok(r.success);
      },
      "link to a fifo": async (tag) => {
        await new Deno.Command("mkfifo", { args: [`${tag}.fifo`] }).output();
        await Deno.symlink(`${tag}.fifo`, tag);
      },
      "link to /proc": (tag) => Deno.symlink("/proc/self/pagemap", tag),
      "link to /dev/zero": (tag) => Deno.symlink("/dev/zero", tag),
      "50 GB": async (tag) => {
        const f = await Deno.open(tag, { write: true, create: true, mode: 0o644 });
        await f.truncate(50 * 2 ** 30);
        f.close();
      },
      "NUL bytes": (tag) => Deno.writeFile(tag, new Uint8Array(4096), { mode: 0o644 }),
      "link to a secret": (tag) => Deno.symlink(secret, tag),
    };
    for (const [name, make] of Object.entries(cases)) {
      const dir = w.sb.path("hostile", name.replaceAll(" ", "-"));
      await Deno.mkdir(dir, { recursive: true });
      await make(`${dir}/.aws-profile`);
      const t0 = performance.now();
      const r = await hook(w, w.env, dir);
      const ms = performance.now() - t0;
      assert.equal(r.code, 2, `${name}: ${r.stderr}`);
      assert.deepEqual(r.changes, {}, name);
      assert.ok(ms < 5000, `${name} took ${ms} ms`); // a hang would take forever; deno starts in ~50 ms
      assert.doesNotMatch(r.stderr, /AKIA|wJalr|SECRET/, `${name} quoted the file`);
      assert.equal(r.stderr.trim().split("\n").length, 1, `${name}: one line`);
    }
    assert.equal(await w.codeRequests(), 0);
    // Terminal escapes in a directory name are shown, not obeyed.
    const esc = await tagged(w, "a", "esc\x1b]0;pwned\x07", false);
    const e = await hook(w, w.env, esc);
    assert.equal(e.code, 2);
    assert.ok(!e.stderr.includes("\x1b"), "an escape reached the terminal");
    assert.match(e.stderr, /esc\\x1b\]0;pwned\\x07/);
  } finally {
    await w.close();
  }
});

Deno.test("hook --serve: the endpoint instead of keys; the AWS CLI signs through it; leaving removes it", async () => {
  const w = await world();
  let serverPid: number | undefined;
  try {
    await w.primeCode();
    const dir = await tagged(w, "a", "proj");
    const base: Record<string, string> = {
      ...w.env,
      STSH_BIN: (await import("./support/fixture.ts")).STSH,
      STSH_SHELL_PID: String(Deno.pid),
      AWS_ACCESS_KEY_ID: "AKIAUSERSOWNKEY00000",
    };
    const on = await hook(w, base, dir, "--serve");
    assert.equal(on.code, 0, on.stderr);
    assert.match(on.stderr, /Served by the local endpoint\./);
    const uri = on.changes.AWS_CONTAINER_CREDENTIALS_FULL_URI!;
    assert.match(uri, /^http:\/\/127\.0\.0\.1:\d+\/creds\/a$/);
    assert.ok((on.changes.AWS_CONTAINER_AUTHORIZATION_TOKEN ?? "").length >= 43);
    // Static keys would outrank the endpoint in every SDK: none are exported, the user's own
    // key id is saved, not left in place.
    assert.equal(on.changes.AWS_ACCESS_KEY_ID, null);
    assert.equal(on.changes.AWS_SECRET_ACCESS_KEY, null);
    assert.equal(on.changes.AWS_SESSION_TOKEN, null);
    serverPid = JSON.parse(await Deno.readTextFile(`${w.env.STSH_HOME}/serve.json`)).pid;
    let env = apply(base, on.changes);
    assertNoSecrets(on.stdout + on.stderr, w.alice.secretAccessKey);

    // The real AWS CLI, given only what the hook exported, is the role.
    const cli = await new Deno.Command("/usr/bin/aws", {
      args: ["sts", "get-caller-identity", "--endpoint-url", w.emu.url, "--output", "text"],
      env,
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(cli.code, 0, new TextDecoder().decode(cli.stderr));
    assert.match(new TextDecoder().decode(cli.stdout), /assumed-role\/a\//);
    assert.equal(w.emu.counts.GetSessionToken, 1);

    // Leaving: the endpoint variables go, the user's own key comes back.
    const off = await hook(w, env, w.sb.home);
    env = apply(env, off.changes);
    assert.equal(env.AWS_CONTAINER_CREDENTIALS_FULL_URI, undefined);
    assert.equal(env.AWS_CONTAINER_AUTHORIZATION_TOKEN, undefined);
    assert.equal(env.AWS_ACCESS_KEY_ID, "AKIAUSERSOWNKEY00000");
  } finally {
    if (serverPid) {
      try {
        Deno.kill(serverPid, "SIGTERM");
      } catch { /* gone */ }
    }
    await w.close();
  }
});
