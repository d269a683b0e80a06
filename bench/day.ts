/**
 * Row 5: MFA prompts in a simulated working day — three role profiles, a switch every 20
 * minutes — for stsh and for the AWS CLI's own `mfa_serial` + `role_arn` flow.
 *
 * Time is moved with libfaketime (Debian's `faketime`), for everyone at once: each side has a
 * standalone STS emulator (emulator/sts.ts) running under libfaketime, whose
 * offset is read from a file the bench rewrites at each step, and every stsh or aws process of
 * that step runs with the same offset. SigV4 signing times, TOTP codes, issued expirations
 * and both tools' cache checks all see the same simulated clock; nothing in either tool is
 * patched or configured for the bench.
 *
 * - stsh: the real program (bin/stsh, `stsh env PROFILE`) with codes from `mfa_process`;
 *   a prompt is one mfa_process run (cross-checked against GetSessionToken calls).
 * - AWS CLI: an installed CLI whose AssumeRole honours AWS_ENDPOINT_URL_STS (Debian's 2.9
 *   does not; an AWS CLI v1 with botocore >= 1.31 does — same assume-role provider, same
 *   ~/.aws/cli/cache and the same "re-assume when < 15 min left" rule as v2). It runs
 *   `aws sts get-caller-identity --profile PROFILE` without a terminal (setsid), so its getpass
 *   prompt goes to stderr and reads the code from stdin; a prompt is one "Enter MFA code"
 *   (cross-checked against AssumeRole calls at its emulator).
 *
 * When libfaketime or such a CLI is missing, the CLI's count is computed from its documented
 * rule and the row says "modelled"; stsh then runs in-process (lib/engine.ts `resolve()` with
 * the emulator's clock injected).
 */
import { type Row, sample } from "./stats.ts";
import { awsConfig, awsCredentials, ROLE_PROFILES, ROOT, STSH } from "./setup.ts";
import { type AwsCli, endpointCli } from "./aws_cli.ts";
import { type Sandbox, sandbox } from "../tests/support/fixture.ts";
import type { Role, User } from "../emulator/sts.ts";

export interface DayOptions {
  hours: number;
  switchMinutes: number;
  log: (m: string) => void;
}

interface Step {
  /** Seconds since the start of the day. */
  t: number;
  profile: string;
}

export function daySteps(hours: number, every: number): Step[] {
  const n = Math.floor((hours * 60) / every);
  return Array.from({ length: n }, (_, i) => ({
    t: i * every * 60,
    profile: ROLE_PROFILES[i % ROLE_PROFILES.length],
  }));
}

/**
 * The AWS CLI's rule (botocore CachedCredentialFetcher, sts.md §5.5 / §6.1): a cached role
 * session is reused while it has at least 15 minutes left, else AssumeRole is called again,
 * with a new MFA code when the profile has `mfa_serial`. Role sessions last 1 h (the CLI sends
 * no DurationSeconds).
 */
export function modelCliPrompts(steps: Step[], lifetime = 3600, window = 900): number {
  const expires = new Map<string, number>();
  let prompts = 0;
  for (const s of steps) {
    const e = expires.get(s.profile);
    if (e === undefined || e - s.t < window) {
      prompts++;
      expires.set(s.profile, s.t + lifetime);
    }
  }
  return prompts;
}

const FAKETIME_LIBS = [
  "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
  "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
  "/usr/lib/faketime/libfaketime.so.1",
  "/usr/lib64/faketime/libfaketime.so.1",
];

/** libfaketime's preload library (`STSH_BENCH_FAKETIME=none`: act as if it were missing). */
async function faketimeLib(): Promise<string | undefined> {
  if (Deno.env.get("STSH_BENCH_FAKETIME") === "none") return undefined;
  for (const p of FAKETIME_LIBS) {
    try {
      if ((await Deno.stat(p)).isFile) return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** A standalone emulator under libfaketime, following the offset in `clockFile`. */
class FakeEmulator {
  private constructor(
    readonly child: Deno.ChildProcess,
    readonly url: string,
    readonly user: User,
    readonly roles: Record<string, Role>,
  ) {}

  static async start(dir: string, lib: string, clockFile: string): Promise<FakeEmulator> {
    const setup = `${dir}/setup.json`;
    const portFile = `${dir}/emulator.json`;
    await Deno.writeTextFile(
      setup,
      JSON.stringify({
        users: [{ name: "alice" }],
        roles: ROLE_PROFILES.map((name) => ({ name, requireMfa: true })),
      }),
    );
    const child = new Deno.Command("deno", {
      args: [
        "run",
        "--quiet",
        "--allow-net=127.0.0.1",
        "--allow-read",
        "--allow-write",
        `${ROOT}/emulator/sts.ts`,
        "--setup",
        setup,
        "--port-file",
        portFile,
      ],
      env: {
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        HOME: Deno.env.get("HOME") ?? "/root",
        ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}),
        LD_PRELOAD: lib,
        FAKETIME_TIMESTAMP_FILE: clockFile,
        FAKETIME_NO_CACHE: "1",
        FAKETIME_DONT_FAKE_MONOTONIC: "1",
      },
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const deadline = Date.now() + 30_000;
    while (true) {
      try {
        const info = JSON.parse(await Deno.readTextFile(portFile));
        const roles: Record<string, Role> = {};
        for (const r of info.roles as Role[]) roles[r.name] = r;
        return new FakeEmulator(child, info.url, info.users[0], roles);
      } catch {
        // not yet
      }
      if (Date.now() > deadline) {
        child.kill("SIGKILL");
        const err = new TextDecoder().decode((await child.output()).stderr);
        throw new Error(`the emulator did not start under libfaketime: ${err}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async code(): Promise<string> {
    const r = await fetch(
      `${this.url}/__control/code?serial=${encodeURIComponent(this.user.mfaSerial!)}`,
    );
    return (await r.text()).trim();
  }

  async counts(): Promise<Record<string, number>> {
    return await (await fetch(`${this.url}/__control/counts`)).json();
  }

  async close(): Promise<void> {
    try {
      this.child.kill("SIGTERM");
    } catch {
      // gone
    }
    await this.child.output().catch(() => undefined);
  }
}

async function run(
  cmd: string[],
  env: Record<string, string>,
  stdin?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const p = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env,
    clearEnv: true,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      p.kill("SIGKILL");
    } catch {
      // gone
    }
  }, 60_000);
  try {
    if (stdin !== undefined) {
      const w = p.stdin.getWriter();
      await w.write(new TextEncoder().encode(stdin));
      await w.close();
    }
    const o = await p.output();
    const dec = new TextDecoder();
    return { code: o.code, stdout: dec.decode(o.stdout), stderr: dec.decode(o.stderr) };
  } finally {
    clearTimeout(timer);
  }
}

async function home(emu: FakeEmulator, sbs: Sandbox[]): Promise<Sandbox> {
  const sb = await sandbox({ AWS_ENDPOINT_URL_STS: emu.url, AWS_REGION: "us-east-1" });
  sbs.push(sb);
  await sb.write(
    ".aws/config",
    awsConfig(emu.user, emu.roles, {
      mfaProcess: `echo x >> ${sb.path("code.log")}; cat ${sb.path("code.txt")}`,
    }),
  );
  await sb.write(".aws/credentials", awsCredentials(emu.user));
  return sb;
}

async function countLines(path: string): Promise<number> {
  try {
    return (await Deno.readTextFile(path)).split("\n").filter(Boolean).length;
  } catch {
    return 0;
  }
}

export async function dayRow(o: DayOptions): Promise<Row> {
  const steps = daySteps(o.hours, o.switchMinutes);
  const modelled = modelCliPrompts(steps);
  const lib = await faketimeLib();
  const cli = lib ? await endpointCli() : undefined;
  const what =
    `${steps.length} switches (${o.hours} h, every ${o.switchMinutes} min) between role profiles ${
      ROLE_PROFILES.join(", ")
    }; role sessions 1 h`;
  let stshPrompts: number;
  let stshNote: string;
  let cliPrompts: number | undefined;
  let cliNote: string;
  if (lib) {
    const r = await fakeDay(steps, lib, cli, o);
    stshPrompts = r.stsh;
    stshNote = r.stshNote;
    cliPrompts = r.cli;
    cliNote = r.cliNote;
  } else {
    o.log("no libfaketime: stsh in-process with an injected clock");
    const r = await inProcessStsh(steps);
    stshPrompts = r.prompts;
    stshNote = r.note;
    cliNote = "";
  }
  const measuredCli = cliPrompts !== undefined;
  if (!measuredCli) {
    cliNote =
      `AWS CLI side MODELLED from its documented rule (re-assume, with a new code, when the cached role session has < 15 min left), not measured: ${
        lib ? "no installed AWS CLI sends its AssumeRole to AWS_ENDPOINT_URL_STS" : "no libfaketime"
      }`;
  }
  const cliLabel = measuredCli ? `AWS CLI (${cli!.version.split(" ")[0]})` : "AWS CLI (modelled)";
  const a = sample(cliLabel, "count", [cliPrompts ?? modelled]);
  const b = sample("stsh", "count", [stshPrompts]);
  return {
    id: "5-mfa-day",
    name: `MFA prompts in a simulated ${o.hours}-hour day: AWS CLI vs stsh`,
    compared: what,
    a,
    b,
    ratio: a.median / b.median,
    ratioMin: a.min / b.min,
    ratioOf: "A/B",
    method: measuredCli ? "measured" : "modelled",
    notes: [
      "one simulated day per run (the counts are deterministic: min = median)",
      stshNote,
      cliNote,
      `the AWS CLI's rule predicts ${modelled} prompts for this day`,
    ],
  };
}

async function fakeDay(
  steps: Step[],
  lib: string,
  cli: AwsCli | undefined,
  o: DayOptions,
): Promise<{ stsh: number; stshNote: string; cli?: number; cliNote: string }> {
  const dir = await Deno.makeTempDir({ prefix: "stsh-bench-day-" });
  const clockFile = `${dir}/clock`;
  await Deno.writeTextFile(clockFile, "+0\n");
  const sbs: Sandbox[] = [];
  const emus: FakeEmulator[] = [];
  try {
    await Deno.mkdir(`${dir}/s`);
    await Deno.mkdir(`${dir}/c`);
    const s = await FakeEmulator.start(`${dir}/s`, lib, clockFile);
    emus.push(s);
    const c = cli ? await FakeEmulator.start(`${dir}/c`, lib, clockFile) : undefined;
    if (c) emus.push(c);
    const sHome = await home(s, sbs);
    const cHome = c ? await home(c, sbs) : undefined;
    const fake = (offset: number) => ({
      LD_PRELOAD: lib,
      FAKETIME: `+${offset}`,
      FAKETIME_DONT_FAKE_MONOTONIC: "1",
    });
    let cliPrompts = 0;
    const t0 = Date.now();
    for (const [i, step] of steps.entries()) {
      await Deno.writeTextFile(clockFile, `+${step.t}\n`);
      // stsh: the code where mfa_process reads it (it is read only when stsh needs one).
      await Deno.writeTextFile(sHome.path("code.txt"), (await s.code()) + "\n");
      const rs = await run([STSH, "env", step.profile], { ...sHome.env, ...fake(step.t) });
      if (rs.code !== 0 || !rs.stdout.includes("AWS_ACCESS_KEY_ID=")) {
        throw new Error(`stsh env ${step.profile} at +${step.t}s: exit ${rs.code}: ${rs.stderr}`);
      }
      if (c && cHome) {
        const rc = await run(
          ["setsid", "-w", cli!.path, "sts", "get-caller-identity", "--profile", step.profile],
          { ...cHome.env, ...fake(step.t) },
          (await c.code()) + "\n",
        );
        if (rc.code !== 0 || !rc.stdout.includes(`assumed-role/${step.profile}/`)) {
          throw new Error(
            `aws --profile ${step.profile} at +${step.t}s: exit ${rc.code}: ${rc.stderr}`,
          );
        }
        cliPrompts += rc.stderr.match(/Enter MFA code/g)?.length ?? 0;
      }
      if (i === 0 || (i + 1) % 6 === 0) {
        o.log(`  day: ${step.t / 60} min, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      }
    }
    const stsh = await countLines(sHome.path("code.log"));
    const sc = await s.counts();
    if ((sc.GetSessionToken ?? 0) !== stsh) {
      throw new Error(`stsh: ${stsh} mfa_process runs but ${sc.GetSessionToken} GetSessionToken`);
    }
    const stshNote =
      `stsh measured: the real program under libfaketime, \`stsh env PROFILE\` at each switch; ${stsh} mfa_process run(s) = ${sc.GetSessionToken} GetSessionToken with MFA, ${
        sc.AssumeRole ?? 0
      } AssumeRole without a code`;
    if (!c) return { stsh, stshNote, cliNote: "" };
    const cc = await c.counts();
    if ((cc.AssumeRole ?? 0) !== cliPrompts) {
      throw new Error(`AWS CLI: ${cliPrompts} prompts but ${cc.AssumeRole} AssumeRole calls`);
    }
    return {
      stsh,
      stshNote,
      cli: cliPrompts,
      cliNote: `AWS CLI measured: ${
        cli!.path
      } under libfaketime, \`aws sts get-caller-identity --profile PROFILE\` at each switch, code typed on stdin; ${cliPrompts} "Enter MFA code" prompts = ${cc.AssumeRole} AssumeRole calls with a code at its emulator`,
    };
  } finally {
    for (const e of emus) await e.close();
    for (const sb of sbs) await sb.cleanup().catch(() => undefined);
    await Deno.remove(dir, { recursive: true }).catch(() => undefined);
  }
}

/** stsh's side without libfaketime: the real engine in-process, the emulator's clock injected. */
async function inProcessStsh(steps: Step[]): Promise<{ prompts: number; note: string }> {
  const { StsEmulator } = await import("../emulator/sts.ts");
  const { resolve } = await import("../lib/engine.ts");
  const emu = await StsEmulator.start();
  const sb = await sandbox({ AWS_ENDPOINT_URL_STS: emu.url, AWS_REGION: "us-east-1" });
  try {
    const user = emu.addUser({ name: "alice" });
    const roles: Record<string, Role> = {};
    for (const name of ROLE_PROFILES) roles[name] = emu.addRole({ name, requireMfa: true });
    await sb.write(
      ".aws/config",
      awsConfig(user, roles, {
        mfaProcess: `echo x >> ${sb.path("code.log")}; cat ${sb.path("code.txt")}`,
      }),
    );
    await sb.write(".aws/credentials", awsCredentials(user));
    let at = 0;
    for (const step of steps) {
      emu.advance(step.t - at);
      at = step.t;
      await Deno.writeTextFile(sb.path("code.txt"), (await emu.code(user)) + "\n");
      await resolve(step.profile, { env: sb.env, interactive: false, now: () => emu.now() });
    }
    const prompts = await countLines(sb.path("code.log"));
    return {
      prompts,
      note:
        `stsh measured in-process: lib/engine.ts resolve() with the emulator's clock injected; ${prompts} mfa_process run(s), ${
          emu.counts.GetSessionToken ?? 0
        } GetSessionToken, ${emu.counts.AssumeRole ?? 0} AssumeRole`,
    };
  } finally {
    await emu.close();
    await sb.cleanup().catch(() => undefined);
  }
}
