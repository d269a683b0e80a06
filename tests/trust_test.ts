import assert from "node:assert/strict";
import { join } from "node:path";
import { decide, HookState } from "../lib/hook.ts";
import { credentialChanges } from "../lib/formats.ts";
import { findTag, inspectTag, TrustStore } from "../lib/trust.ts";
import { sandbox } from "./support/fixture.ts";

Deno.test("trust: a tag counts only as allowed, and any edit needs a new allow", async () => {
  const sb = await sandbox();
  try {
    const dir = sb.path("work/prod-infra");
    await sb.write("work/prod-infra/.aws-profile", "prod\n", 0o644);
    await Deno.mkdir(join(dir, "deep/er"), { recursive: true });
    const tag = await findTag(join(dir, "deep/er"));
    assert.equal(tag?.root, dir);
    const st = await inspectTag(tag!);
    assert.ok(st.ok);
    const trust = new TrustStore(sb.env);
    assert.equal(await trust.isAllowed(st.realRoot, st.content), false);
    await trust.allow(st.realRoot, st.content);
    assert.equal(await trust.isAllowed(st.realRoot, st.content), true);
    assert.equal(await trust.isAllowed(st.realRoot, "admin\n"), false, "edited content");
    assert.equal(await trust.isAllowed(st.realRoot + "-copy", st.content), false, "other path");
    // Nothing denied yet: no deny/ directory, and nothing reads as denied.
    assert.equal(await trust.isDenied(st.realRoot), false);
    await assert.rejects(Deno.lstat(sb.path(".aws/stsh/trust/deny")), Deno.errors.NotFound);
    // An allow of an older content outlives a deny of the path made while the tag held
    // something else; the deny still wins when the old content comes back.
    await trust.deny(st.realRoot, "admin\n");
    assert.equal(await trust.isAllowed(st.realRoot, st.content), false, "denied path");
    await trust.allow(st.realRoot, st.content);
    assert.equal(await trust.isAllowed(st.realRoot, st.content), true, "allowed again");
    await trust.deny(st.realRoot, st.content);
    assert.equal(await trust.isAllowed(st.realRoot, st.content), false, "denied");
    assert.equal(await trust.isDenied(st.realRoot), true);
    // State files are private.
    const mode = (await Deno.stat(sb.path(".aws/stsh/trust"))).mode! & 0o777;
    assert.equal(mode, 0o700);
  } finally {
    await sb.cleanup();
  }
});

Deno.test("trust: hostile or unsafe tags are refused with a reason", async () => {
  const sb = await sandbox();
  try {
    const cases: [string, number, RegExp][] = [
      ["$(touch PWNED)\n", 0o644, /does not hold one profile name/],
      ["'; touch PWNED; '", 0o644, /does not hold one profile name/],
      ["prod\nadmin\n", 0o644, /does not hold one profile name/],
      ["\n", 0o644, /does not hold one profile name/],
      ["O\u2019Brien\n", 0o644, /does not hold one profile name/],
      ["prod\n", 0o666, /can be written by other users/],
      ["prod\n", 0o620, /can be written by other users/],
    ];
    for (const [i, [content, mode, reason]] of cases.entries()) {
      await sb.write(`t${i}/.aws-profile`, content, mode);
      const st = await inspectTag({ root: sb.path(`t${i}`), file: sb.path(`t${i}/.aws-profile`) });
      assert.equal(st.ok, false, JSON.stringify(content));
      if (!st.ok) assert.match(st.reason, reason);
    }
  } finally {
    await sb.cleanup();
  }
});

Deno.test("hook: an untrusted tag gives status 2, a notice, and no credentials", async () => {
  const sb = await sandbox();
  try {
    await sb.write(
      ".aws/config",
      "[profile prod]\nrole_arn = arn:aws:iam::123456789012:role/p\nsource_profile = prod\n",
    );
    await sb.write("proj/.aws-profile", "prod\n", 0o644);
    const r = await decide({ cwd: sb.path("proj"), env: sb.env, prompt: false, quiet: true });
    assert.equal(r.status, 2);
    assert.deepEqual(r.changes, {});
  } finally {
    await sb.cleanup();
  }
});

Deno.test("hook state: leaving restores exactly what the person had, unset included", () => {
  const before = { AWS_PROFILE: "mine", AWS_REGION: "us-west-2", HOME: "/h" };
  const s0 = new HookState(before);
  const expiration = new Date(Date.now() + 3600_000);
  const on = s0.activate(
    "prod",
    "/p",
    false,
    credentialChanges({
      accessKeyId: "ASIAEXAMPLEKEY123456",
      secretAccessKey: "abc/+=",
      sessionToken: "tok",
      expiration,
      region: "eu-west-1",
    }),
    expiration,
  );
  assert.equal(on.AWS_PROFILE, null);
  assert.equal(on.AWS_REGION, "eu-west-1");
  assert.equal(on.STSH_PROFILE, "prod");
  const env: Record<string, string> = { ...before };
  for (const [k, v] of Object.entries(on)) v === null ? delete env[k] : (env[k] = v);
  const s1 = new HookState(env);
  assert.ok(s1.fresh(Date.now()));
  assert.equal(s1.userEnv().AWS_PROFILE, "mine");
  assert.equal(s1.userEnv().AWS_ACCESS_KEY_ID, undefined);
  const off = s1.restore();
  for (const [k, v] of Object.entries(off)) v === null ? delete env[k] : (env[k] = v);
  assert.deepEqual(env, before);
});
