/**
 * Everything that can go wrong gives one clear sentence, the documented exit code, loses
 * nothing and prints no secret — through the real stsh against the STS emulator.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { assertNoSecrets, scenario, type World } from "./support/world.ts";

async function cacheFiles(w: World): Promise<{ path: string; kind: string; profile: string }[]> {
  const dir = w.sb.path(".aws/stsh/cache");
  const out = [];
  for await (const e of Deno.readDir(dir)) {
    if (!e.name.endsWith(".json")) continue;
    const j = JSON.parse(await Deno.readTextFile(join(dir, e.name)));
    out.push({ path: join(dir, e.name), kind: j.kind, profile: j.profile });
  }
  return out;
}

scenario("a wrong code: AWS's reason, exit 1, no secret", async (w) => {
  const good = await w.emu.code(w.alice);
  await Deno.writeTextFile(w.codeFile, (good === "000000" ? "111111" : "000000") + "\n");
  const r = await w.run(["env", "a"]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /AWS refused the MFA code \(wrong, expired or already used\)/);
  assertNoSecrets(r.stderr, w.alice.secretAccessKey);
});

scenario("a code used a moment ago is refused locally, before AWS sees it", async (w) => {
  const code = await w.emu.code(w.alice);
  const first = await w.run(["env", "me", "--token-code", code]);
  assert.equal(first.code, 0, first.stderr);
  await w.run(["clear", "--all"]);
  const again = await w.run(["env", "me", "--token-code", code]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /used in the last 90 seconds.*\n.*Wait for the next code/);
  assert.equal(w.emu.counts.GetSessionToken, 1, "the reused code never reached STS");
  // With the guard's memory gone, AWS itself refuses the reused code.
  const elsewhere = await w.run(["env", "me", "--token-code", code], {
    env: { STSH_HOME: w.sb.path("other-state") },
  });
  assert.equal(elsewhere.code, 1);
  assert.match(elsewhere.stderr, /AWS refused the MFA code/);
});

scenario("--token-code that is not six digits is refused before any call", async (w) => {
  const r = await w.run(["env", "a", "--token-code", "12345"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /not six digits/);
  assert.equal(w.emu.calls.length, 0);
});

scenario("duration_seconds above the role's maximum: the limit is named", async (w) => {
  await w.primeCode();
  const r = await w.run(["env", "toolong"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /duration_seconds is longer than the role allows/);
  assert.match(r.stderr, /Maximum session duration/);
});

scenario("a role that demands MFA, asked without: how to fix it", async (w) => {
  const r = await w.run(["env", "demands"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /refused to let you assume the role/);
  assert.match(r.stderr, /set mfa_serial/);
  assertNoSecrets(r.stderr, w.plain.secretAccessKey);
});

scenario("STS unreachable: said plainly, exit 1", async (w) => {
  await w.primeCode();
  const r = await w.run(["env", "a"], { env: { AWS_ENDPOINT_URL_STS: "http://127.0.0.1:9" } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot reach STS at http:\/\/127\.0\.0\.1:9/);
  assert.equal(r.stdout, "");
});

scenario(
  "a code that never reached STS is not spent: the same code works once STS is back",
  async (w) => {
    const code = await w.emu.code(w.alice);
    const down = await w.run(["env", "me", "--token-code", code], {
      env: { AWS_ENDPOINT_URL_STS: "http://127.0.0.1:9" },
    });
    assert.equal(down.code, 1);
    assert.match(down.stderr, /cannot reach STS/);
    const back = await w.run(["env", "me", "--token-code", code]);
    assert.equal(back.code, 0, back.stderr);
    assert.doesNotMatch(back.stderr, /used in the last 90 seconds/);
    assert.equal(w.emu.counts.GetSessionToken, 1);
    // Once STS has answered, the code counts as spent, as before.
    await w.run(["clear", "--all"]);
    const again = await w.run(["env", "me", "--token-code", code]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /used in the last 90 seconds/);
  },
);

scenario("STS that never answers: the hard deadline ends it", async (w) => {
  w.emu.failNext("GetSessionToken", "Hang");
  await w.primeCode();
  const t0 = Date.now();
  const r = await w.run(["env", "a"], { env: { STSH_STS_TIMEOUT: "1" } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /did not answer within 1 s/);
  assert.ok(Date.now() - t0 < 8000);
});

scenario("throttling: a call with a code is not retried; one without is", async (w) => {
  w.emu.failNext("GetSessionToken", "Throttling");
  await w.primeCode();
  const r = await w.run(["env", "a"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /throttling/);
  assert.equal(w.emu.calls.filter((c) => c.action === "GetSessionToken").length, 1);

  // Next code; then a throttled AssumeRole (no code in it) is retried by the SDK.
  await Deno.writeTextFile(w.codeFile, await w.emu.code(w.alice, 1) + "\n");
  w.emu.failNext("AssumeRole", "Throttling");
  const ok = await w.run(["env", "a"]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(w.emu.calls.filter((c) => c.action === "AssumeRole").length, 2);
});

scenario("a truncated cache file is a miss: renewed from the MFA session, no code", async (w) => {
  await w.primeCode();
  assert.equal((await w.run(["env", "a"])).code, 0);
  const role = (await cacheFiles(w)).find((f) => f.kind === "role")!;
  const text = await Deno.readTextFile(role.path);
  await Deno.writeTextFile(role.path, text.slice(0, text.length / 2));
  const r = await w.run(["env", "a"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /was damaged; discarded it/);
  assert.equal(await w.codeRequests(), 1);
  assert.equal(w.emu.counts.AssumeRole, 2);
});

scenario("a cache file readable by others is never trusted", async (w) => {
  await w.primeCode();
  assert.equal((await w.run(["env", "a"])).code, 0);
  const session = (await cacheFiles(w)).find((f) => f.kind === "mfa-session")!;
  const role = (await cacheFiles(w)).find((f) => f.kind === "role")!;
  await Deno.chmod(session.path, 0o644);
  await Deno.remove(role.path);
  const next = await w.emu.code(w.alice, 1);
  const r = await w.run(["env", "a", "--token-code", next]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /could be read by other users \(mode 644\); discarded it/);
  assert.equal(w.emu.counts.GetSessionToken, 2, "a new MFA session replaced the exposed one");
  for (const f of await cacheFiles(w)) {
    assert.equal((await Deno.stat(f.path)).mode! & 0o777, 0o600, f.path);
  }
  assert.equal((await Deno.stat(w.sb.path(".aws/stsh/cache"))).mode! & 0o777, 0o700);
});

scenario("long-term keys are never written to the cache", async (w) => {
  await w.primeCode();
  assert.equal((await w.run(["env", "a"])).code, 0);
  assert.equal((await w.run(["env", "robot"])).code, 0);
  for (const f of await cacheFiles(w)) {
    const text = await Deno.readTextFile(f.path);
    assertNoSecrets(text, w.alice.secretAccessKey, w.plain.secretAccessKey);
    assert.ok(!text.includes(w.alice.accessKeyId) && !text.includes(w.plain.accessKeyId));
  }
});

scenario("a malformed config: which file, and what the parser expects", async (w) => {
  await Deno.writeTextFile(w.env.AWS_CONFIG_FILE, "[profile\nrole_arn arn\n");
  await Deno.writeTextFile(w.env.AWS_SHARED_CREDENTIALS_FILE, "");
  const r = await w.run(["env", "a"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /found no profiles in .*config/);
});

scenario(
  "an unknown profile lists the known ones; no terminal means exit 3, not a hang",
  async (w) => {
    const r = await w.run(["env", "nope"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Known profiles: a, b, chain, demands, long, me, robot, toolong/);
    await Deno.writeTextFile(
      w.env.AWS_CONFIG_FILE,
      (await Deno.readTextFile(w.env.AWS_CONFIG_FILE)).replace(/^mfa_process.*$/m, ""),
    );
    const t0 = Date.now();
    const r3 = await w.run(["env", "a"]);
    assert.equal(r3.code, 3);
    assert.match(r3.stderr, /MFA code needed.*\n.*--token-code/);
    assert.ok(Date.now() - t0 < 5000);
  },
);

scenario("an MFA session STS no longer accepts is replaced, not a dead end", async (w) => {
  let offset = 0;
  const { resolve } = await import("../lib/engine.ts");
  const opts = { env: w.env, interactive: false, now: () => Date.now() + offset };
  await w.primeCode();
  await resolve("a", opts);
  // STS's clock runs 13 h ahead of ours: our cached 12 h MFA session looks alive, STS says
  // ExpiredToken. stsh drops it, asks for one new code, and carries on.
  w.emu.advance(13 * 3600);
  offset = 61 * 60_000; // the role itself is due
  await Deno.writeTextFile(w.codeFile, await w.emu.code(w.alice) + "\n");
  const c = await resolve("a", opts);
  assert.match(c.accessKeyId, /^ASIA/);
  assert.equal(w.emu.counts.GetSessionToken, 2);
  assert.equal(await w.codeRequests(), 2);
  assert.ok(w.emu.calls.some((x) => x.action === "AssumeRole" && x.code === "ExpiredToken"));
});
