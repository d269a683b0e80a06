/** Where stsh keeps its state on Linux, macOS and Windows. */
import { StshError } from "./errors.ts";

export const isWindows = Deno.build.os === "windows";
const SEP = isWindows ? "\\" : "/";

/**
 * Path helpers of our own: importing node:path starts Deno's Node compatibility layer,
 * which costs the hook ~10 ms on every `cd` into a tagged tree.
 */
export function join(...parts: string[]): string {
  return normalize(parts.filter(Boolean).join(SEP));
}

export function isAbsolute(p: string): boolean {
  return isWindows ? /^([A-Za-z]:)?[\\/]/.test(p) : p.startsWith("/");
}

function normalize(p: string): string {
  const abs = isAbsolute(p);
  const drive = isWindows ? (p.match(/^[A-Za-z]:/)?.[0] ?? "") : "";
  const out: string[] = [];
  // A backslash separates only on Windows: elsewhere it is a character of a name.
  for (const seg of p.slice(drive.length).split(isWindows ? /[\\/]+/ : /\/+/)) {
    if (seg === "" || seg === ".") continue;
    if (seg === ".." && out.length && out[out.length - 1] !== "..") out.pop();
    else if (seg !== ".." || !abs) out.push(seg);
  }
  return drive + (abs ? SEP : "") + out.join(SEP) || ".";
}

export function resolvePath(p: string, cwd = Deno.cwd()): string {
  return normalize(isAbsolute(p) ? p : cwd + SEP + p);
}

export function dirname(p: string): string {
  const n = normalize(p);
  const i = isWindows ? Math.max(n.lastIndexOf("/"), n.lastIndexOf("\\")) : n.lastIndexOf("/");
  if (i < 0) return ".";
  return i === 0 || (isWindows && /^[A-Za-z]:[\\/]$/.test(n.slice(0, i + 1)))
    ? n.slice(0, i + 1)
    : n.slice(0, i);
}

/** Profile names stsh accepts from tags and commands. */
export const PROFILE_NAME = /^[A-Za-z0-9._@+-]{1,64}$/;

export function homeDir(env = Deno.env.toObject()): string {
  const home = env.HOME || env.USERPROFILE ||
    (env.HOMEDRIVE && env.HOMEPATH ? env.HOMEDRIVE + env.HOMEPATH : "");
  if (!home) throw new StshError("Cannot find the home directory: set HOME.");
  return home;
}

/** All state lives under `STSH_HOME`, default `~/.aws/stsh`. */
export function stateDir(env = Deno.env.toObject()): string {
  return env.STSH_HOME || join(homeDir(env), ".aws", "stsh");
}

export const cacheDir = (env?: Record<string, string>) => join(stateDir(env), "cache");
export const trustDir = (env?: Record<string, string>) => join(stateDir(env), "trust");
export const mfaDir = (env?: Record<string, string>) => join(stateDir(env), "mfa");

export function configFile(env = Deno.env.toObject()): string {
  return env.AWS_CONFIG_FILE || join(homeDir(env), ".aws", "config");
}

export function credentialsFile(env = Deno.env.toObject()): string {
  return env.AWS_SHARED_CREDENTIALS_FILE || join(homeDir(env), ".aws", "credentials");
}

/** Create a directory that only its owner can enter (0700); tighten one that is wider. */
export async function privateDir(path: string): Promise<void> {
  await Deno.mkdir(path, { recursive: true, mode: 0o700 });
  if (isWindows) return;
  const st = await Deno.stat(path);
  if (st.uid !== null && st.uid !== Deno.uid()) {
    throw new StshError(`${path} belongs to another user; refusing to keep credentials there.`);
  }
  if (st.mode !== null && (st.mode & 0o077) !== 0) await Deno.chmod(path, 0o700);
}

export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Seconds before expiry at which credentials count as expired (STSH_REFRESH_MARGIN). */
export function refreshMargin(env: Record<string, string> = Deno.env.toObject()): number {
  const v = Number(env.STSH_REFRESH_MARGIN);
  return env.STSH_REFRESH_MARGIN !== undefined && Number.isFinite(v) && v >= 0 ? v : 600;
}

/**
 * What the resolved plan of a profile depends on besides the profile name: the two AWS
 * files (path, mtime, size, inode) and the environment that picks region and endpoint.
 * While it is unchanged, a profile's last session key can be reused without parsing.
 */
export async function configStamp(env: Record<string, string>): Promise<string> {
  const parts: string[] = [];
  for (const f of [configFile(env), credentialsFile(env)]) {
    const st = await Deno.stat(f).catch(() => null);
    parts.push(st ? `${f}:${st.mtime?.getTime()}:${st.size}:${st.ino}` : `${f}:-`);
  }
  for (
    const k of ["AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"]
  ) {
    parts.push(`${k}=${env[k] ?? ""}`);
  }
  return parts.join("|");
}
