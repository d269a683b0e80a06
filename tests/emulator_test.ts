import assert from "node:assert/strict";
import {
  AssumeRoleCommand,
  type Credentials,
  GetCallerIdentityCommand,
  GetSessionTokenCommand,
  type GetSessionTokenCommandInput,
  STSClient,
  type STSClientConfig,
} from "@aws-sdk/client-sts";
import { StsEmulator, type User } from "../emulator/sts.ts";
import { base32Decode, base32Encode, randomBase32Secret, totp } from "../emulator/totp.ts";

// ---- helpers ----

type Creds = { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
interface Ctx {
  emu: StsEmulator;
  sts: (credentials: Creds, extra?: STSClientConfig) => STSClient;
}

/** A test with a fresh emulator; every client it makes is destroyed and the server closed. */
function emuTest(name: string, fn: (ctx: Ctx) => Promise<void>, ignore = false) {
  Deno.test({ name, ignore }, async () => {
    const emu = await StsEmulator.start();
    const clients: STSClient[] = [];
    const sts = (credentials: Creds, extra: STSClientConfig = {}) => {
      const c = new STSClient({
        region: "us-east-1",
        endpoint: emu.url,
        credentials,
        maxAttempts: 1,
        ...extra,
      });
      clients.push(c);
      return c;
    };
    try {
      await fn({ emu, sts });
    } finally {
      for (const c of clients) c.destroy();
      await emu.close();
    }
  });
}

const longTerm = (u: User): Creds => ({
  accessKeyId: u.accessKeyId,
  secretAccessKey: u.secretAccessKey,
});
const session = (c: Credentials | undefined): Creds => ({
  accessKeyId: c!.AccessKeyId!,
  secretAccessKey: c!.SecretAccessKey!,
  sessionToken: c!.SessionToken!,
});

interface SdkError extends Error {
  $fault?: string;
  $metadata?: { httpStatusCode?: number; attempts?: number };
}

/** Awaits a call that must fail with `code` (and `message`/`status` if given). */
async function fails(
  call: Promise<unknown>,
  code: string,
  message?: string | RegExp,
  status?: number,
): Promise<SdkError> {
  const err = await call.then(
    () => assert.fail(`expected ${code}, but the call succeeded`),
    (e: SdkError) => e,
  );
  assert.equal(err.name, code, `expected ${code}, got ${err.name}: ${err.message}`);
  if (typeof message === "string") assert.equal(err.message, message);
  else if (message) assert.match(err.message, message);
  if (status !== undefined) assert.equal(err.$metadata?.httpStatusCode, status);
  return err;
}

/** A 6-digit code that is valid in none of the steps the emulator accepts now. */
async function wrongCode(emu: StsEmulator, u: User): Promise<string> {
  const valid = await Promise.all([-1, 0, 1].map((s) => emu.code(u, s)));
  for (let n = 0;; n++) {
    const c = String((Number(valid[1]) + 1 + n) % 1e6).padStart(6, "0");
    if (!valid.includes(c)) return c;
  }
}

/** Expiration equals the virtual now plus `seconds` (to the second). */
function assertExpiresIn(emu: StsEmulator, expiration: Date | undefined, seconds: number) {
  assert.ok(expiration instanceof Date, "Expiration is a Date");
  const delta = expiration.getTime() - (emu.now() + seconds * 1000);
  assert.ok(Math.abs(delta) < 2000, `Expiration off by ${delta} ms`);
}

const MFA_BAD_CODE = "MultiFactorAuthentication failed with invalid MFA one time pass code. ";
const MFA_BAD_SERIAL =
  "MultiFactorAuthentication failed, unable to validate MFA code.  Please verify your MFA serial number is valid and associated with this user.";
const BAD_SIGNATURE =
  "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
const EXPIRED = "The security token included in the request is expired";
const INVALID_TOKEN = "The security token included in the request is invalid.";
const CHAINING =
  "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.";
const ROLE_MAX = "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.";
const notAuthorized = (caller: string, role: string) =>
  `User: ${caller} is not authorized to perform: sts:AssumeRole on resource: ${role}`;

// ---- TOTP ----

Deno.test("totp: RFC 6238 SHA-1 test vectors", async () => {
  const seed = base32Encode(new TextEncoder().encode("12345678901234567890"));
  assert.equal(seed, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
  const vectors: [number, string][] = [
    [59, "94287082"],
    [1111111109, "07081804"],
    [1111111111, "14050471"],
    [1234567890, "89005924"],
    [2000000000, "69279037"],
    [20000000000, "65353130"],
  ];
  for (const [t, code8] of vectors) {
    assert.equal(await totp(seed, t * 1000, 8), code8, `T=${t}, 8 digits`);
    assert.equal(await totp(seed, t * 1000), code8.slice(2), `T=${t}, 6 digits`);
  }
  // Same 30-s step, same code; next step, another code.
  assert.equal(await totp(seed, 30_000), await totp(seed, 59_999));
  assert.notEqual(await totp(seed, 59_999), await totp(seed, 60_000));
});

Deno.test("totp: base32 decoding and random secrets", () => {
  const bytes = new TextEncoder().encode("12345678901234567890");
  assert.deepEqual(base32Decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), bytes);
  assert.deepEqual(base32Decode("gezd gnbv-gy3t qojq gezdgnbvgy3tqojq===="), bytes);
  assert.deepEqual(base32Decode("MZXW6YQ="), new TextEncoder().encode("foob"));
  assert.throws(() => base32Decode("GEZD1"), /invalid base32 character/);
  const s = randomBase32Secret();
  assert.match(s, /^[A-Z2-7]{32}$/);
  assert.equal(base32Decode(s).length, 20);
  assert.notEqual(randomBase32Secret(), s);
});

// ---- GetSessionToken ----

emuTest("GetSessionToken with a valid code gives session credentials that work", async (t) => {
  const { emu } = t;
  const alice = emu.addUser({ name: "alice" });
  assert.match(alice.accessKeyId, /^AKIA[A-Z0-9]{16}$/);
  assert.equal(alice.mfaSerial, "arn:aws:iam::123456789012:mfa/alice");
  const out = await t.sts(longTerm(alice)).send(
    new GetSessionTokenCommand({ SerialNumber: alice.mfaSerial, TokenCode: await emu.code(alice) }),
  );
  const c = out.Credentials!;
  assert.match(c.AccessKeyId!, /^ASIA[A-Z0-9]{16}$/);
  assert.ok(c.SecretAccessKey && c.SessionToken);
  assertExpiresIn(emu, c.Expiration, 43200);
  assert.match(out.$metadata.requestId!, /^[0-9a-f-]{36}$/);

  const who = await t.sts(session(c)).send(new GetCallerIdentityCommand({}));
  assert.equal(who.Arn, "arn:aws:iam::123456789012:user/alice");
  assert.equal(who.Account, "123456789012");
  assert.match(who.UserId!, /^AIDA/);
  const whoLong = await t.sts(longTerm(alice)).send(new GetCallerIdentityCommand({}));
  assert.equal(whoLong.UserId, who.UserId);

  // DurationSeconds is honoured, and no MFA is needed for a plain session.
  const short = await t.sts(longTerm(alice)).send(
    new GetSessionTokenCommand({ DurationSeconds: 900 }),
  );
  assertExpiresIn(emu, short.Credentials!.Expiration, 900);
  assert.deepEqual(emu.counts, { GetSessionToken: 2, GetCallerIdentity: 2 });
});

emuTest("GetSessionToken: reused, wrong and stale codes, wrong serial", async (t) => {
  const { emu } = t;
  const alice = emu.addUser({ name: "alice" });
  const bob = emu.addUser({ name: "bob", account: "210987654321" });
  const client = t.sts(longTerm(alice));
  const gst = (SerialNumber: string | undefined, TokenCode: string) =>
    client.send(new GetSessionTokenCommand({ SerialNumber, TokenCode }));

  const code = await emu.code(alice);
  await gst(alice.mfaSerial, code);
  await fails(gst(alice.mfaSerial, code), "AccessDenied", MFA_BAD_CODE, 403);
  await fails(gst(alice.mfaSerial, await wrongCode(emu, alice)), "AccessDenied", MFA_BAD_CODE, 403);
  await fails(gst(bob.mfaSerial, await emu.code(bob)), "AccessDenied", MFA_BAD_SERIAL, 403);
  await fails(
    gst("arn:aws:iam::123456789012:mfa/nobody", await emu.code(alice, 1)),
    "AccessDenied",
    MFA_BAD_SERIAL,
  );
  await fails(gst(undefined, await emu.code(alice, 1)), "AccessDenied", MFA_BAD_SERIAL);

  // The next step's code is accepted (clock drift), and stays used when its step comes.
  const next = await emu.code(alice, 1);
  await gst(alice.mfaSerial, next);
  emu.advance(30); // `next` is now the current (or, at a step boundary, the previous) code
  await fails(gst(alice.mfaSerial, next), "AccessDenied", MFA_BAD_CODE);
  // Two steps old is too old.
  await fails(gst(alice.mfaSerial, await emu.code(alice, -2)), "AccessDenied", MFA_BAD_CODE);

  // Two concurrent calls with one fresh code: exactly one wins.
  emu.advance(90);
  const fresh = await emu.code(alice);
  const both = await Promise.allSettled([
    gst(alice.mfaSerial, fresh),
    gst(alice.mfaSerial, fresh),
  ]);
  assert.deepEqual(both.map((r) => r.status).sort(), ["fulfilled", "rejected"]);
  assert.equal(emu.counts.GetSessionToken, 3);
});

emuTest("GetSessionToken: validation errors, session callers, short lifetimes", async (t) => {
  const { emu } = t;
  const alice = emu.addUser({ name: "alice" });
  const client = t.sts(longTerm(alice));
  const gst = (input: GetSessionTokenCommandInput) =>
    client.send(new GetSessionTokenCommand(input));

  await fails(
    gst({ SerialNumber: alice.mfaSerial, TokenCode: "12345" }),
    "ValidationError",
    "1 validation error detected: Value '12345' at 'tokenCode' failed to satisfy constraint: Member must have length greater than or equal to 6",
    400,
  );
  await fails(
    gst({ SerialNumber: alice.mfaSerial, TokenCode: "12a456" }),
    "ValidationError",
    "1 validation error detected: Value '12a456' at 'tokenCode' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\d]*",
  );
  await fails(
    gst({ DurationSeconds: 899 }),
    "ValidationError",
    "1 validation error detected: Value '899' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900",
  );
  await fails(
    gst({ DurationSeconds: 129601, TokenCode: "1", SerialNumber: alice.mfaSerial }),
    "ValidationError",
    "2 validation errors detected: Value '129601' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 129600; Value '1' at 'tokenCode' failed to satisfy constraint: Member must have length greater than or equal to 6",
  );
  const max = await gst({ DurationSeconds: 129600 });
  assertExpiresIn(emu, max.Credentials!.Expiration, 129600);

  await fails(
    t.sts(session(max.Credentials)).send(new GetSessionTokenCommand({})),
    "AccessDenied",
    "Cannot call GetSessionToken with session credentials",
    403,
  );

  const carol = emu.addUser({ name: "carol", sessionLifetimeSeconds: 60, mfa: false });
  assert.equal(carol.mfaSerial, undefined);
  const out = await t.sts(longTerm(carol)).send(
    new GetSessionTokenCommand({ DurationSeconds: 3600 }),
  );
  assertExpiresIn(emu, out.Credentials!.Expiration, 60);
  await fails(
    t.sts(longTerm(carol)).send(
      new GetSessionTokenCommand({ SerialNumber: alice.mfaSerial, TokenCode: "123456" }),
    ),
    "AccessDenied",
    MFA_BAD_SERIAL,
  );
});

// ---- authentication ----

emuTest("SigV4: wrong secret, unknown key, bad token and a skewed clock are refused", async (t) => {
  const { emu } = t;
  const alice = emu.addUser({ name: "alice" });
  const gci = (creds: Creds, extra?: STSClientConfig) =>
    t.sts(creds, extra).send(new GetCallerIdentityCommand({}));

  const err = await fails(
    gci({ ...longTerm(alice), secretAccessKey: alice.secretAccessKey.slice(1) + "x" }),
    "SignatureDoesNotMatch",
    BAD_SIGNATURE,
    403,
  );
  assert.equal(err.$metadata?.attempts, 1);
  await fails(
    gci({ accessKeyId: "AKIAUNKNOWNUNKNOWN00", secretAccessKey: alice.secretAccessKey }),
    "InvalidClientTokenId",
    INVALID_TOKEN,
    403,
  );
  await fails(gci({ ...longTerm(alice), sessionToken: "bogus" }), "InvalidClientTokenId");

  const out = await t.sts(longTerm(alice)).send(new GetSessionTokenCommand({}));
  const s = session(out.Credentials);
  await fails(gci({ ...s, sessionToken: s.sessionToken + "x" }), "InvalidClientTokenId");
  await fails(gci({ ...s, sessionToken: undefined }), "InvalidClientTokenId");
  await fails(gci({ ...s, secretAccessKey: alice.secretAccessKey }), "SignatureDoesNotMatch");
  // Signed 20 minutes in the past (real time; the virtual clock does not matter).
  emu.advance(600);
  await fails(
    gci(s, { systemClockOffset: -20 * 60_000 }),
    "SignatureDoesNotMatch",
    /^Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z \(\d{8}T\d{6}Z - 15 min\.\)$/,
  );
  await fails(
    gci(s, { systemClockOffset: 20 * 60_000 }),
    "SignatureDoesNotMatch",
    /^Signature not yet current: /,
  );
  assert.equal((await gci(s)).Arn, alice.arn);

  // A body changed after signing (same length, so the signed content-length still fits).
  const tampered = t.sts(longTerm(alice));
  tampered.middlewareStack.add(
    (next) => (args) => {
      const r = args.request as { body: string };
      r.body = r.body.replace("DurationSeconds=3600", "DurationSeconds=3601");
      return next(args);
    },
    { step: "deserialize" },
  );
  await fails(
    tampered.send(new GetSessionTokenCommand({ DurationSeconds: 3600 })),
    "SignatureDoesNotMatch",
    "The provided 'x-amz-content-sha256' header does not match what was computed.",
  );

  assert.deepEqual(emu.counts, { GetSessionToken: 1, GetCallerIdentity: 1 });
  assert.deepEqual(
    emu.calls.map((c) => c.code ?? c.status),
    [
      "SignatureDoesNotMatch",
      "InvalidClientTokenId",
      "InvalidClientTokenId",
      200,
      "InvalidClientTokenId",
      "InvalidClientTokenId",
      "SignatureDoesNotMatch",
      "SignatureDoesNotMatch",
      "SignatureDoesNotMatch",
      200,
      "SignatureDoesNotMatch",
    ],
  );
  assert.equal(emu.calls[0].accessKeyId, alice.accessKeyId);
});

emuTest("raw HTTP: missing auth, bad action or version, XML and headers", async ({ emu }) => {
  const post = async (body: string, path = "/") => {
    const res = await fetch(emu.url + path, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body,
    });
    return { res, text: await res.text() };
  };
  const { res, text } = await post("Action=GetCallerIdentity&Version=2011-06-15");
  assert.equal(res.status, 403);
  assert.equal(res.headers.get("content-type"), "text/xml");
  const requestId = res.headers.get("x-amzn-requestid")!;
  assert.match(requestId, /^[0-9a-f-]{36}$/);
  assert.ok(
    Math.abs(Date.parse(res.headers.get("date")!) - Date.now()) < 5000,
    "Date is real time",
  );
  assert.equal(
    text.replace(/\n/g, ""),
    `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>` +
      `<Code>MissingAuthenticationToken</Code><Message>Request is missing Authentication Token</Message>` +
      `</Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
  );

  const bad = await post("Action=GetFederationToken&Version=2011-06-15&Name=x");
  assert.equal(bad.res.status, 400);
  assert.match(
    bad.text.replace(/\n/g, ""),
    /<Code>InvalidAction<\/Code><Message>Could not find operation GetFederationToken for version 2011-06-15<\/Message>/,
  );
  const oldVersion = await post("Action=GetCallerIdentity&Version=2010-01-01", "/some/base/");
  assert.equal(oldVersion.res.status, 400);
  assert.match(oldVersion.text, /for version 2010-01-01</);

  const malformed = await fetch(emu.url + "/?Action=GetCallerIdentity&Version=2011-06-15", {
    headers: { authorization: "AWS4-HMAC-SHA256 nonsense" },
  });
  assert.equal(malformed.status, 400);
  assert.match(await malformed.text(), /<Code>IncompleteSignature<\/Code>/);

  // Control routes are off in library mode, and never reach the STS handler.
  const control = await fetch(emu.url + "/__control/counts");
  assert.equal(control.status, 404);
  await control.body?.cancel();
  assert.deepEqual(
    emu.calls.map((c) => [c.action, c.status, c.code]),
    [
      ["GetCallerIdentity", 403, "MissingAuthenticationToken"],
      ["GetFederationToken", 400, "InvalidAction"],
      ["GetCallerIdentity", 400, "InvalidAction"],
      ["GetCallerIdentity", 400, "IncompleteSignature"],
    ],
  );
});

emuTest("GET with query parameters, `+` in form bodies, charset, base paths", async (t) => {
  const { emu } = t;
  const alice = emu.addUser({ name: "alice" });
  const role = emu.addRole({ name: "dev" });
  type Req = {
    method: string;
    body?: string;
    query?: Record<string, string>;
    headers: Record<string, string>;
  };
  /** Rewrites the SDK's request before it is signed, so the real signer signs the variant. */
  const rewrite = (client: STSClient, change: (r: Req) => void) => {
    client.middlewareStack.add(
      (next) => (args) => {
        change(args.request as Req);
        return next(args);
      },
      { step: "build", priority: "high" },
    );
    return client;
  };

  const asGet = rewrite(t.sts(longTerm(alice)), (r) => {
    r.method = "GET";
    r.query = Object.fromEntries(new URLSearchParams(r.body));
    r.body = undefined;
    for (const h of Object.keys(r.headers)) {
      if (/^content-(type|length)$/i.test(h)) delete r.headers[h];
    }
  });
  assert.equal((await asGet.send(new GetCallerIdentityCommand({}))).Arn, alice.arn);
  const out = await asGet.send(
    new GetSessionTokenCommand({ SerialNumber: alice.mfaSerial, TokenCode: await emu.code(alice) }),
  );
  assert.match(out.Credentials!.AccessKeyId!, /^ASIA/);

  const plusAndCharset = rewrite(
    t.sts(longTerm(alice), { endpoint: emu.url + "/some/base" }),
    (r) => {
      r.body = r.body!.replace(/%20/g, "+");
      for (const h of Object.keys(r.headers)) {
        if (/^content-type$/i.test(h)) r.headers[h] += "; charset=utf-8";
      }
    },
  );
  await fails(
    plusAndCharset.send(new AssumeRoleCommand({ RoleArn: role.arn, RoleSessionName: "a b" })),
    "ValidationError",
    "1 validation error detected: Value 'a b' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*",
  );
  const ok = await plusAndCharset.send(
    new AssumeRoleCommand({ RoleArn: role.arn, RoleSessionName: "a.b", ExternalId: "ext-1" }),
  );
  assert.equal(ok.AssumedRoleUser!.Arn, "arn:aws:sts::123456789012:assumed-role/dev/a.b");
  assert.deepEqual(emu.calls.map((c) => c.status), [200, 200, 400, 200]);
});

// ---- AssumeRole ----

emuTest(
  "AssumeRole of an MFA-required role: via MFA session, via code, refused without",
  async (t) => {
    const { emu } = t;
    const alice = emu.addUser({ name: "alice" });
    const admin = emu.addRole({ name: "admin", requireMfa: true });
    assert.equal(admin.arn, "arn:aws:iam::123456789012:role/admin");
    const assume = (
      creds: Creds,
      input: Partial<ConstructorParameters<typeof AssumeRoleCommand>[0]>,
    ) =>
      t.sts(creds).send(
        new AssumeRoleCommand({ RoleArn: admin.arn, RoleSessionName: "s1", ...input }),
      );

    // From an MFA session, no code needed.
    const mfaSession = await t.sts(longTerm(alice)).send(
      new GetSessionTokenCommand({
        SerialNumber: alice.mfaSerial,
        TokenCode: await emu.code(alice),
      }),
    );
    const viaSession = await assume(session(mfaSession.Credentials), {
      RoleSessionName: "alice@x",
    });
    assert.equal(
      viaSession.AssumedRoleUser!.Arn,
      "arn:aws:sts::123456789012:assumed-role/admin/alice@x",
    );
    assert.match(viaSession.AssumedRoleUser!.AssumedRoleId!, /^AROA[A-Z0-9]+:alice@x$/);
    assertExpiresIn(emu, viaSession.Credentials!.Expiration, 3600);
    const who = await t.sts(session(viaSession.Credentials)).send(new GetCallerIdentityCommand({}));
    assert.equal(who.Arn, "arn:aws:sts::123456789012:assumed-role/admin/alice@x");
    assert.equal(who.UserId, viaSession.AssumedRoleUser!.AssumedRoleId);
    assert.equal(who.Account, "123456789012");

    // From long-term keys: refused without MFA, accepted with a code, which is then used up.
    await fails(
      assume(longTerm(alice), {}),
      "AccessDenied",
      notAuthorized(alice.arn, admin.arn),
      403,
    );
    const code = await emu.code(alice, 1);
    const viaCode = await assume(longTerm(alice), {
      SerialNumber: alice.mfaSerial,
      TokenCode: code,
    });
    assert.match(viaCode.Credentials!.AccessKeyId!, /^ASIA/);
    await fails(
      assume(longTerm(alice), { SerialNumber: alice.mfaSerial, TokenCode: code }),
      "AccessDenied",
      MFA_BAD_CODE,
    );
    await fails(
      assume(longTerm(alice), {
        SerialNumber: alice.mfaSerial,
        TokenCode: await wrongCode(emu, alice),
      }),
      "AccessDenied",
      MFA_BAD_CODE,
    );

    // A session without MFA, and a role session, do not carry MFA.
    const plain = await t.sts(longTerm(alice)).send(new GetSessionTokenCommand({}));
    await fails(
      assume(session(plain.Credentials), {}),
      "AccessDenied",
      notAuthorized(alice.arn, admin.arn),
    );
    await fails(
      assume(session(viaSession.Credentials), {}),
      "AccessDenied",
      notAuthorized("arn:aws:sts::123456789012:assumed-role/admin/alice@x", admin.arn),
    );

    // Unknown and malformed roles.
    const ghost = "arn:aws:iam::123456789012:role/ghost";
    await fails(
      t.sts(longTerm(alice)).send(new AssumeRoleCommand({ RoleArn: ghost, RoleSessionName: "s1" })),
      "AccessDenied",
      notAuthorized(alice.arn, ghost),
    );
    await fails(
      t.sts(longTerm(alice)).send(
        new AssumeRoleCommand({ RoleArn: "arn:aws:iam::12:role/nope-nope", RoleSessionName: "s1" }),
      ),
      "ValidationError",
      "arn:aws:iam::12:role/nope-nope is invalid",
    );
    await fails(
      t.sts(longTerm(alice)).send(
        new AssumeRoleCommand({ RoleArn: admin.arn, RoleSessionName: "x" }),
      ),
      "ValidationError",
      "1 validation error detected: Value 'x' at 'roleSessionName' failed to satisfy constraint: Member must have length greater than or equal to 2",
    );
    assert.deepEqual(emu.counts, { GetSessionToken: 2, AssumeRole: 2, GetCallerIdentity: 1 });
  },
);

emuTest("AssumeRole durations: role maximum, range, role chaining", async (t) => {
  const { emu } = t;
  const alice = emu.addUser({ name: "alice" });
  const dev = emu.addRole({ name: "dev" });
  const long = emu.addRole({ name: "long", maxSessionDuration: 43200, account: "111122223333" });
  assert.throws(() => emu.addRole({ name: "bad", maxSessionDuration: 600 }), /3600\.\.43200/);
  const assume = (creds: Creds, RoleArn: string, DurationSeconds?: number, extra = {}) =>
    t.sts(creds).send(
      new AssumeRoleCommand({ RoleArn, RoleSessionName: "s1", DurationSeconds, ...extra }),
    );

  // Over the role maximum; the code of the failed call is not used up.
  const code = await emu.code(alice);
  const mfa = { SerialNumber: alice.mfaSerial, TokenCode: code };
  await fails(assume(longTerm(alice), dev.arn, 7200, mfa), "ValidationError", ROLE_MAX, 400);
  assertExpiresIn(
    emu,
    (await assume(longTerm(alice), dev.arn, 3600, mfa)).Credentials!.Expiration,
    3600,
  );

  const twelve = await assume(longTerm(alice), long.arn, 43200);
  assertExpiresIn(emu, twelve.Credentials!.Expiration, 43200);
  assert.equal(twelve.AssumedRoleUser!.Arn, "arn:aws:sts::111122223333:assumed-role/long/s1");
  assertExpiresIn(emu, (await assume(longTerm(alice), dev.arn)).Credentials!.Expiration, 3600);
  assertExpiresIn(emu, (await assume(longTerm(alice), dev.arn, 900)).Credentials!.Expiration, 900);
  await fails(
    assume(longTerm(alice), long.arn, 43201),
    "ValidationError",
    "1 validation error detected: Value '43201' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200",
  );
  await fails(
    assume(longTerm(alice), long.arn, 899),
    "ValidationError",
    /greater than or equal to 900/,
  );

  // Chaining: from a GetSessionToken session or a role session, at most 1 h.
  const mfaSession = await t.sts(longTerm(alice)).send(
    new GetSessionTokenCommand({
      SerialNumber: alice.mfaSerial,
      TokenCode: await emu.code(alice, 1),
    }),
  );
  await fails(
    assume(session(mfaSession.Credentials), long.arn, 7200),
    "ValidationError",
    CHAINING,
    400,
  );
  await fails(assume(session(twelve.Credentials), dev.arn, 7200), "ValidationError", CHAINING);
  const chained = await assume(session(twelve.Credentials), dev.arn, 3600);
  assert.equal(chained.AssumedRoleUser!.Arn, "arn:aws:sts::123456789012:assumed-role/dev/s1");
});

// ---- expiry and the virtual clock ----

emuTest("session credentials expire on the virtual clock", async (t) => {
  const { emu } = t;
  const alice = emu.addUser({ name: "alice" });
  const admin = emu.addRole({ name: "admin", requireMfa: true });
  const start = emu.now();
  assert.ok(Math.abs(start - Date.now()) < 1000);
  const mfaSession = await t.sts(longTerm(alice)).send(
    new GetSessionTokenCommand({ SerialNumber: alice.mfaSerial, TokenCode: await emu.code(alice) }),
  );
  const s = session(mfaSession.Credentials);
  const role = await t.sts(s).send(
    new AssumeRoleCommand({ RoleArn: admin.arn, RoleSessionName: "rs" }),
  );
  const r = session(role.Credentials);
  const gci = (c: Creds) => t.sts(c).send(new GetCallerIdentityCommand({}));

  emu.advance(3598);
  assert.ok(emu.now() - start >= 3598_000);
  await gci(r);
  emu.advance(3);
  await fails(gci(r), "ExpiredToken", EXPIRED, 403);
  assert.equal((await gci(s)).Arn, alice.arn);
  // The MFA session (12 h) runs out too, for every action.
  emu.advance(43200);
  await fails(gci(s), "ExpiredToken", EXPIRED);
  await fails(
    t.sts(s).send(new AssumeRoleCommand({ RoleArn: admin.arn, RoleSessionName: "rs" })),
    "ExpiredToken",
  );
  // Long-term keys never expire.
  assert.equal((await gci(longTerm(alice))).Arn, alice.arn);
});

emuTest("short lifetimes: role lifetimeSeconds", async (t) => {
  const { emu } = t;
  const alice = emu.addUser({ name: "alice" });
  const brief = emu.addRole({ name: "brief", lifetimeSeconds: 20 });
  const role = await t.sts(longTerm(alice)).send(
    new AssumeRoleCommand({ RoleArn: brief.arn, RoleSessionName: "rs", DurationSeconds: 3600 }),
  );
  assertExpiresIn(emu, role.Credentials!.Expiration, 20);
  const gci = () => t.sts(session(role.Credentials)).send(new GetCallerIdentityCommand({}));
  emu.advance(18);
  await gci();
  emu.advance(3);
  await fails(gci(), "ExpiredToken", EXPIRED);
});

Deno.test("virtualClock: signature freshness and the Date header follow the virtual clock", async () => {
  const emu = await StsEmulator.start({ virtualClock: true });
  const clients: STSClient[] = [];
  const gci = (credentials: Creds, systemClockOffset: number) => {
    const c = new STSClient({
      region: "us-east-1",
      endpoint: emu.url,
      credentials,
      maxAttempts: 1,
      systemClockOffset,
    });
    clients.push(c);
    return c.send(new GetCallerIdentityCommand({}));
  };
  try {
    const alice = emu.addUser({ name: "alice" });
    emu.advance(7200);
    // A client whose clock moved with the emulator's (libfaketime in the demo) is accepted…
    assert.equal((await gci(longTerm(alice), 7200_000)).Arn, alice.arn);
    // …and one on real time is now two hours behind.
    await fails(gci(longTerm(alice), 0), "SignatureDoesNotMatch", /^Signature expired: /, 403);
    const res = await fetch(emu.url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "Action=GetCallerIdentity&Version=2011-06-15",
    });
    await res.body?.cancel();
    const date = Date.parse(res.headers.get("date")!);
    assert.ok(Math.abs(date - emu.now()) < 5000, "Date is virtual time");
  } finally {
    for (const c of clients) c.destroy();
    await emu.close();
  }
});

// ---- fault injection and counters ----

emuTest(
  "failNext: Throttling is retried by the SDK, ServiceUnavailable is a server fault",
  async (t) => {
    const { emu } = t;
    const alice = emu.addUser({ name: "alice" });
    emu.failNext("GetCallerIdentity", "Throttling");
    const out = await t.sts(longTerm(alice), { maxAttempts: 3 }).send(
      new GetCallerIdentityCommand({}),
    );
    assert.equal(out.Arn, alice.arn);
    assert.equal(out.$metadata.attempts, 2);
    assert.deepEqual(emu.calls.map((c) => [c.action, c.status, c.code]), [
      ["GetCallerIdentity", 400, "Throttling"],
      ["GetCallerIdentity", 200, undefined],
    ]);
    assert.deepEqual(emu.counts, { GetCallerIdentity: 1 });

    emu.resetCounts();
    emu.failNext("GetSessionToken", "Throttling", 2);
    emu.failNext("GetCallerIdentity", "ServiceUnavailable");
    const client = t.sts(longTerm(alice));
    await fails(client.send(new GetSessionTokenCommand({})), "Throttling", "Rate exceeded", 400);
    const err = await fails(client.send(new GetCallerIdentityCommand({})), "ServiceUnavailable");
    assert.equal(err.$fault, "server");
    assert.equal(err.$metadata?.httpStatusCode, 503);
    await fails(client.send(new GetSessionTokenCommand({})), "Throttling");
    await client.send(new GetSessionTokenCommand({}));
    assert.deepEqual(emu.calls.map((c) => c.code ?? c.status), [
      "Throttling",
      "ServiceUnavailable",
      "Throttling",
      200,
    ]);
    assert.deepEqual(emu.counts, { GetSessionToken: 1 });
  },
);

emuTest(
  "failNext Hang: an abort signal ends the call; close releases a hung request",
  async (t) => {
    const { emu } = t;
    const alice = emu.addUser({ name: "alice" });
    const client = t.sts(longTerm(alice));
    emu.failNext("GetCallerIdentity", "Hang");
    const started = Date.now();
    const err = await client.send(new GetCallerIdentityCommand({}), {
      abortSignal: AbortSignal.timeout(300),
    }).then(() => assert.fail("a hung call returned"), (e: Error) => e);
    assert.match(`${err.name} ${err.message}`, /Abort|aborted/i);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 250 && elapsed < 5000, `aborted after ${elapsed} ms`);
    assert.deepEqual(emu.calls[0], {
      action: "GetCallerIdentity",
      status: 0,
      code: "Hang",
      accessKeyId: alice.accessKeyId,
    });
    // The fault was used once; the next call is answered.
    assert.equal((await client.send(new GetCallerIdentityCommand({}))).Arn, alice.arn);

    emu.failNext("GetSessionToken", "Hang");
    const pending = client.send(new GetSessionTokenCommand({}));
    while (emu.calls.length < 3) await new Promise((r) => setTimeout(r, 10));
    await emu.close();
    await fails(pending, "ServiceUnavailable", undefined, 503);
  },
);

emuTest("counts per action, calls for every request, resetCounts", async (t) => {
  const { emu } = t;
  const alice = emu.addUser({ name: "alice", mfa: false });
  const dev = emu.addRole({ name: "dev" });
  const client = t.sts(longTerm(alice));
  await client.send(new GetCallerIdentityCommand({}));
  await client.send(new GetCallerIdentityCommand({}));
  await client.send(new GetSessionTokenCommand({}));
  await client.send(new AssumeRoleCommand({ RoleArn: dev.arn, RoleSessionName: "s1" }));
  await fails(
    client.send(new AssumeRoleCommand({ RoleArn: dev.arn, RoleSessionName: "!" })),
    "ValidationError",
  );
  assert.deepEqual(emu.counts, { GetCallerIdentity: 2, GetSessionToken: 1, AssumeRole: 1 });
  assert.equal(emu.calls.length, 5);
  assert.deepEqual(emu.calls[4], {
    action: "AssumeRole",
    status: 400,
    code: "ValidationError",
    accessKeyId: alice.accessKeyId,
  });
  emu.resetCounts();
  assert.deepEqual(emu.counts, {});
  assert.deepEqual(emu.calls, []);
  await assert.rejects(emu.code("arn:aws:iam::123456789012:mfa/alice"), /no MFA device/);
  assert.throws(() => emu.addUser({ name: "alice" }), /already exists/);
});

// ---- the AWS CLI (botocore signs another header set, with "; charset=utf-8") ----

const AWS = "/usr/bin/aws";
const haveAws = (() => {
  try {
    return Deno.statSync(AWS).isFile;
  } catch {
    return false;
  }
})();

emuTest(
  "the AWS CLI's signatures are verified (role session and MFA GetSessionToken)",
  async (t) => {
    const { emu } = t;
    const alice = emu.addUser({ name: "alice" });
    const admin = emu.addRole({ name: "admin", requireMfa: true });
    const role = await t.sts(longTerm(alice)).send(
      new AssumeRoleCommand({
        RoleArn: admin.arn,
        RoleSessionName: "cli",
        SerialNumber: alice.mfaSerial,
        TokenCode: await emu.code(alice),
      }),
    );
    const empty = await Deno.makeTempFile();
    const aws = async (creds: Creds, ...args: string[]) => {
      const out = await new Deno.Command(AWS, {
        args: ["--endpoint-url", emu.url, "--output", "json", ...args],
        clearEnv: true,
        env: {
          PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
          HOME: Deno.env.get("HOME") ?? "/tmp",
          AWS_ACCESS_KEY_ID: creds.accessKeyId,
          AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
          ...(creds.sessionToken ? { AWS_SESSION_TOKEN: creds.sessionToken } : {}),
          AWS_REGION: "us-east-1",
          AWS_DEFAULT_REGION: "us-east-1",
          AWS_CONFIG_FILE: empty,
          AWS_SHARED_CREDENTIALS_FILE: empty,
          AWS_EC2_METADATA_DISABLED: "true",
          AWS_PAGER: "",
        },
      }).output();
      const dec = new TextDecoder();
      return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
    };
    try {
      const who = await aws(session(role.Credentials), "sts", "get-caller-identity");
      assert.equal(who.code, 0, who.stderr);
      assert.equal(JSON.parse(who.stdout).Arn, "arn:aws:sts::123456789012:assumed-role/admin/cli");

      const wrong = await aws(
        { ...session(role.Credentials), secretAccessKey: "x" },
        "sts",
        "get-caller-identity",
      );
      assert.notEqual(wrong.code, 0);
      assert.match(wrong.stderr, /SignatureDoesNotMatch/);

      const gst = await aws(
        longTerm(alice),
        "sts",
        "get-session-token",
        "--serial-number",
        alice.mfaSerial!,
        "--token-code",
        await emu.code(alice, 1),
        "--duration-seconds",
        "900",
      );
      assert.equal(gst.code, 0, gst.stderr);
      const creds = JSON.parse(gst.stdout).Credentials;
      assert.match(creds.AccessKeyId, /^ASIA/);
      assert.ok(Math.abs(Date.parse(creds.Expiration) - (emu.now() + 900_000)) < 2000);
      assert.deepEqual(emu.calls.map((c) => c.code ?? c.status), [
        200,
        200,
        "SignatureDoesNotMatch",
        200,
      ]);
    } finally {
      await Deno.remove(empty);
    }
  },
  !haveAws,
);

// ---- standalone mode ----

Deno.test("standalone: JSON line, port file, control routes, SIGTERM", async () => {
  const dir = await Deno.makeTempDir();
  const setupFile = `${dir}/setup.json`;
  const portFile = `${dir}/emu.json`;
  const mfaSecret = randomBase32Secret();
  await Deno.writeTextFile(
    setupFile,
    JSON.stringify({
      users: [{
        name: "demo",
        accessKeyId: "AKIADEMODEMODEMO0001",
        secretAccessKey: "demo/secret/key/0000000000000000000000",
        mfaSecret,
      }],
      roles: [{ name: "demo-admin", requireMfa: true }],
    }),
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-read",
      "--allow-write",
      new URL("../emulator/sts.ts", import.meta.url).pathname,
      "--setup",
      setupFile,
      "--port-file",
      portFile,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  let client: STSClient | undefined;
  try {
    while (!buffered.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error(`emulator exited early: ${JSON.stringify(buffered)}`);
      buffered += value;
    }
    const line = buffered.slice(0, buffered.indexOf("\n"));
    const info = JSON.parse(line);
    assert.equal((await Deno.readTextFile(portFile)).trim(), line);
    assert.match(info.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(info.users[0].accessKeyId, "AKIADEMODEMODEMO0001");
    assert.equal(info.users[0].mfaSerial, "arn:aws:iam::123456789012:mfa/demo");
    assert.equal(info.users[0].mfaSecret, mfaSecret);
    assert.equal(info.roles[0].arn, "arn:aws:iam::123456789012:role/demo-admin");

    const get = async (path: string, method = "GET") => {
      const res = await fetch(info.url + path, { method });
      const text = await res.text();
      assert.equal(res.status, 200, `${path}: ${text}`);
      return text;
    };
    const before = Number(await get("/__control/now"));
    const code = await get(`/__control/code?serial=${encodeURIComponent(info.users[0].mfaSerial)}`);
    const expected = [await totp(mfaSecret, before), await totp(mfaSecret, before + 30_000)];
    assert.ok(expected.includes(code), `code ${code} is the device's TOTP`);

    client = new STSClient({
      region: "eu-central-1",
      endpoint: info.url,
      maxAttempts: 1,
      credentials: {
        accessKeyId: "AKIADEMODEMODEMO0001",
        secretAccessKey: "demo/secret/key/0000000000000000000000",
      },
    });
    await client.send(
      new GetSessionTokenCommand({ SerialNumber: info.users[0].mfaSerial, TokenCode: code }),
    );
    assert.deepEqual(JSON.parse(await get("/__control/counts")), { GetSessionToken: 1 });
    const after = Number(await get("/__control/advance?seconds=3600", "POST"));
    assert.ok(after - before >= 3600_000 && after - before < 3660_000);
    assert.ok(Number(await get("/__control/now")) >= after);
    const missing = await fetch(info.url + "/__control/code?serial=nope");
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  } finally {
    client?.destroy();
    child.kill("SIGTERM");
    while (!(await lines.read()).done) { /* drain */ }
    const status = await child.status;
    await Deno.remove(dir, { recursive: true });
    assert.equal(status.code, 0, "exits cleanly on SIGTERM");
  }
});
