import assert from "node:assert/strict";
import { loadConfig, plan, REGION } from "../lib/config.ts";
import { ConfigError, StshError } from "../lib/errors.ts";
import { sandbox } from "./support/fixture.ts";

const CONFIG = `
[profile me]
region = eu-west-1
mfa_serial = arn:aws:iam::123456789012:mfa/alice

[profile prod]
role_arn = arn:aws:iam::123456789012:role/prod
source_profile = me

[profile long]
role_arn = arn:aws:iam::123456789012:role/long
source_profile = me
duration_seconds = 28800

[profile chained]
role_arn = arn:aws:iam::210987654321:role/deep
source_profile = prod

[profile ci]
role_arn = arn:aws:iam::123456789012:role/ci
credential_source = Environment

[profile sso]
sso_session = corp
sso_account_id = 123456789012
sso_role_name = Admin
`;
const CREDENTIALS = `
[me]
aws_access_key_id = AKIAEXAMPLEKEY123456
aws_secret_access_key = secret/+=
`;

async function withConfig(config: string, credentials = CREDENTIALS) {
  const sb = await sandbox();
  await sb.write(".aws/config", config);
  await sb.write(".aws/credentials", credentials);
  return sb;
}

Deno.test("config: every profile shape resolves to its plan", async () => {
  const sb = await withConfig(CONFIG);
  try {
    const config = await loadConfig(sb.env);
    const me = plan(config, "me", sb.env);
    assert.equal(me.base.kind, "keys");
    assert.equal(me.roles.length, 0);
    assert.equal(me.mfaSerial, "arn:aws:iam::123456789012:mfa/alice");
    assert.equal(me.region, "eu-west-1");
    assert.equal(me.endpoint, "https://sts.eu-west-1.amazonaws.com");

    const prod = plan(config, "prod", sb.env);
    assert.deepEqual(prod.roles.map((r) => r.name), ["prod"]);
    assert.equal(prod.base.profile.name, "me");
    // mfa_serial comes from the source chain when the role has none.
    assert.equal(prod.mfaSerial, "arn:aws:iam::123456789012:mfa/alice");
    assert.equal(prod.region, "eu-west-1");

    assert.equal(plan(config, "long", sb.env).target.durationSeconds, 28800);
    assert.deepEqual(plan(config, "chained", sb.env).roles.map((r) => r.name), ["prod", "chained"]);
    assert.equal(plan(config, "ci", sb.env).base.kind, "environment");
    const sso = plan(config, "sso", sb.env);
    assert.equal(sso.base.kind, "sdk");
  } finally {
    await sb.cleanup();
  }
});

Deno.test("config: AWS_ENDPOINT_URL_STS beats endpoint_url, which beats the default", async () => {
  const sb = await withConfig(
    CONFIG +
      "\n[profile local]\nrole_arn = arn:aws:iam::123456789012:role/x\nsource_profile = me\nendpoint_url = http://127.0.0.1:9\n",
  );
  try {
    const config = await loadConfig(sb.env);
    assert.equal(plan(config, "local", sb.env).endpoint, "http://127.0.0.1:9");
    const env = { ...sb.env, AWS_ENDPOINT_URL_STS: "http://127.0.0.1:8" };
    assert.equal(plan(config, "local", env).endpoint, "http://127.0.0.1:8");
  } finally {
    await sb.cleanup();
  }
});

async function refused(config: string, profile: string, pattern: RegExp, credentials?: string) {
  const sb = await withConfig(config, credentials);
  try {
    await assert.rejects(
      async () => plan(await loadConfig(sb.env), profile, sb.env),
      (e: Error) => {
        assert.ok(e instanceof StshError, `not a StshError: ${e}`);
        assert.match(e.message + " " + (e.hint ?? ""), pattern);
        return true;
      },
    );
  } finally {
    await sb.cleanup();
  }
}

Deno.test("config: an unknown profile names the files and the known profiles", () =>
  refused(
    CONFIG,
    "nope",
    /Profile 'nope' is not in .*config.*Known profiles: chained, ci, long, me, prod, sso/,
  ));

Deno.test("config: a source_profile cycle is named link by link", () =>
  refused(
    "[profile a]\nrole_arn = arn:aws:iam::123456789012:role/a\nsource_profile = b\n[profile b]\nrole_arn = arn:aws:iam::123456789012:role/b\nsource_profile = a\n",
    "a",
    /cycle: a -> b -> a/,
  ));

Deno.test("config: a missing source profile is named", () =>
  refused(
    "[profile a]\nrole_arn = arn:aws:iam::123456789012:role/a\nsource_profile = ghost\n",
    "a",
    /source_profile 'ghost', which is not in/,
  ));

Deno.test("config: malformed values are refused with the key, profile and file", () =>
  refused(
    "[profile a]\nrole_arn = not-an-arn\nsource_profile = me\n",
    "a",
    /role_arn in profile 'a' \(.*config\) is not a role ARN/,
  ));

Deno.test("config: duration_seconds must be a number in range", () =>
  refused(
    "[profile a]\nrole_arn = arn:aws:iam::123456789012:role/a\nsource_profile = me\nduration_seconds = 12h\n",
    "a",
    /duration_seconds .* from 900 to 43200; it is '12h'/,
  ));

Deno.test("config: a file the parser cannot read at all is said, not taken as empty", () =>
  refused("this is not ini\n[[[\n", "a", /found no profiles/, ""));

Deno.test("config: an unreadable config file is named", async () => {
  if (Deno.uid() === 0) {
    // root reads everything; prove the check with a directory in the file's place instead.
    const sb = await sandbox();
    try {
      await Deno.mkdir(sb.path(".aws/config"));
      await assert.rejects(() => loadConfig(sb.env), /config file .*config is not a regular file/);
    } finally {
      await sb.cleanup();
    }
    return;
  }
  const sb = await withConfig(CONFIG);
  try {
    await Deno.chmod(sb.path(".aws/config"), 0o000);
    await assert.rejects(
      () => loadConfig(sb.env),
      /Cannot read the AWS config file .*: permission denied/,
    );
  } finally {
    await sb.cleanup();
  }
});

Deno.test("config: no config at all says where it looked", async () => {
  const sb = await sandbox();
  try {
    await assert.rejects(
      () => loadConfig(sb.env),
      /neither .*\.aws\/config nor .*credentials exists/,
    );
  } finally {
    await sb.cleanup();
  }
});

Deno.test("config: region names of every partition pass; anything else is a problem", () => {
  for (
    const r of [
      "us-east-1",
      "eu-west-3",
      "ap-southeast-4",
      "us-gov-west-1",
      "cn-northwest-1",
      "us-iso-east-1",
      "us-isob-east-1",
      "eu-isoe-west-1",
      "il-central-1",
      "mx-central-1",
      "eusc-de-east-1",
    ]
  ) assert.match(r, REGION, r);
  for (
    const r of [
      "",
      "us-east",
      "US-EAST-1",
      "us east 1",
      "us-east-1.evil.com",
      "local",
      "us-east-1\n",
    ]
  ) assert.doesNotMatch(r, REGION, JSON.stringify(r));
});

Deno.test("config: the exported region is the target's own; the calls' region may come from the chain", async () => {
  const sb = await withConfig(CONFIG);
  try {
    const config = await loadConfig(sb.env);
    const prod = plan(config, "prod", sb.env);
    assert.equal(prod.exportRegion, undefined, "never the source profile's");
    assert.equal(prod.region, "eu-west-1", "the calls still use the chain's");
    assert.equal(plan(config, "me", sb.env).exportRegion, "eu-west-1");
    const env = { ...sb.env, AWS_REGION: "ap-south-1" };
    assert.equal(plan(config, "ci", env).region, "ap-south-1");
    assert.equal(plan(config, "ci", env).exportRegion, undefined);
  } finally {
    await sb.cleanup();
  }
});

Deno.test("config: problems belong to their profile; the files' keys are attributed", async () => {
  const sb = await withConfig(
    CONFIG + "\n[profile odd]\nrole_arn = arn:aws:iam::123456789012:role/x\nsource_profile = me\n" +
      "external_id = a b\nregion = nowhere\n",
    CREDENTIALS + "\n[odd]\nrole_session_name = x y\n",
  );
  try {
    const config = await loadConfig(sb.env);
    const odd = config.profiles.get("odd")!;
    assert.deepEqual(odd.problems.map((p) => p.key), [
      "region",
      "role_session_name",
      "external_id",
    ]);
    assert.match(odd.problems[1].message, /role_session_name in profile 'odd' \(.*credentials\)/);
    assert.match(odd.problems[0].message, /region in profile 'odd' \(.*config\)/);
    assert.equal(plan(config, "prod", sb.env).target.name, "prod");
    assert.throws(() => plan(config, "odd", sb.env), ConfigError);
  } finally {
    await sb.cleanup();
  }
});
