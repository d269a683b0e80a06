/**
 * Row 6 (issue 7): a long job's failed calls, with the endpoint (`stsh exec PROFILE -- JOB`)
 * and with static keys (`stsh exec --env PROFILE -- JOB`), run side by side against an STS
 * emulator that issues short role sessions.
 *
 * The job is tests/support/long_job.py: one boto3 session for its whole life, calling
 * sts:GetCallerIdentity every second and printing {"ok", "failed", …}. With static keys it
 * holds the keys it was started with and fails once they expire; with the endpoint boto3
 * asks it again before expiry and stsh re-mints the role from the MFA session.
 */
import { StsEmulator } from "../emulator/sts.ts";
import { sandbox } from "../tests/support/fixture.ts";
import { awsConfig, awsCredentials, ROLE_PROFILES, ROOT, STSH, which } from "./setup.ts";
import { type Row, sample, timeOnce } from "./stats.ts";

export interface JobOptions {
  /** Role session lifetime at the emulator, seconds. */
  roleSeconds: number;
  /** How long each job runs, seconds. */
  jobSeconds: number;
  log: (m: string) => void;
}

const JOB = `${ROOT}/tests/support/long_job.py`;

/** python3 with boto3, or undefined. */
async function boto3(): Promise<string | undefined> {
  const py = await which("python3");
  if (!py) return undefined;
  const r = await timeOnce([py, "-c", "import boto3"], { env: { PATH: Deno.env.get("PATH")! } });
  return r.code === 0 ? py : undefined;
}

interface JobResult {
  ok: number;
  failed: number;
  errors: string[];
}

export async function longJobRow(o: JobOptions): Promise<Row | undefined> {
  const py = await boto3();
  if (!py) {
    o.log("python3 with boto3 is missing: the long-job row is skipped");
    return undefined;
  }
  const emu = await StsEmulator.start();
  const sb = await sandbox({ AWS_ENDPOINT_URL_STS: emu.url, AWS_REGION: "us-east-1" });
  try {
    const alice = emu.addUser({ name: "alice" });
    const roles: Record<string, ReturnType<typeof emu.addRole>> = {};
    for (const name of ROLE_PROFILES) {
      roles[name] = emu.addRole({ name, requireMfa: true, lifetimeSeconds: o.roleSeconds });
    }
    const codeFile = sb.path("code.txt");
    await sb.write(".aws/config", awsConfig(alice, roles, { mfaProcess: `cat ${codeFile}` }));
    await sb.write(".aws/credentials", awsCredentials(alice));
    await Deno.writeTextFile(codeFile, (await emu.code(alice)) + "\n");
    const env = sb.env;
    // The MFA session and the first role session, as a person's first `stsh env` makes them.
    const first = await timeOnce([STSH, "env", "a"], { env });
    if (first.code !== 0) throw new Error(`stsh env a: ${first.stderr}`);

    o.log(`a ${o.jobSeconds} s job on ${o.roleSeconds} s role sessions: endpoint and static keys`);
    const job = [py, JOB, "--endpoint-url", emu.url, "--seconds", String(o.jobSeconds)];
    const run = async (args: string[]): Promise<JobResult> => {
      const r = await timeOnce([STSH, ...args, "--", ...job], {
        env,
        timeoutMs: (o.jobSeconds + 60) * 1000,
      });
      try {
        const j = JSON.parse(r.stdout.trim().split("\n").pop() ?? "");
        if (typeof j.ok === "number" && typeof j.failed === "number") return j;
      } catch { /* below */ }
      throw new Error(`stsh ${args.join(" ")} -- long_job.py: exit ${r.code}\n${r.stderr}`);
    };
    const [served, keys] = await Promise.all([run(["exec", "a"]), run(["exec", "--env", "a"])]);
    const gst = emu.counts.GetSessionToken ?? 0;
    const ar = emu.counts.AssumeRole ?? 0;
    const a = sample("static keys: failed", "count", [keys.failed]);
    const b = sample("endpoint: failed", "count", [served.failed]);
    const pass = served.failed === 0 && served.ok > 0;
    const calls = (j: JobResult) => `${j.failed} of ${j.ok + j.failed}`;
    return {
      id: "6-long-job",
      name: "failed calls of a long boto3 job: static keys (`stsh exec --env`) vs the endpoint",
      compared:
        `tests/support/long_job.py (GetCallerIdentity every second for ${o.jobSeconds} s) on ${o.roleSeconds} s role sessions, both jobs at once`,
      a,
      b,
      ratio: served.failed > 0 ? keys.failed / served.failed : Infinity,
      ratioMin: served.failed > 0 ? keys.failed / served.failed : Infinity,
      ratioOf: "A/B",
      target: { kind: "abs-max", max: 1, unit: "calls", text: "endpoint: no failed call" },
      pass,
      miss: pass ? undefined : `the endpoint job failed ${calls(served)} calls`,
      method: "measured",
      notes: [
        `static keys failed ${calls(keys)} calls${
          keys.errors.length ? ` (${keys.errors[0].slice(0, 120)})` : ""
        }; the endpoint failed ${calls(served)}${
          served.errors.length ? ` (${served.errors[0].slice(0, 120)})` : ""
        }`,
        `STS calls at the emulator: ${gst} GetSessionToken, ${ar} AssumeRole (the endpoint re-minted the role from the MFA session)`,
      ],
    };
  } finally {
    await emu.close();
    await sb.cleanup().catch(() => undefined);
  }
}
