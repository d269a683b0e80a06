/**
 * The AWS CLI as the bench uses it: which installed `aws` can do what, and its assume-role
 * cache (`~/.aws/cli/cache/<sha1>.json`, /work/shared/reference/sts.md §6.1).
 *
 * Debian's `/usr/bin/aws` (2.9.x) has `configure export-credentials` but sends its own
 * AssumeRole to the real STS endpoint whatever AWS_ENDPOINT_URL_STS says (service-specific
 * endpoints came in 2.13 / botocore 1.31). A CLI that honours the variable can be pointed at
 * the emulator; the bench looks for one.
 */

import { outputOf } from "./setup.ts";

export interface AwsCli {
  path: string;
  version: string;
}

const run = outputOf;

async function version(path: string): Promise<string> {
  return (await run([path, "--version"])).split("\n")[0] ?? "";
}

/** Every `aws` on PATH (pyenv shims resolved to the program they run), first one first. */
async function candidates(): Promise<string[]> {
  const out: string[] = [];
  const own = Deno.env.get("STSH_BENCH_AWS");
  if (own && own !== "none") out.push(own);
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (!dir) continue;
    const p = `${dir}/aws`;
    try {
      if (!(await Deno.stat(p)).isFile) continue;
    } catch {
      continue;
    }
    if (dir.endsWith("/.pyenv/shims")) {
      const real = (await run(["pyenv", "which", "aws"])).split("\n")[0];
      if (real.startsWith("/")) out.push(real);
    } else {
      out.push(await Deno.realPath(p).catch(() => p));
    }
  }
  for (const p of ["/usr/bin/aws", "/usr/local/bin/aws"]) out.push(p);
  return [...new Set(out)];
}

/** Debian's AWS CLI v2 (the one the README's tests use), when present. */
export async function cliV2(): Promise<AwsCli | undefined> {
  for (const path of ["/usr/bin/aws", ...(await candidates())]) {
    const v = await version(path);
    if (/^aws-cli\/2\./.test(v)) return { path, version: v };
  }
  return undefined;
}

/** Whether this CLI version sends its AssumeRole to AWS_ENDPOINT_URL_STS. */
export function honoursEndpointEnv(v: string): boolean {
  const cli = v.match(/^aws-cli\/(\d+)\.(\d+)\./);
  if (!cli) return false;
  if (cli[1] === "2") return Number(cli[2]) >= 13;
  const boto = v.match(/botocore\/1\.(\d+)\./);
  return cli[1] === "1" && boto !== null && Number(boto[1]) >= 31;
}

/**
 * An installed AWS CLI that can be pointed at the emulator, when there is one
 * (`STSH_BENCH_AWS=none`: act as if there were none, to exercise the fallbacks).
 */
export async function endpointCli(): Promise<AwsCli | undefined> {
  if (Deno.env.get("STSH_BENCH_AWS") === "none") return undefined;
  for (const path of await candidates()) {
    const v = await version(path);
    if (honoursEndpointEnv(v)) return { path, version: v };
  }
  return undefined;
}

/** Python's `json.dumps(x, sort_keys=True)` with its default separators and ensure_ascii. */
export function pyJson(x: unknown): string {
  if (x === null) return "null";
  if (typeof x === "string") {
    return JSON.stringify(x).replace(
      /[\u007f-\uffff]/g,
      (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"),
    );
  }
  if (typeof x === "number" || typeof x === "boolean") return String(x);
  if (Array.isArray(x)) return "[" + x.map(pyJson).join(", ") + "]";
  const o = x as Record<string, unknown>;
  return "{" + Object.keys(o).sort().map((k) => `${pyJson(k)}: ${pyJson(o[k])}`).join(", ") +
    "}";
}

/** The CLI's cache file name for AssumeRole `args` (botocore `_create_cache_key`). */
export async function cliCacheKey(args: Record<string, unknown>): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(pyJson(args)));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("")
    .replace(/[:/\\]/g, "_");
}

/** A cache entry the way the CLI writes one (Expiration as `…T12:34:56UTC`, AccountId added). */
export function cliCacheEntry(c: {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
  roleArn: string;
  sessionName: string;
}): string {
  const account = c.roleArn.split(":")[4];
  const role = c.roleArn.split("/").pop();
  const expiration = c.expiration.toISOString().replace(/\.\d{3}Z$/, "UTC");
  return pyJson({
    Credentials: {
      AccessKeyId: c.accessKeyId,
      SecretAccessKey: c.secretAccessKey,
      SessionToken: c.sessionToken,
      Expiration: expiration,
      AccountId: account,
    },
    AssumedRoleUser: {
      AssumedRoleId: `AROA${account}:${c.sessionName}`,
      Arn: `arn:aws:sts::${account}:assumed-role/${role}/${c.sessionName}`,
    },
    ResponseMetadata: { RequestId: crypto.randomUUID(), HTTPStatusCode: 200, RetryAttempts: 0 },
  });
}
