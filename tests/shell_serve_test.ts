/**
 * Shells hooked with `stsh init SHELL --serve` (issue 7): entering a tag exports the per-user
 * credential endpoint instead of keys, so a program started there keeps working across
 * several role expiries (roles last 6 s here) on one MFA code; leaving removes the endpoint
 * and puts back the user's own variables. Real zsh, bash, pwsh and fish in a pty, the real
 * binary, the STS emulator, and a real boto3 program (tests/support/long_job.py).
 */
import assert from "node:assert/strict";
import { ROOT } from "./support/fixture.ts";
import { findExe } from "./support/shells.ts";
import { e2e, USER_VARS } from "./support/session.ts";

const JOB = `${ROOT}/tests/support/long_job.py`;

/** The python3 on the test's PATH that has boto3 (the shells' PATH is kept short). */
async function boto3Python(): Promise<string | undefined> {
  const py = findExe("python3");
  if (!py) return undefined;
  const ok = await new Deno.Command(py, { args: ["-c", "import boto3"], stderr: "null" })
    .output().then((o) => o.success, () => false);
  return ok ? py : undefined;
}
const PY = await boto3Python();

e2e(
  "--serve: a program outlives several role sessions on one code; leaving removes the endpoint",
  async (s) => {
    assert.ok(PY, "python3 with boto3 is needed (.ci/run installs python3-boto3)");
    const { d, w } = s;
    // boto3 reads AWS_DEFAULT_REGION; profile a has no region, so the user's stays.
    await s.run(d.setVars({ ...USER_VARS, AWS_DEFAULT_REGION: "us-east-1" }));
    const before = await s.vars();

    await s.expectQuestion(d.cd(s.dirA), "a");
    await s.answer(await w.emu.code(w.alice));
    const on = await s.vars();
    assert.match(on.AWS_CONTAINER_CREDENTIALS_FULL_URI, /^http:\/\/127\.0\.0\.1:\d+\/creds\/a$/);
    assert.ok((on.AWS_CONTAINER_AUTHORIZATION_TOKEN ?? "").length >= 43);
    // Static keys would outrank the endpoint: none in the shell, the user's own saved.
    for (const k of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]) {
      assert.equal(on[k], undefined, k);
    }
    assert.equal(on.AWS_PROFILE, undefined);
    assert.equal(on.STSH_PROFILE, "a");
    assert.match(await s.t.screen(), /Served by the local endpoint\./);

    // A job of 20 s against roles of 6 s: every call succeeds, as one role.
    const out = await s.run(
      `${PY} ${JOB} --endpoint-url ${w.emu.url} --seconds 20 --interval 1`,
      90_000,
    );
    const job = JSON.parse(out.trim().split("\n").pop()!);
    assert.equal(job.failed, 0, out);
    assert.ok(job.ok >= 15, out);
    for (const arn of job.arns) assert.match(arn, /:assumed-role\/a\//);
    assert.equal(w.emu.counts.GetSessionToken, 1, "one MFA code for the whole run");
    assert.ok((w.emu.counts.AssumeRole ?? 0) >= 3, JSON.stringify(w.emu.counts));

    // Leaving: the endpoint goes, the user's own variables come back exactly.
    await s.run(d.cd(s.plain));
    assert.deepEqual(await s.vars(), before);
  },
  { serve: true, roleLifetimeSeconds: 6 },
);
