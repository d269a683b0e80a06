/**
 * Hostile or odd AWS files, through the real stsh against the STS emulator: a broken profile
 * is said only when it is used; files that are not regular files are refused at once; a
 * huge config does not overflow anything; the region is the AWS CLI's; --no-session never
 * hands out long-term keys of an MFA user without --force.
 */
import assert from "node:assert/strict";
import { parseExports } from "./support/fixture.ts";
import { scenario, type World, world } from "./support/world.ts";

const append = (w: World, text: string) =>
  Deno.writeTextFile(w.env.AWS_CONFIG_FILE, text, { append: true });

scenario("a broken unrelated profile leaves the others working", async (w) => {
  await append(
    w,
    `
[profile spaced]
role_arn = ${w.roles.b.arn}
source_profile = me
role_session_name = my session

[profile hours]
role_arn = ${w.roles.b.arn}
source_profile = me
duration_seconds = 12h

[profile half]
aws_access_key_id = AKIAHALFAKEYPAIR0000

[profile onhalf]
role_arn = ${w.roles.b.arn}
source_profile = half
`,
  );
  await w.primeCode();
  const a = await w.run(["env", "a"]);
  assert.equal(a.code, 0, a.stderr);
  assert.match(parseExports(a.stdout).AWS_ACCESS_KEY_ID!, /^ASIA/);
  assert.equal(a.stderr, "", "nothing said about profiles not in use");

  // Used, each says its problem in one sentence: file, profile, key.
  const spaced = await w.run(["env", "spaced"]);
  assert.equal(spaced.code, 1);
  assert.equal(spaced.stdout, "");
  assert.match(
    spaced.stderr,
    /^stsh: role_session_name in profile 'spaced' \(.*\/\.aws\/config\) is not 2-64 characters of \[A-Za-z0-9_\+=,\.@-\]: 'my session'\.\n$/,
  );
  const hours = await w.run(["env", "hours"]);
  assert.match(hours.stderr, /duration_seconds in profile 'hours' \(.*config\) must be .*'12h'/);
  // A profile whose source is broken is broken, and says which one.
  const onhalf = await w.run(["env", "onhalf"]);
  assert.equal(onhalf.code, 1);
  assert.match(onhalf.stderr, /Profile 'half' \(.*config\) has aws_access_key_id but not/);
  assert.equal(await w.codeRequests(), 1, "no code spent on a broken profile");

  // The listing shows them with a short reason and does not fail.
  const list = await w.run(["profiles"]);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /^spaced +broken: role_session_name is not 2-64 characters/m);
  assert.match(list.stdout, /^hours +broken: duration_seconds must be a whole number/m);
  assert.match(list.stdout, /^half +broken: has aws_access_key_id but not aws_secret/m);
  assert.match(list.stdout, /^onhalf +broken: source profile 'half': has aws_access_key_id/m);
  assert.match(list.stdout, /^a +role +yes/m);

  // Tagging a healthy profile is not stopped by them either.
  await Deno.mkdir(w.sb.path("proj"));
  const tag = await w.run(["tag", "a", w.sb.path("proj")]);
  assert.equal(tag.code, 0, tag.stderr);
});

scenario("every profile's problems in one list (for stsh doctor)", async (w) => {
  await append(
    w,
    "\n[profile spaced]\nrole_arn = arn:aws:iam::123456789012:role/x\nsource_profile = me\nrole_session_name = a b\n" +
      "[profile orphan]\nrole_arn = arn:aws:iam::123456789012:role/x\nsource_profile = ghost\n",
  );
  const { loadConfig, profileProblems } = await import("../lib/config.ts");
  const problems = profileProblems(await loadConfig(w.env), w.env);
  assert.deepEqual(problems.map((p) => p.profile), ["orphan", "spaced"]);
  assert.match(problems[0].short, /source_profile 'ghost' does not exist/);
  assert.match(problems[1].message, /role_session_name in profile 'spaced' \(.*config\)/);
});

for (
  const [what, make] of [
    ["a FIFO", async (p: string) => {
      await new Deno.Command("mkfifo", { args: [p] }).output();
    }],
    ["/dev/zero", (p: string) => Deno.symlink("/dev/zero", p)],
    ["a link to a FIFO", async (p: string) => {
      await new Deno.Command("mkfifo", { args: [p + ".fifo"] }).output();
      await Deno.symlink(p + ".fifo", p);
    }],
    ["a directory", (p: string) => Deno.mkdir(p)],
    ["a 17 MiB file", async (p: string) => {
      const f = await Deno.open(p, { write: true, create: true });
      await f.truncate(17 * 1024 * 1024);
      f.close();
    }],
  ] as const
) {
  scenario(`AWS_CONFIG_FILE naming ${what} is refused in one line, not read`, async (w) => {
    const path = w.sb.path("odd-config");
    await make(path);
    const r = await w.run(["env", "a"], { env: { AWS_CONFIG_FILE: path } });
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assert.match(
      r.stderr,
      /^stsh: The AWS config file .*odd-config (is not a regular file|is larger than 16777216 bytes).*\.\n {2}AWS_CONFIG_FILE names it\.\n$/,
    );
    const list = await w.run(["profiles"], { env: { AWS_CONFIG_FILE: path } });
    assert.equal(list.code, 1);
  });
}

scenario("a [__proto__] or [constructor] section hides nothing else", async (w) => {
  await append(w, "\n[profile __proto__]\nregion = eu-west-1\n");
  await Deno.writeTextFile(
    w.env.AWS_SHARED_CREDENTIALS_FILE,
    "\n[constructor]\naws_access_key_id = AKIAPOLLUTE000000000\naws_secret_access_key = x\n",
    { append: true },
  );
  await w.primeCode();
  const r = await w.run(["env", "a"]);
  assert.equal(r.code, 0, r.stderr);
  const names = await w.run(["profiles", "--names"]);
  assert.match(names.stdout, /^me$/m);
  assert.doesNotMatch(names.stdout, /__proto__|constructor/);
});

Deno.test("200 000 profiles: listed, resolved, named in errors, no stack overflow", async () => {
  const w = await world();
  try {
    const lines = [await Deno.readTextFile(w.env.AWS_CONFIG_FILE)];
    // Keys only (6 MB), as 200 000 profiles must fit the 16 MiB limit; one assumes a role.
    for (let i = 0; i < 200_000; i++) lines.push(`[profile p${i}]\nregion = eu-west-1\n`);
    lines.push(`[profile p123456]\nrole_arn = ${w.roles.open.arn}\nsource_profile = robot\n`);
    await Deno.writeTextFile(w.env.AWS_CONFIG_FILE, lines.join("\n"));
    const list = await w.run(["profiles"]);
    assert.equal(list.code, 0, list.stderr.slice(0, 500));
    assert.equal(list.stdout.split("\n").filter(Boolean).length, 200_000 + 8 + 1);
    assert.match(list.stdout, /^p199999 +broken: no credentials and no role_arn/m);
    assert.match(list.stdout, /^p123456 +role +- +arn:aws:iam::123456789012:role\/open/m);
    const nope = await w.run(["env", "nope"]);
    assert.equal(nope.code, 1);
    assert.match(
      nope.stderr,
      /Known profiles: a, b, chain, .*, … \(200008 in all; `stsh profiles --names` lists them\)\./,
    );
    assert.ok(nope.stderr.length < 2000, "the hint is short");
    const one = await w.run(["env", "p123456", "--format", "json"]);
    assert.equal(one.code, 0, one.stderr);
    assert.match(JSON.parse(one.stdout).Arn, /assumed-role\/open\//);
  } finally {
    await w.close();
  }
});

scenario(
  "region: the profile's own, never its source's; none leaves the user's alone",
  async (w) => {
    await append(
      w,
      `
[profile euro]
role_arn = ${w.roles.open.arn}
source_profile = robot
region = eu-central-1
`,
    );
    // 'a' has no region; its source 'me' has us-east-1: nothing about the region is exported.
    await w.primeCode();
    const a = await w.run(["env", "a"], { env: { AWS_REGION: "ap-south-1" } });
    assert.equal(a.code, 0, a.stderr);
    const va = parseExports(a.stdout);
    assert.ok(!("AWS_REGION" in va) && !("AWS_DEFAULT_REGION" in va), a.stdout);
    // 'me' has its own region: exported, over the user's.
    const me = parseExports(
      (await w.run(["env", "me"], { env: { AWS_REGION: "ap-south-1" } })).stdout,
    );
    assert.equal(me.AWS_REGION, "us-east-1");
    assert.equal(me.AWS_DEFAULT_REGION, "us-east-1");
    const euro = parseExports((await w.run(["env", "euro"])).stdout);
    assert.equal(euro.AWS_REGION, "eu-central-1");
    // The same through the hook's quick path (a warm cache, no config parsing).
    const hook = await w.run(["hook", "bash", "--assume", "a"], {
      env: { AWS_REGION: "ap-south-1", AWS_DEFAULT_REGION: "ap-south-2" },
    });
    assert.equal(hook.code, 0, hook.stderr);
    const vh = parseExports(hook.stdout);
    assert.match(vh.AWS_ACCESS_KEY_ID!, /^ASIA/);
    assert.ok(vh.AWS_REGION === undefined || vh.AWS_REGION === "ap-south-1", hook.stdout);
    assert.ok(vh.AWS_DEFAULT_REGION === undefined || vh.AWS_DEFAULT_REGION === "ap-south-2");
    // json has no Region for 'a'.
    const j = JSON.parse((await w.run(["env", "a", "--format", "json"])).stdout);
    assert.equal(j.Region, undefined);
  },
);

scenario("a region that is not a region is refused before a code is spent", async (w) => {
  await append(
    w,
    `
[profile badregion]
role_arn = ${w.roles.a.arn}
source_profile = me
region = eu-west-1.evil.example/x
`,
  );
  await w.primeCode();
  const r = await w.run(["env", "badregion"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /region in profile 'badregion' \(.*config\) is not an AWS region name/);
  // From the environment, when no profile of the chain has one.
  await Deno.writeTextFile(
    w.env.AWS_CONFIG_FILE,
    (await Deno.readTextFile(w.env.AWS_CONFIG_FILE)).replace(/^region = us-east-1$/gm, ""),
  );
  const env = await w.run(["env", "a"], { env: { AWS_REGION: "us east 1" } });
  assert.equal(env.code, 1);
  assert.match(env.stderr, /AWS_REGION is 'us east 1', which is not an AWS region name/);
  assert.equal(await w.codeRequests(), 0, "no code asked for");
  assert.equal(w.emu.calls.length, 0, "no STS call made");
});

scenario("--no-session on an MFA user: refused; with --force, a warning", async (w) => {
  const r = await w.run(["env", "me", "--no-session"]);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, "");
  assert.match(
    r.stderr,
    /Profile 'me' has an MFA device \(mfa_serial\): --no-session would export/,
  );
  assert.match(r.stderr, /add --force/);
  assert.ok(!r.stderr.includes(w.alice.accessKeyId));
  const f = await w.run(["env", "me", "--no-session", "--force", "--format", "json"]);
  assert.equal(f.code, 0, f.stderr);
  assert.equal(JSON.parse(f.stdout).AccessKeyId, w.alice.accessKeyId);
  assert.match(f.stderr, /warning: exporting the long-term keys of 'me'/);
  assert.equal(await w.codeRequests(), 0);
  assert.equal(w.emu.calls.length, 0);
  // Without an MFA device, --no-session passes the keys through as before, silently.
  const robot = await w.run(["env", "robot", "--no-session", "--format", "json"]);
  assert.equal(JSON.parse(robot.stdout).AccessKeyId, w.plain.accessKeyId);
  assert.equal(robot.stderr, "");
  // A role: the flag does not apply, and says so, rather than be ignored.
  const role = await w.run(["env", "a", "--no-session"]);
  assert.equal(role.code, 2);
  assert.equal(role.stdout, "");
  assert.match(role.stderr, /Profile 'a' is a role: --no-session .* does not apply to it/);
  assert.equal(w.emu.calls.length, 0);
});
