/**
 * A small AWS world for end-to-end tests: an STS emulator with one IAM user who has an MFA
 * device, roles that demand MFA, and a sandbox HOME whose ~/.aws files describe them the way
 * a person would (the seed article's `mfa_serial` + `role_arn` + `source_profile` shape).
 */
import { type Role, StsEmulator, type User } from "../../emulator/sts.ts";
import { type Run, type Sandbox, sandbox, stsh } from "./fixture.ts";

export interface World {
  emu: StsEmulator;
  sb: Sandbox;
  alice: User;
  plain: User;
  roles: Record<string, Role>;
  env: Record<string, string>;
  /** Path of a file mfa_process reads the code from; each read is logged to `codeLog`. */
  codeFile: string;
  codeLog: string;
  /** Write the device's current code where mfa_process reads it. */
  primeCode(offsetSteps?: number): Promise<string>;
  /** How many times mfa_process was asked for a code. */
  codeRequests(): Promise<number>;
  run(args: string[], opts?: { env?: Record<string, string>; cwd?: string }): Promise<Run>;
  close(): Promise<void>;
}

export async function world(
  opts: { roleLifetimeSeconds?: number; sessionLifetimeSeconds?: number; mfaProcess?: boolean } =
    {},
): Promise<World> {
  const emu = await StsEmulator.start();
  const sb = await sandbox({ AWS_ENDPOINT_URL_STS: emu.url, AWS_REGION: "us-east-1" });
  const alice = emu.addUser({ name: "alice", sessionLifetimeSeconds: opts.sessionLifetimeSeconds });
  const plain = emu.addUser({ name: "robot", mfa: false });
  const roles = {
    a: emu.addRole({ name: "a", requireMfa: true, lifetimeSeconds: opts.roleLifetimeSeconds }),
    b: emu.addRole({ name: "b", requireMfa: true, lifetimeSeconds: opts.roleLifetimeSeconds }),
    long: emu.addRole({ name: "long", requireMfa: true, maxSessionDuration: 43200 }),
    open: emu.addRole({ name: "open" }),
  };
  const codeFile = sb.path("code.txt");
  const codeLog = sb.path("code.log");
  const mfaProcess = opts.mfaProcess === false
    ? ""
    : `mfa_process = echo x >> ${codeLog}; cat ${codeFile}\n`;
  await sb.write(
    ".aws/config",
    `[profile me]
region = us-east-1
mfa_serial = ${alice.mfaSerial}
${mfaProcess}
[profile a]
role_arn = ${roles.a.arn}
source_profile = me

[profile b]
role_arn = ${roles.b.arn}
source_profile = me

[profile long]
role_arn = ${roles.long.arn}
source_profile = me
duration_seconds = 7200

[profile toolong]
role_arn = ${roles.a.arn}
source_profile = me
duration_seconds = 7200

[profile chain]
role_arn = ${roles.open.arn}
source_profile = a

[profile robot]
region = us-east-1

[profile demands]
role_arn = ${roles.a.arn}
source_profile = robot
`,
  );
  await sb.write(
    ".aws/credentials",
    `[me]
aws_access_key_id = ${alice.accessKeyId}
aws_secret_access_key = ${alice.secretAccessKey}

[robot]
aws_access_key_id = ${plain.accessKeyId}
aws_secret_access_key = ${plain.secretAccessKey}
`,
  );
  const w: World = {
    emu,
    sb,
    alice,
    plain,
    roles,
    env: sb.env,
    codeFile,
    codeLog,
    async primeCode(offsetSteps = 0) {
      const code = await emu.code(alice, offsetSteps);
      await Deno.writeTextFile(codeFile, code + "\n");
      return code;
    },
    async codeRequests() {
      try {
        return (await Deno.readTextFile(codeLog)).split("\n").filter(Boolean).length;
      } catch {
        return 0;
      }
    },
    run: (args, o = {}) => stsh(args, { env: { ...sb.env, ...o.env }, cwd: o.cwd }),
    async close() {
      await emu.close();
      await sb.cleanup();
    },
  };
  return w;
}

/** A test with a fresh world of its own, closed whatever happens. */
export function scenario(name: string, fn: (w: World) => Promise<void>) {
  Deno.test(name, async () => {
    const w = await world();
    try {
      await fn(w);
    } finally {
      await w.close();
    }
  });
}

/** No secret of any credential appears in `text`. */
export function assertNoSecrets(text: string, ...secrets: (string | undefined)[]) {
  for (const s of secrets) {
    if (s && text.includes(s)) throw new Error(`a secret was printed: …${s.slice(-6)}`);
  }
}
