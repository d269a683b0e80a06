/** Where stsh keeps its state on Linux, macOS and Windows. */
import { join } from "node:path";
import { StshError } from "./errors.ts";

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

export const isWindows = Deno.build.os === "windows";

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
