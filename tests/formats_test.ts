import assert from "node:assert/strict";
import {
  credentialChanges,
  FORMATS,
  HOOK_FORMATS,
  iso,
  processJson,
  psQuote,
  shQuote,
} from "../lib/formats.ts";
import { clock } from "../lib/text.ts";

const creds = {
  accessKeyId: "ASIAEXAMPLEKEY123456",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY",
  sessionToken: "FwoGZXIvYXdzEXAMPLE//token+with/chars=",
  expiration: new Date("2026-11-29T12:00:00.000Z"),
  region: "eu-west-1",
};

Deno.test("env format: exports as a person would type them, and unsets profile selectors", () => {
  const text = FORMATS.env.export(credentialChanges(creds));
  assert.match(text, /^export AWS_ACCESS_KEY_ID='ASIAEXAMPLEKEY123456'$/m);
  assert.match(text, /^export AWS_SESSION_TOKEN='FwoGZXIvYXdzEXAMPLE\/\/token\+with\/chars='$/m);
  assert.match(text, /^export AWS_CREDENTIAL_EXPIRATION='2026-11-29T12:00:00Z'$/m);
  assert.match(text, /^unset AWS_PROFILE$/m);
});

Deno.test("powershell format: $env: lines as in the seed article", () => {
  const text = FORMATS.powershell.export(credentialChanges(creds));
  assert.match(text, /^\$env:AWS_ACCESS_KEY_ID = 'ASIAEXAMPLEKEY123456'$/m);
  assert.match(
    text,
    /^\$env:AWS_SECRET_ACCESS_KEY = 'wJalrXUtnFEMI\/K7MDENG\/bPxRfiCYzEXAMPLEKEY'$/m,
  );
  assert.match(text, /^Remove-Item Env:AWS_PROFILE -ErrorAction SilentlyContinue$/m);
});

Deno.test("quoting: POSIX and PowerShell quotes cannot be escaped from", () => {
  assert.equal(shQuote(`a'b`), `'a'\\''b'`);
  assert.equal(shQuote("$(touch x)"), `'$(touch x)'`);
  // PowerShell also ends single-quoted strings at U+2018..U+201B: each is doubled.
  assert.equal(psQuote("O\u2019Brien'"), "'O\u2019\u2019Brien'''");
});

Deno.test("credentials with unexpected characters never reach a shell", () => {
  assert.throws(
    () => credentialChanges({ ...creds, sessionToken: "x';rm -rf ~;'" }),
    /unexpected characters/,
  );
  assert.throws(() => credentialChanges({ ...creds, accessKeyId: "ASIA\nexport" }), /unexpected/);
});

Deno.test("process format matches credential_process Version 1", () => {
  const o = JSON.parse(processJson(creds));
  assert.deepEqual(o, {
    Version: 1,
    AccessKeyId: creds.accessKeyId,
    SecretAccessKey: creds.secretAccessKey,
    SessionToken: creds.sessionToken,
    Expiration: "2026-11-29T12:00:00Z",
  });
});

Deno.test("fish, windows-cmd, dotenv and env-no-export render every credential", () => {
  const c = credentialChanges(creds);
  assert.match(FORMATS.fish.export(c), /^set -gx AWS_SESSION_TOKEN 'FwoGZXIv.*='$/m);
  assert.match(FORMATS.fish.export(c), /^set -e AWS_PROFILE$/m);
  assert.match(FORMATS["windows-cmd"].export(c), /^set AWS_ACCESS_KEY_ID=ASIAEXAMPLEKEY123456$/m);
  assert.match(FORMATS.dotenv.export(c), /^AWS_REGION=eu-west-1$/m);
  assert.doesNotMatch(FORMATS.dotenv.export(c), /AWS_PROFILE/);
  assert.match(FORMATS["env-no-export"].export(c), /^AWS_ACCESS_KEY_ID='ASIAEXAMPLEKEY123456'$/m);
  assert.throws(() => FORMATS["windows-cmd"].export({ X: "a&b" }), /cannot be written safely/);
});

Deno.test("pwsh hook format is one JSON line of allow-listed names", () => {
  const line = HOOK_FORMATS.pwsh.export({ AWS_REGION: "x'\u2019", STSH_PROFILE: null });
  assert.equal(line, `{"AWS_REGION":"x'\u2019","STSH_PROFILE":null}\n`);
  assert.throws(() => HOOK_FORMATS.pwsh.export({ PATH: "/evil" }), /Refusing/);
  assert.equal(HOOK_FORMATS.bash.export({}), "");
});

Deno.test("iso and clock spell what toISOString and toTimeString would", () => {
  const dates = [
    0,
    Date.UTC(1000, 0, 1),
    Date.UTC(9999, 11, 31, 23, 59, 59, 999),
    Date.UTC(2026, 1, 28, 9, 5, 7, 120),
  ];
  for (let i = 0; i < 500; i++) dates.push(Math.floor(Math.random() * 8e12) - 1e12);
  for (const ms of dates) {
    const d = new Date(ms);
    assert.equal(iso(d), d.toISOString().replace(/\.\d{3}Z$/, "Z"), d.toISOString());
    assert.equal(clock(d), d.toTimeString().slice(0, 5), d.toISOString());
  }
  // Outside four-digit years, and invalid dates, as toISOString does it.
  assert.equal(iso(new Date(Date.UTC(10000, 0, 1))), "+010000-01-01T00:00:00Z");
  assert.equal(iso(new Date(Date.UTC(999, 0, 1))), "0999-01-01T00:00:00Z");
  assert.throws(() => iso(new Date(NaN)), RangeError);
});
