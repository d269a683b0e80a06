/**
 * The bench's world: an in-process STS emulator (127.0.0.1 only) with one IAM user who has an
 * MFA device and three roles that demand MFA, and a sandbox HOME whose ~/.aws files describe
 * them the way an AWS CLI user writes them (`mfa_serial` on each role profile, so the AWS CLI
 * asks for a code too; stsh takes the same device). A tagged, trusted directory `work/proj`
 * (profile `a`) with subdirectories, an allowed `.envrc` for direnv, and a counting launcher:
 * the hooks run `bin/stsh` through a wrapper that logs each start, so the bench can prove
 * that a burst of prompts started no process.
 */
import { type Role, StsEmulator, type User } from "../emulator/sts.ts";
import { type Sandbox, sandbox, stsh as runStsh } from "../tests/support/fixture.ts";

export const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
export const STSH = `${ROOT}/bin/stsh`;
export const ROLE_PROFILES = ["a", "b", "c"] as const;

/** The config an AWS CLI user with MFA-protected roles has; stsh reads the same file. */
export function awsConfig(
  user: User,
  roles: Record<string, Role>,
  opts: { mfaProcess?: string } = {},
): string {
  const parts = [
    `[profile me]
region = us-east-1
mfa_serial = ${user.mfaSerial}
${opts.mfaProcess ? `mfa_process = ${opts.mfaProcess}\n` : ""}`,
  ];
  for (const name of ROLE_PROFILES) {
    parts.push(`[profile ${name}]
region = us-east-1
role_arn = ${roles[name].arn}
source_profile = me
mfa_serial = ${user.mfaSerial}
`);
  }
  return parts.join("\n");
}

export function awsCredentials(user: User): string {
  return `[me]
aws_access_key_id = ${user.accessKeyId}
aws_secret_access_key = ${user.secretAccessKey}
`;
}

export interface BenchWorld {
  emu: StsEmulator;
  sb: Sandbox;
  alice: User;
  roles: Record<string, Role>;
  /** The sandbox environment (HOME, AWS_* files, STSH_HOME, endpoint, DENO_DIR, PATH). */
  env: Record<string, string>;
  /** The tagged, trusted directory (profile `a`) and two directories inside it. */
  proj: string;
  sub1: string;
  sub2: string;
  /** The counting wrapper the rendered hooks call, and its log. */
  wrapper: string;
  wrapperLog: string;
  /** Write the device's current code where mfa_process reads it. */
  primeCode(): Promise<string>;
  /** How many times mfa_process was asked for a code. */
  codeRequests(): Promise<number>;
  /** How many times the hooks started the program. */
  starts(): Promise<number>;
  run(args: string[], cwd?: string): Promise<{ code: number; stdout: string; stderr: string }>;
  close(): Promise<void>;
}

async function lines(path: string): Promise<number> {
  try {
    return (await Deno.readTextFile(path)).split("\n").filter(Boolean).length;
  } catch {
    return 0;
  }
}

export async function benchWorld(): Promise<BenchWorld> {
  const emu = await StsEmulator.start();
  const sb = await sandbox({ AWS_ENDPOINT_URL_STS: emu.url, AWS_REGION: "us-east-1" });
  try {
    const alice = emu.addUser({ name: "alice" });
    const roles: Record<string, Role> = {};
    for (const name of ROLE_PROFILES) roles[name] = emu.addRole({ name, requireMfa: true });
    const codeFile = sb.path("code.txt");
    const codeLog = sb.path("code.log");
    await sb.write(
      ".aws/config",
      awsConfig(alice, roles, { mfaProcess: `echo x >> ${codeLog}; cat ${codeFile}` }),
    );
    await sb.write(".aws/credentials", awsCredentials(alice));

    const wrapperLog = sb.path("starts.log");
    const wrapper = await sb.write(
      "bin/stsh-counted",
      `#!/bin/sh\necho "$*" >> '${wrapperLog}'\nexec '${STSH}' "$@"\n`,
      0o755,
    );

    const proj = sb.path("work", "proj");
    const sub1 = sb.path("work", "proj", "src", "lib");
    const sub2 = sb.path("work", "proj", "docs");
    for (const d of [sub1, sub2]) await Deno.mkdir(d, { recursive: true });

    const w: BenchWorld = {
      emu,
      sb,
      alice,
      roles,
      env: sb.env,
      proj,
      sub1,
      sub2,
      wrapper,
      wrapperLog,
      async primeCode() {
        const code = await emu.code(alice);
        await Deno.writeTextFile(codeFile, code + "\n");
        return code;
      },
      codeRequests: () => lines(codeLog),
      starts: () => lines(wrapperLog),
      run: (args, cwd) => runStsh(args, { env: sb.env, cwd }),
      async close() {
        await emu.close();
        await sb.cleanup().catch(() => undefined);
      },
    };

    const must = async (args: string[], cwd?: string) => {
      const r = await w.run(args, cwd);
      if (r.code !== 0) throw new Error(`stsh ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
      return r;
    };
    await must(["tag", "a", proj]);
    // direnv's realistic unchanged prompt: an allowed .envrc, already loaded.
    await Deno.writeTextFile(`${proj}/.envrc`, "export BENCH_DIRENV=1\n");
    if (await which("direnv")) {
      const r = await new Deno.Command("direnv", {
        args: ["allow", proj],
        env: sb.env,
        clearEnv: true,
        stdout: "null",
        stderr: "piped",
      }).output();
      if (!r.success) throw new Error(`direnv allow: ${new TextDecoder().decode(r.stderr)}`);
    }
    // A warm cache for `a`: one MFA session and one role session.
    await w.primeCode();
    await must(["env", "a"]);
    if (emu.counts.GetSessionToken !== 1 || emu.counts.AssumeRole !== 1) {
      throw new Error(`unexpected STS calls while warming: ${JSON.stringify(emu.counts)}`);
    }
    return w;
  } catch (e) {
    await emu.close();
    await sb.cleanup().catch(() => undefined);
    throw e;
  }
}

/** The full path of `name` on PATH (plus `extra` directories), or undefined. */
export async function which(name: string, extra: string[] = []): Promise<string | undefined> {
  for (const dir of [...(Deno.env.get("PATH") ?? "").split(":"), ...extra]) {
    if (!dir) continue;
    try {
      const st = await Deno.stat(`${dir}/${name}`);
      if (st.isFile && (st.mode ?? 0o111) & 0o111) return `${dir}/${name}`;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** All a command prints (stdout, then stderr), trimmed; "" when it cannot run. */
export async function outputOf(cmd: string[], env?: Record<string, string>): Promise<string> {
  try {
    const out = await new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return (dec.decode(out.stdout) + dec.decode(out.stderr)).trim();
  } catch {
    return "";
  }
}

/** First line of `cmd --version`-style output, or "" when it cannot run. */
export async function versionOf(cmd: string[], env?: Record<string, string>): Promise<string> {
  return (await outputOf(cmd, env)).split("\n")[0] ?? "";
}
