/**
 * A temporary HOME with its own AWS config and stsh state, and a way to run the real stsh
 * (through bin/stsh, the same launcher install.sh falls back to) inside it.
 */
import { join } from "node:path";

export const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
export const STSH = join(ROOT, "bin", "stsh");

export interface Sandbox {
  home: string;
  env: Record<string, string>;
  path(...parts: string[]): string;
  write(rel: string, text: string, mode?: number): Promise<string>;
  cleanup(): Promise<void>;
}

export async function sandbox(extraEnv: Record<string, string> = {}): Promise<Sandbox> {
  const home = await Deno.realPath(await Deno.makeTempDir({ prefix: "stsh-test-" }));
  await Deno.mkdir(join(home, ".aws"), { recursive: true });
  const env: Record<string, string> = {
    HOME: home,
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    AWS_CONFIG_FILE: join(home, ".aws", "config"),
    AWS_SHARED_CREDENTIALS_FILE: join(home, ".aws", "credentials"),
    AWS_EC2_METADATA_DISABLED: "true",
    STSH_HOME: join(home, ".aws", "stsh"),
    NO_COLOR: "1",
    LANG: "C.UTF-8",
    // The deno cache lives in the real HOME; keep using it.
    DENO_DIR: Deno.env.get("DENO_DIR") ?? join(Deno.env.get("HOME") ?? "/root", ".cache", "deno"),
    ...extraEnv,
  };
  return {
    home,
    env,
    path: (...parts) => join(home, ...parts),
    async write(rel, text, mode = 0o600) {
      const p = join(home, rel);
      await Deno.mkdir(join(p, ".."), { recursive: true });
      await Deno.writeTextFile(p, text, { mode });
      await Deno.chmod(p, mode);
      return p;
    },
    cleanup: () => Deno.remove(home, { recursive: true }),
  };
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Run the real stsh with exactly `env` (nothing inherited), optionally feeding stdin. It runs
 * in a new session (setsid), so it has no controlling terminal to ask on, as in CI.
 */
export async function stsh(
  args: string[],
  opts: { env: Record<string, string>; cwd?: string; stdin?: string },
): Promise<Run> {
  const child = new Deno.Command("setsid", {
    args: ["-w", STSH, ...args],
    env: opts.env,
    clearEnv: true,
    cwd: opts.cwd,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * Parse `export K='v'` / `unset K` lines the way a POSIX shell would. The hook's
 * `__stsh_prev='…'` (the shell-private saved values, handed back to the binary as STSH_PREV on
 * the next call) comes back under the name STSH_PREV.
 */
export function parseExports(text: string): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const line of text.split("\n").filter(Boolean)) {
    let m = line.match(/^export ([A-Za-z_][A-Za-z0-9_]*)='(.*)'$/);
    if (m) {
      out[m[1]] = m[2].replaceAll(`'\\''`, "'");
      continue;
    }
    m = line.match(/^__stsh_prev=(?:'(.*)')?$/);
    if (m) {
      out.STSH_PREV = m[1] === undefined ? null : m[1].replaceAll(`'\\''`, "'");
      continue;
    }
    m = line.match(/^unset ([A-Za-z_][A-Za-z0-9_]*)$/);
    if (m) out[m[1]] = null;
    else throw new Error(`unexpected line: ${line}`);
  }
  return out;
}
