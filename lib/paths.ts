/** Where stsh keeps its state on Linux, macOS and Windows. */
import { StshError } from "./errors.ts";

export const isWindows = Deno.build.os === "windows";

/**
 * A module of lib/ loaded when first needed, through a computed URL: Deno reads and parses
 * everything a literal `import("./x.ts")` can reach before running anything (see main.ts),
 * so a command reads only the modules it runs. (deno compile: deno.json includes lib/.)
 */
export function later<T>(name: string): Promise<T> {
  return import(new URL(`./${name}.ts`, import.meta.url).href);
}
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

/** A leading `~/` means the home directory, as the SDK reads these variables (sts.md §5.1). */
function homePath(p: string, env: Record<string, string>): string {
  return p.startsWith("~/") ? join(homeDir(env), p.slice(2)) : p;
}

export function configFile(env = Deno.env.toObject()): string {
  return env.AWS_CONFIG_FILE
    ? homePath(env.AWS_CONFIG_FILE, env)
    : join(homeDir(env), ".aws", "config");
}

export function credentialsFile(env = Deno.env.toObject()): string {
  return env.AWS_SHARED_CREDENTIALS_FILE
    ? homePath(env.AWS_SHARED_CREDENTIALS_FILE, env)
    : join(homeDir(env), ".aws", "credentials");
}

/**
 * Create a directory that only its owner can enter (0700); tighten one that is wider. A link
 * on the way (a state directory kept elsewhere) is followed, and where it leads is checked
 * before anything is created there: a directory of yours, every directory above it yours or
 * root's and not open to all (unless sticky, as /tmp) — whoever may rename an entry above
 * could swap this directory for their own. Anything else is refused with the reason: stsh
 * never keeps credentials where another user could read or swap them.
 */
export async function privateDir(path: string): Promise<void> {
  if (!isWindows) await checkAbove(path);
  try {
    await Deno.mkdir(path, { recursive: true, mode: 0o700 });
  } catch (e) {
    // A dangling link, or a file in the way: say what is there.
    if (!(e instanceof Deno.errors.AlreadyExists)) {
      throw new StshError(`Cannot create ${path}: ${ioReason(e)}.`);
    }
  }
  if (isWindows) return;
  let real: string;
  let st: Deno.FileInfo;
  try {
    real = await Deno.realPath(path);
    st = await Deno.lstat(real);
  } catch (e) {
    throw new StshError(`Cannot use ${path}: ${ioReason(e)}.`);
  }
  const via = real === path ? "" : ` (a link to ${real})`;
  if (!st.isDirectory) throw new StshError(`${path}${via} is not a directory.`);
  if (st.uid !== null && st.uid !== Deno.uid()) {
    throw new StshError(
      `${path}${via} belongs to another user; refusing to keep credentials there.`,
    );
  }
  if (st.mode !== null && (st.mode & 0o077) !== 0) await Deno.chmod(real, 0o700);
}

/** The nearest existing directory at or above `path`, resolved, and all above it: safe? */
async function checkAbove(path: string): Promise<void> {
  let at = path;
  while (!(await Deno.lstat(at).then(() => true, () => false))) {
    const up = dirname(at);
    if (up === at) return;
    at = up;
  }
  let real: string;
  try {
    real = await Deno.realPath(at);
  } catch {
    return; // a dangling link: mkdir says so
  }
  const via = real === at ? "" : ` (${at} is a link to ${real})`;
  for (let d = real, last = ""; d !== last; last = d, d = dirname(d)) {
    const st = await Deno.stat(d).catch(() => null);
    if (!st?.isDirectory || st.mode === null || st.uid === null) continue;
    const mine = st.uid === Deno.uid();
    const itself = d === real && at === path;
    if (itself && mine) continue; // its mode is tightened after
    if (!mine && (itself || st.uid !== 0)) {
      throw new StshError(
        `${
          itself ? path + via : `${path} is inside ${d}${via}, which`
        } belongs to another user; refusing to keep credentials there.`,
      );
    }
    if ((st.mode & 0o002) !== 0 && (st.mode & 0o1000) === 0) {
      throw new StshError(
        `${path} is inside ${d}${via}, which anyone may change; refusing to keep credentials there.`,
      );
    }
  }
}

function ioReason(e: unknown): string {
  if (e instanceof Deno.errors.NotADirectory) return "a file is in the way";
  if (e instanceof Deno.errors.NotFound) return "a link leads nowhere, or a parent is missing";
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied";
  return String((e as Error)?.message ?? e).replace(/\s*\(os error \d+\).*$/, "");
}

/** Seconds before expiry at which credentials count as expired (STSH_REFRESH_MARGIN). */
export function refreshMargin(env: Record<string, string> = Deno.env.toObject()): number {
  const v = Number(env.STSH_REFRESH_MARGIN);
  return env.STSH_REFRESH_MARGIN !== undefined && Number.isFinite(v) && v >= 0 ? v : 600;
}

/**
 * Is a session good for `marginSeconds` more? The margin is capped at half the session's
 * lifetime, so credentials that AWS issues shorter than the margin are not "expired" the
 * moment they arrive (which would cost an STS call on every use). Here rather than in
 * cache.ts, whose module the quick path then need not load.
 */
export function isFresh(
  s: { expiration: string; issued?: string },
  nowMs: number,
  marginSeconds: number,
): boolean {
  const exp = Date.parse(s.expiration);
  const issued = s.issued ? Date.parse(s.issued) : NaN;
  const margin = Number.isFinite(issued)
    ? Math.min(marginSeconds * 1000, (exp - issued) / 2)
    : marginSeconds * 1000;
  return exp - nowMs > margin;
}

/**
 * Whether `dir` holds an entry `name`, by listing `dir` (false when it cannot be listed).
 * For small directories and names that are usually absent on a warm path: a failed stat
 * throws, and the first exception in a process costs about half a millisecond.
 */
export function hasEntry(dir: string, name: string): boolean {
  try {
    for (const e of Deno.readDirSync(dir)) if (e.name === name) return true;
  } catch { /* no such directory */ }
  return false;
}

/**
 * What the resolved plan of a profile depends on besides the profile name: the two AWS
 * files and stsh's key index (path, mtime, size, inode) and the environment that picks
 * region and endpoint.
 * While it is unchanged, a profile's last session key can be reused without parsing.
 */
export function configStamp(env: Record<string, string>): string {
  // "2": entries remembered under the old region rule (the source's region) do not match.
  const parts: string[] = ["2"];
  // The key index (lib/secrets.ts) says which profiles have keys in a secret store.
  // Synchronous stats: the hook's warm cd and the quick path read it first thing, and a
  // round trip through the thread pool per file costs more than the stat.
  // keys.json exists only once `stsh keys` was used: asked of the directory listing first.
  const keys = join(stateDir(env), "keys.json");
  const keysThere = hasEntry(stateDir(env), "keys.json");
  for (const f of [configFile(env), credentialsFile(env), keys]) {
    let st: Deno.FileInfo | null = null;
    try {
      if (f !== keys || keysThere) st = Deno.statSync(f);
    } catch { /* absent */ }
    parts.push(st ? `${f}:${st.mtime?.getTime()}:${st.size}:${st.ino}` : `${f}:-`);
  }
  for (
    const k of ["AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"]
  ) {
    parts.push(`${k}=${env[k] ?? ""}`);
  }
  return parts.join("|");
}
