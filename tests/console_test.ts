/**
 * `stsh console`: the real stsh against the STS emulator and the federation stand-in
 * (emulator/federation.ts), which accepts only credentials the STS emulator issued. Also the
 * stand-in's own rules, and the pure parts of lib/console.ts.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { AssumeRoleCommand, GetSessionTokenCommand, STSClient } from "@aws-sdk/client-sts";
import { FederationEmulator } from "../emulator/federation.ts";
import { destinationFor, federationEndpoint, parseDuration, partitionOf } from "../lib/console.ts";
import { StshError } from "../lib/errors.ts";
import { assertNoSecrets, type World, world } from "./support/world.ts";

interface Ctx {
  w: World;
  fed: FederationEmulator;
  env: Record<string, string>;
}

function scenario(name: string, fn: (c: Ctx) => Promise<void>, ignore = false) {
  Deno.test({ name, ignore }, async () => {
    const w = await world();
    const fed = await FederationEmulator.start({ sts: w.emu });
    try {
      await fn({ w, fed, env: { STSH_FEDERATION_URL: fed.url } });
    } finally {
      await fed.close();
      await w.close();
    }
  });
}

/** The role session stsh holds for `profile` (a cache hit: no code, no STS call). */
async function roleCreds(c: Ctx, profile: string) {
  const r = await c.w.run(["env", profile, "--format", "json"]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as {
    AccessKeyId: string;
    SecretAccessKey: string;
    SessionToken: string;
  };
}

function oneLinePlusHint(stderr: string) {
  const lines = stderr.trimEnd().split("\n");
  assert.ok(lines.length <= 2, `one line and a hint, got:\n${stderr}`);
  assert.match(lines[0], /^stsh: /);
  assert.doesNotMatch(stderr, /\bat .*\.ts:\d+/, "no stack trace");
}

scenario(
  "console a --print: an Action=login URL with the endpoint's token, the default Destination, no secret",
  async (c) => {
    await c.w.primeCode();
    const r = await c.w.run(["console", "a", "--print"], { env: c.env });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split("\n");
    assert.equal(lines.length, 2, "one line on stdout: the URL");
    const url = new URL(lines[0]);
    assert.equal(url.origin + url.pathname, c.fed.url);
    assert.equal(url.searchParams.get("Action"), "login");
    assert.equal(url.searchParams.get("Issuer"), "stsh");
    assert.equal(
      url.searchParams.get("Destination"),
      "https://console.aws.amazon.com/console/home?region=us-east-1",
    );
    assert.equal(c.fed.tokens.length, 1);
    assert.equal(url.searchParams.get("SigninToken"), c.fed.tokens[0].token);
    assert.match(c.fed.tokens[0].arn, /:assumed-role\/a\/stsh-\d+$/);
    const call = c.fed.calls.find((x) => x.action === "getSigninToken")!;
    assert.equal(call.status, 200);
    assert.equal(call.sessionDuration, undefined, "no SessionDuration without --duration");
    assert.match(r.stderr, /sign-in URL for 'a' .*until \d\d:\d\d/);

    // The secrets sent were the role session's; none of them is in any output.
    const role = await roleCreds(c, "a");
    assert.equal(c.fed.tokens[0].accessKeyId, role.AccessKeyId);
    const all = r.stdout + r.stderr;
    assertNoSecrets(all, role.SecretAccessKey, role.SessionToken, c.w.alice.secretAccessKey);
    assert.ok(!all.includes(role.AccessKeyId), "not even the access key id");

    // The URL signs in once: the stand-in redirects to the Destination, then refuses.
    const first = await fetch(url, { redirect: "manual" });
    await first.body?.cancel();
    assert.equal(first.status, 302);
    assert.equal(first.headers.get("location"), url.searchParams.get("Destination"));
    const again = await fetch(url, { redirect: "manual" });
    await again.body?.cancel();
    assert.equal(again.status, 400);
  },
);

scenario("--destination: a full URL, or a path on the profile's console", async (c) => {
  await c.w.primeCode();
  const full = "https://console.aws.amazon.com/s3/buckets?region=eu-west-1";
  const r1 = await c.w.run(["console", "a", "--print", "--destination", full], { env: c.env });
  assert.equal(r1.code, 0, r1.stderr);
  assert.equal(new URL(r1.stdout.trim()).searchParams.get("Destination"), full);
  const r2 = await c.w.run(["console", "a", "--print", "--destination", "/ec2/home"], {
    env: c.env,
  });
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(
    new URL(r2.stdout.trim()).searchParams.get("Destination"),
    "https://console.aws.amazon.com/ec2/home",
  );
  assert.equal(c.fed.tokens.length, 2);
});

scenario("a bad --destination is refused before any MFA code", async (c) => {
  await c.w.primeCode();
  const r = await c.w.run(
    ["console", "a", "--print", "--destination", "http://example.com/"],
    { env: c.env },
  );
  assert.equal(r.code, 2);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /--destination must be an https:\/\/ URL/);
  assert.equal(await c.w.codeRequests(), 0);
  assert.equal(c.fed.calls.length, 0);
});

scenario("no MFA code beyond the first: console reuses the engine's cache", async (c) => {
  await c.w.primeCode();
  assert.equal((await c.w.run(["env", "a"])).code, 0);
  assert.equal(await c.w.codeRequests(), 1);
  const a = await c.w.run(["console", "a", "--print"], { env: c.env });
  assert.equal(a.code, 0, a.stderr);
  const b = await c.w.run(["console", "b", "--print"], { env: c.env });
  assert.equal(b.code, 0, b.stderr);
  assert.equal(await c.w.codeRequests(), 1, "no second code");
  assert.equal(c.w.emu.counts.GetSessionToken, 1);
  assert.equal(c.w.emu.counts.AssumeRole, 2, "a from the cache, b minted from the MFA session");
  assert.equal(c.fed.tokens.length, 2);
});

scenario(
  "--duration reaches the endpoint for a role assumed straight from the keys",
  async (c) => {
    await c.w.primeCode();
    // 'long' asks for 7200 s, so the engine assumes it from alice's keys with a code.
    const r = await c.w.run(["console", "long", "--print", "--duration", "2h30m"], {
      env: c.env,
    });
    assert.equal(r.code, 0, r.stderr);
    const call = c.fed.calls.find((x) => x.action === "getSigninToken")!;
    assert.equal(call.status, 200, call.reason);
    assert.equal(call.sessionDuration, "9000");
    const t = c.fed.tokens[0];
    assert.equal(new URL(r.stdout.trim()).searchParams.get("SigninToken"), t.token);
    assert.equal(t.consoleUntil - t.issuedAt, 9000 * 1000);
  },
);

scenario(
  "--duration for a role from the MFA session is refused before any code, with the way out",
  async (c) => {
    await c.w.primeCode();
    const r = await c.w.run(["console", "a", "--print", "--duration", "1h"], { env: c.env });
    assert.equal(r.code, 2);
    assert.equal(r.stdout, "");
    oneLinePlusHint(r.stderr);
    assert.match(r.stderr, /--duration cannot be used with 'a'.*the MFA session/);
    assert.match(r.stderr, /set duration_seconds above 3600/);
    assert.equal(await c.w.codeRequests(), 0);
    assert.equal(c.fed.calls.length, 0);
    // A chain (role from a role) is refused too.
    const chain = await c.w.run(["console", "chain", "--print", "--duration", "1h"], {
      env: c.env,
    });
    assert.equal(chain.code, 2);
    assert.match(chain.stderr, /assumed from temporary credentials \(another role\)/);
  },
);

scenario("--duration outside 15m..12h is refused", async (c) => {
  for (const d of ["5m", "13h", "soon", "0"]) {
    const r = await c.w.run(["console", "long", "--print", "--duration", d], { env: c.env });
    assert.equal(r.code, 2, d);
    assert.match(r.stderr, /is not a console session length from 15m to 12h/);
  }
  assert.equal(await c.w.codeRequests(), 0);
});

scenario("a profile that is not a role is refused with the reason and what to do", async (c) => {
  await c.w.primeCode();
  const me = await c.w.run(["console", "me", "--print"], { env: c.env });
  assert.equal(me.code, 2);
  assert.equal(me.stdout, "");
  oneLinePlusHint(me.stderr);
  assert.match(me.stderr, /Profile 'me' is not a role: the AWS console takes only a role session/);
  assert.match(me.stderr, /GetSessionToken session .* cannot be federated into it/);
  assert.match(me.stderr, /source_profile = me.*IAM user's password/);
  const robot = await c.w.run(["console", "robot", "--print"], { env: c.env });
  assert.equal(robot.code, 2);
  assert.match(robot.stderr, /Profile 'robot' is not a role/);
  assert.equal(await c.w.codeRequests(), 0, "no code spent on a refusal");
  assert.equal(c.w.emu.calls.length, 0);
  assert.equal(c.fed.calls.length, 0);
});

scenario("an endpoint that fails: one clear line, no secret", async (c) => {
  await c.w.primeCode();
  c.fed.failNext("ServerError");
  const r = await c.w.run(["console", "a", "--print"], { env: c.env });
  assert.equal(r.code, 1);
  assert.equal(r.stdout, "");
  oneLinePlusHint(r.stderr);
  assert.match(r.stderr, /the AWS federation endpoint \(127\.0\.0\.1:\d+\) failed \(HTTP 500\)/);
  const role = await roleCreds(c, "a");
  assertNoSecrets(r.stderr, role.SecretAccessKey, role.SessionToken);
});

scenario("an endpoint that hangs: one clear line when the deadline passes", async (c) => {
  await c.w.primeCode();
  c.fed.failNext("Hang");
  const t0 = Date.now();
  const r = await c.w.run(["console", "a", "--print"], {
    env: { ...c.env, STSH_FEDERATION_TIMEOUT: "1" },
  });
  assert.equal(r.code, 1);
  oneLinePlusHint(r.stderr);
  assert.match(
    r.stderr,
    /the AWS federation endpoint \(127\.0\.0\.1:\d+\) did not answer within 1 s/,
  );
  assert.ok(Date.now() - t0 < 30_000);
});

scenario("an endpoint that is down: one clear line; --debug shows no secret", async (c) => {
  await c.w.primeCode();
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const r = await c.w.run(["--debug", "console", "a", "--print"], {
    env: { STSH_FEDERATION_URL: `http://127.0.0.1:${port}/federation` },
  });
  assert.equal(r.code, 1);
  assert.equal(r.stdout, "");
  assert.match(
    r.stderr,
    /Cannot reach the AWS federation endpoint \(127\.0\.0\.1:\d+\): connection refused/,
  );
  const role = await roleCreds(c, "a");
  assertNoSecrets(r.stderr, role.SecretAccessKey, role.SessionToken);
  assert.ok(!r.stderr.includes("Session="), "the request URL is never shown");
});

scenario("plain http to anything but loopback is refused before any MFA code", async (c) => {
  await c.w.primeCode();
  const r = await c.w.run(["console", "a", "--print"], {
    env: { STSH_FEDERATION_URL: "http://signin.example.com/federation" },
  });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /STSH_FEDERATION_URL must be an https:\/\/ URL/);
  assert.equal(await c.w.codeRequests(), 0);
});

scenario("a role session the endpoint refuses (expired at AWS): how to recover", async (c) => {
  await c.w.primeCode();
  assert.equal((await c.w.run(["env", "a"])).code, 0);
  c.w.emu.advance(2 * 3600); // stsh's cache still believes in it; AWS does not
  const r = await c.w.run(["console", "a", "--print"], { env: c.env });
  assert.equal(r.code, 1);
  oneLinePlusHint(r.stderr);
  assert.match(r.stderr, /refused the role session of 'a' \(HTTP 400\)/);
  assert.match(r.stderr, /stsh clear a/);
  assert.equal(c.fed.calls[0].reason, "expired credentials");
});

// ---- opening the browser (Linux: xdg-open) ----

const linux = Deno.build.os === "linux";

async function fakeBin(c: Ctx, script: string): Promise<string> {
  const dir = c.w.sb.path("fakebin");
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(join(dir, "xdg-open"), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
  await Deno.chmod(join(dir, "xdg-open"), 0o755);
  return dir;
}

scenario("console a: the URL goes to xdg-open as an argument, never to the output", async (c) => {
  await c.w.primeCode();
  const got = c.w.sb.path("opened.txt");
  const dir = await fakeBin(c, `printf '%s\\n' "$#" "$1" > ${got}`);
  const r = await c.w.run(["console", "a"], {
    env: { ...c.env, PATH: `${dir}:${c.w.env.PATH}` },
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /opened the AWS console as 'a' in your browser/);
  const [argc, url] = (await Deno.readTextFile(got)).split("\n");
  assert.equal(argc, "1");
  assert.equal(new URL(url).searchParams.get("SigninToken"), c.fed.tokens[0].token);
  assert.ok(!r.stderr.includes(c.fed.tokens[0].token), "the URL is not logged");
}, !linux);

scenario("an opener that fails: one line that suggests --print", async (c) => {
  await c.w.primeCode();
  const dir = await fakeBin(c, "echo 'xdg-open: no method available' >&2; exit 3");
  const r = await c.w.run(["console", "a"], {
    env: { ...c.env, PATH: `${dir}:${c.w.env.PATH}` },
  });
  assert.equal(r.code, 1);
  assert.equal(r.stdout, "");
  oneLinePlusHint(r.stderr);
  assert.match(r.stderr, /the browser opener \(xdg-open\) failed \(exit code 3\)/);
  assert.match(r.stderr, /stsh console a --print/);
  assert.doesNotMatch(r.stderr, /no method available/, "the opener's own output is dropped");
}, !linux);

scenario("no opener at all: one line that suggests --print", async (c) => {
  await c.w.primeCode();
  assert.equal((await c.w.run(["env", "a"])).code, 0); // mfa_process needs cat from PATH
  // A PATH with only what the test's runner and the launcher need.
  const dir = c.w.sb.path("bare");
  await Deno.mkdir(dir);
  for (const tool of ["deno", "readlink", "setsid"]) {
    const real = new TextDecoder().decode(
      (await new Deno.Command("/bin/sh", { args: ["-c", `command -v ${tool}`] }).output())
        .stdout,
    ).trim();
    await Deno.symlink(real, join(dir, tool));
  }
  const r = await c.w.run(["console", "a"], { env: { ...c.env, PATH: dir } });
  assert.equal(r.code, 1, r.stderr);
  oneLinePlusHint(r.stderr);
  assert.match(r.stderr, /Cannot open a browser: there is no xdg-open on PATH/);
  assert.match(r.stderr, /stsh console a --print/);
}, !linux);

// ---- the federation stand-in's own rules ----

Deno.test("federation stand-in: only role sessions the STS emulator issued and that live", async () => {
  const w = await world();
  const fed = await FederationEmulator.start({ sts: w.emu });
  const clients: STSClient[] = [];
  const sts = (
    credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
  ) => {
    const s = new STSClient({
      region: "us-east-1",
      endpoint: w.emu.url,
      credentials,
      maxAttempts: 1,
    });
    clients.push(s);
    return s;
  };
  const ask = async (session: unknown, duration?: number) => {
    const u = new URL(fed.url);
    u.searchParams.set("Action", "getSigninToken");
    if (duration) u.searchParams.set("SessionDuration", String(duration));
    u.searchParams.set("Session", typeof session === "string" ? session : JSON.stringify(session));
    const res = await fetch(u);
    const body = await res.text();
    return { status: res.status, body, reason: fed.calls.at(-1)!.reason };
  };
  const asSession = (
    k: { AccessKeyId?: string; SecretAccessKey?: string; SessionToken?: string },
  ) => ({
    sessionId: k.AccessKeyId,
    sessionKey: k.SecretAccessKey,
    sessionToken: k.SessionToken,
  });
  try {
    const keys = { accessKeyId: w.plain.accessKeyId, secretAccessKey: w.plain.secretAccessKey };
    const direct = (await sts(keys).send(
      new AssumeRoleCommand({ RoleArn: w.roles.open.arn, RoleSessionName: "direct" }),
    )).Credentials!;
    const fromDirect = {
      accessKeyId: direct.AccessKeyId!,
      secretAccessKey: direct.SecretAccessKey!,
      sessionToken: direct.SessionToken!,
    };
    const chained = (await sts(fromDirect).send(
      new AssumeRoleCommand({ RoleArn: w.roles.open.arn, RoleSessionName: "chained" }),
    )).Credentials!;
    const userSession = (await sts(keys).send(new GetSessionTokenCommand({}))).Credentials!;

    const ok = await ask(asSession(direct));
    assert.equal(ok.status, 200, ok.reason);
    assert.match(JSON.parse(ok.body).SigninToken, /^[\w-]{100,}$/);
    assert.equal((await ask(asSession(direct), 43200)).status, 200);
    assert.equal((await ask(asSession(chained))).status, 200, "chained, without a duration");

    const refusals: [unknown, number | undefined, string][] = [
      [
        asSession(chained),
        3600,
        "SessionDuration with a role session assumed from temporary credentials",
      ],
      [asSession(direct), 600, "SessionDuration is not a number of seconds from 900 to 43200"],
      [asSession(direct), 43201, "SessionDuration is not a number of seconds from 900 to 43200"],
      [asSession(userSession), undefined, "GetSessionToken credentials cannot sign in"],
      [
        { sessionId: keys.accessKeyId, sessionKey: keys.secretAccessKey, sessionToken: "" },
        undefined,
        "long-term keys, not temporary credentials",
      ],
      [
        { ...asSession(direct), sessionKey: "wrong" },
        undefined,
        "credentials the STS emulator did not issue",
      ],
      [
        { ...asSession(direct), sessionToken: "forged" },
        undefined,
        "credentials the STS emulator did not issue",
      ],
      ["{not json", undefined, "Session is not JSON"],
    ];
    for (const [session, duration, reason] of refusals) {
      const r = await ask(session, duration);
      assert.equal(r.status, 400, reason);
      assert.equal(r.reason, reason);
      assert.match(r.body, /Bad Request/);
    }
    w.emu.advance(3601);
    const late = await ask(asSession(direct));
    assert.equal(late.status, 400);
    assert.equal(late.reason, "expired credentials");
    // Nothing secret was recorded.
    assertNoSecrets(JSON.stringify(fed.calls), direct.SecretAccessKey, direct.SessionToken);
  } finally {
    for (const s of clients) s.destroy();
    await fed.close();
    await w.close();
  }
});

// ---- pure parts ----

Deno.test("parseDuration: seconds or h/m/s, 15m..12h", () => {
  assert.equal(parseDuration("3600"), 3600);
  assert.equal(parseDuration("900s"), 900);
  assert.equal(parseDuration("90m"), 5400);
  assert.equal(parseDuration("1h30m"), 5400);
  assert.equal(parseDuration("12h"), 43200);
  for (const bad of ["", "899", "12h1s", "1d", "-1h", "1.5h", "h"]) {
    assert.throws(() => parseDuration(bad), StshError, bad);
  }
});

Deno.test("partitions: the sign-in endpoint and console come from the role ARN", () => {
  assert.equal(partitionOf("arn:aws-cn:iam::123456789012:role/x"), "aws-cn");
  assert.equal(federationEndpoint("aws", {}).href, "https://signin.aws.amazon.com/federation");
  assert.equal(federationEndpoint("aws-cn", {}).href, "https://signin.amazonaws.cn/federation");
  assert.equal(
    federationEndpoint("aws-us-gov", {}).href,
    "https://signin.amazonaws-us-gov.com/federation",
  );
  assert.throws(() => federationEndpoint("aws-iso", {}), /not 'aws-iso'/);
  assert.equal(
    destinationFor("aws-cn", "cn-north-1", undefined),
    "https://console.amazonaws.cn/console/home?region=cn-north-1",
  );
  assert.equal(
    destinationFor("aws-us-gov", "us-gov-west-1", undefined),
    "https://console.amazonaws-us-gov.com/console/home?region=us-gov-west-1",
  );
  // A region of another partition is left out rather than sent to the wrong console.
  assert.equal(
    destinationFor("aws", "cn-north-1", undefined),
    "https://console.aws.amazon.com/console/home",
  );
  assert.throws(
    () => destinationFor("aws-iso", "us-iso-east-1", undefined),
    (e) => e instanceof StshError && /--destination/.test(e.hint ?? ""),
  );
  assert.equal(
    destinationFor("aws-iso", "x", "https://console.example/home"),
    "https://console.example/home",
  );
});

Deno.test("STSH_FEDERATION_URL: https, or plain http to loopback only", () => {
  const at = (u: string) => federationEndpoint("aws", { STSH_FEDERATION_URL: u }).href;
  assert.equal(at("https://signin.example/federation?x=1"), "https://signin.example/federation");
  assert.equal(at("http://127.0.0.1:8080/federation"), "http://127.0.0.1:8080/federation");
  assert.equal(at("http://[::1]:8080/federation"), "http://[::1]:8080/federation");
  assert.equal(at("http://localhost/federation"), "http://localhost/federation");
  for (const bad of ["http://10.0.0.1/federation", "http://127.0.0.1.evil/f", "ftp://x/", "nope"]) {
    assert.throws(() => at(bad), StshError, bad);
  }
  assert.equal(
    federationEndpoint("aws-iso", { STSH_FEDERATION_URL: "https://x/federation" }).href,
    "https://x/federation",
  );
});
