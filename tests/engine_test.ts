/**
 * The credential engine end to end: the real stsh (through bin/stsh) and the real AWS SDK
 * talking HTTP to the STS emulator, which checks signatures, MFA codes and durations.
 */
import assert from "node:assert/strict";
import { resolve } from "../lib/engine.ts";
import { parseExports } from "./support/fixture.ts";
import { assertNoSecrets, world } from "./support/world.ts";

Deno.test("two roles sharing one source: one code, one GetSessionToken, then none", async () => {
  const w = await world();
  try {
    await w.primeCode();
    const a = await w.run(["env", "a"]);
    assert.equal(a.code, 0, a.stderr);
    const va = parseExports(a.stdout);
    assert.match(va.AWS_ACCESS_KEY_ID!, /^ASIA/);
    assert.equal(await w.codeRequests(), 1);
    assert.equal(w.emu.counts.GetSessionToken, 1);
    assert.equal(w.emu.counts.AssumeRole, 1);

    const b = await w.run(["env", "b"]);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(await w.codeRequests(), 1, "no second code for b");
    assert.equal(w.emu.counts.GetSessionToken, 1);
    assert.equal(w.emu.counts.AssumeRole, 2);
    assert.notEqual(parseExports(b.stdout).AWS_ACCESS_KEY_ID, va.AWS_ACCESS_KEY_ID);

    // A third run of a is a pure cache hit: no STS call at all.
    const again = await w.run(["env", "a"]);
    assert.equal(parseExports(again.stdout).AWS_ACCESS_KEY_ID, va.AWS_ACCESS_KEY_ID);
    assert.equal(w.emu.counts.AssumeRole, 2);
    assertNoSecrets(a.stderr + b.stderr, va.AWS_SECRET_ACCESS_KEY!, w.alice.secretAccessKey);
  } finally {
    await w.close();
  }
});

Deno.test("role expired, MFA session alive: silent renewal; MFA session expired: one code", async () => {
  const w = await world();
  try {
    let offset = 0;
    const opts = { env: w.env, interactive: false, now: () => Date.now() + offset };
    await w.primeCode();
    const first = await resolve("a", opts);
    assert.equal(await w.codeRequests(), 1);

    // 61 minutes later (for stsh and for STS): the role is dead, the 12 h session is not.
    offset += 61 * 60_000;
    w.emu.advance(61 * 60);
    const second = await resolve("a", opts);
    assert.notEqual(second.accessKeyId, first.accessKeyId);
    assert.equal(await w.codeRequests(), 1, "renewed without a code");
    assert.equal(w.emu.counts.GetSessionToken, 1);
    assert.equal(w.emu.counts.AssumeRole, 2);

    // 12 hours later the MFA session has ended too: exactly one new code.
    offset += 12 * 3600_000;
    w.emu.advance(12 * 3600);
    await w.primeCode();
    const third = await resolve("a", opts);
    assert.ok(third.expiration! > second.expiration!);
    assert.equal(await w.codeRequests(), 2);
    assert.equal(w.emu.counts.GetSessionToken, 2);
  } finally {
    await w.close();
  }
});

Deno.test("eight concurrent resolves on an empty cache: one GetSessionToken, one AssumeRole", async () => {
  const w = await world();
  try {
    await w.primeCode();
    const runs = await Promise.all(Array.from({ length: 8 }, () => w.run(["env", "a"])));
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    assert.equal(new Set(runs.map((r) => r.stdout)).size, 1, "eight identical results");
    assert.equal(w.emu.counts.GetSessionToken, 1);
    assert.equal(w.emu.counts.AssumeRole, 1);
    assert.equal(await w.codeRequests(), 1);
    // Those that waited said on whom, once: "waiting for another stsh (pid 42, since …) getting
    // the role 'a'…".
    const waits = runs.map((r) => r.stderr.match(/waiting for .*/g) ?? []);
    assert.ok(waits.some((w) => w.length > 0), "someone waited");
    for (const w of waits) {
      assert.ok(w.length <= 1, w.join("\n"));
      for (const line of w) {
        assert.match(
          line,
          /^waiting for another stsh( \(pid \d+, since [\d:]+\) getting|, which holds) the role 'a'…$/,
        );
      }
    }
  } finally {
    await w.close();
  }
});

Deno.test("a role whose duration_seconds is above 1 h is assumed directly with a code", async () => {
  const w = await world();
  try {
    await w.primeCode();
    const r = await w.run(["env", "long", "--format", "json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /caps roles assumed from an MFA session at 1 h/);
    const j = JSON.parse(r.stdout);
    const hours = (Date.parse(j.Expiration) - Date.now()) / 3600_000;
    assert.ok(hours > 1.9 && hours <= 2, `lasts ${hours} h`);
    assert.equal(w.emu.counts.GetSessionToken ?? 0, 0);
    assert.equal(w.emu.counts.AssumeRole, 1);
  } finally {
    await w.close();
  }
});

Deno.test("role chain: each link in order, from one code", async () => {
  const w = await world();
  try {
    await w.primeCode();
    const r = await w.run(["env", "chain", "--format", "json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(JSON.parse(r.stdout).Arn, /assumed-role\/open\//);
    assert.equal(w.emu.counts.AssumeRole, 2);
    assert.equal(await w.codeRequests(), 1);
  } finally {
    await w.close();
  }
});

Deno.test("keys without MFA go through a session; --no-session passes them through", async () => {
  const w = await world();
  try {
    const s = await w.run(["env", "robot", "--format", "json"]);
    assert.equal(s.code, 0, s.stderr);
    const j = JSON.parse(s.stdout);
    assert.match(j.AccessKeyId, /^ASIA/);
    assert.ok(j.SessionToken && j.Expiration);
    assert.equal(w.emu.counts.GetSessionToken, 1);
    const raw = await w.run(["env", "robot", "--format", "json", "--no-session"]);
    assert.equal(JSON.parse(raw.stdout).AccessKeyId, w.plain.accessKeyId);
    assert.equal(JSON.parse(raw.stdout).SessionToken, undefined);
  } finally {
    await w.close();
  }
});

Deno.test("credential_source = Environment and a credential_process source both assume roles", async () => {
  const w = await world();
  try {
    const proc = JSON.stringify({
      Version: 1,
      AccessKeyId: w.plain.accessKeyId,
      SecretAccessKey: w.plain.secretAccessKey,
    });
    await Deno.writeTextFile(
      w.env.AWS_CONFIG_FILE,
      `
[profile fromenv]
role_arn = ${w.roles.open.arn}
credential_source = Environment

[profile proc]
credential_process = echo '${proc}'

[profile viaproc]
role_arn = ${w.roles.open.arn}
source_profile = proc
`,
      { append: true },
    );
    const env = {
      AWS_ACCESS_KEY_ID: w.plain.accessKeyId,
      AWS_SECRET_ACCESS_KEY: w.plain.secretAccessKey,
    };
    const e = await w.run(["env", "fromenv", "--format", "json"], { env });
    assert.equal(e.code, 0, e.stderr);
    assert.match(JSON.parse(e.stdout).Arn, /assumed-role\/open\//);
    const missing = await w.run(["env", "fromenv"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /credential_source = Environment, but AWS_ACCESS_KEY_ID/);
    const p = await w.run(["env", "viaproc", "--format", "json"]);
    assert.equal(p.code, 0, p.stderr);
    assert.match(JSON.parse(p.stdout).Arn, /assumed-role\/open\//);
    const calls = w.emu.calls.filter((c) => c.action === "AssumeRole" && c.status === 200);
    assert.ok(
      calls.every((c) => c.accessKeyId === w.plain.accessKeyId),
      "signed with robot's keys",
    );
  } finally {
    await w.close();
  }
});

Deno.test("a role session still fresh is used even when the MFA session behind it has ended", async () => {
  const w = await world();
  try {
    let offset = 0;
    const opts = { env: w.env, interactive: false, now: () => Date.now() + offset };
    const move = (s: number) => {
      offset += s * 1000;
      w.emu.advance(s);
    };
    await w.primeCode();
    await resolve("a", opts);
    move(11.5 * 3600); // the role renews silently; its new hour outlives the MFA session
    const renewed = await resolve("a", opts);
    move(35 * 60); // MFA session over, role still has 25 minutes
    const again = await resolve("a", opts);
    assert.equal(again.accessKeyId, renewed.accessKeyId);
    assert.equal(await w.codeRequests(), 1, "no code while the role's credentials are good");
    assert.equal(w.emu.counts.GetSessionToken, 1);
  } finally {
    await w.close();
  }
});
