/**
 * The quick path: warm `stsh env`, `stsh credential-process`, `stsh exec` and `stsh current`
 * answered without commander, without parsing the AWS config and without the SDK — what an
 * SDK's `credential_process` and a typed command pay on every run.
 *
 * It answers only from the per-profile index the engine writes (Cache.rememberTarget: which
 * session a profile resolved to, under a stamp of the config files and the environment that
 * decide it), and only for argument forms it understands exactly as lib/cli.ts does. Anything
 * else — an unknown flag, `--debug`, `--token-code`, a miss, a stale or damaged file, a
 * profile whose session lives in a secret store — returns `undefined` before anything is
 * printed or changed, and main.ts runs the full CLI, which behaves as it always has. Reads
 * here never change a file (a damaged one is the full path's to discard and report).
 *
 * STSH_NO_QUICK=1 turns it off (the tests compare both paths on the same inputs).
 *
 * Files are read with the synchronous calls: each asynchronous one is a round trip through
 * Deno's thread pool, which on a busy machine costs more than the read itself.
 */
import type { Session } from "./cache.ts";
import {
  type ChangeSet,
  credentialChanges,
  credentialsJson,
  FORMAT_NAMES,
  FORMATS,
  processJson,
  stateChanges,
} from "./formats.ts";
import type { Credentials } from "./engine.ts";
import type { CloseOptions } from "./serve.ts";
import {
  cacheDir,
  configStamp,
  isFresh,
  isWindows,
  join,
  later,
  privateDir,
  PROFILE_NAME,
  refreshMargin,
} from "./paths.ts";
import { clock, timeLeft, visible } from "./text.ts";

// ---------------------------------------------------------------------------------------
// Payloads, shared with lib/cli.ts so that both paths print the same bytes

/** What `stsh env --format FORMAT` prints for `c`. */
export function envPayload(c: Credentials, format: string): string {
  if (format === "process") return processJson(c);
  if (format === "json") return credentialsJson(c);
  return FORMATS[format].export({
    ...credentialChanges(c),
    ...stateChanges(c.profile, c.expiration),
  });
}

/** `stsh exec --env`: the person's environment with the credentials' variables applied. */
export function staticKeysEnv(
  env: Record<string, string>,
  c: Credentials,
): Record<string, string> {
  return applyChanges(env, credentialChanges(c));
}

function applyChanges(env: Record<string, string>, changes: ChangeSet): Record<string, string> {
  const out = { ...env };
  for (const [k, v] of Object.entries(changes)) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out;
}

/** What `stsh current` prints. */
export function currentText(env: Record<string, string>): string {
  if (!env.STSH_PROFILE) return "No stsh credentials in this shell.\n";
  const exp = Number(env.STSH_EXPIRES) * 1000;
  const how = env.STSH_PINNED === "1"
    ? "assumed"
    : env.STSH_ROOT
    ? `from ${join(env.STSH_ROOT, TAG_FILE)}`
    : "set by `stsh env`";
  return visible(
    `${env.STSH_PROFILE} (${how}): ${
      exp ? `${timeLeft(exp - Date.now())} left, until ${clock(new Date(exp))}` : "no expiry"
    }\n`,
  );
}

/** lib/trust.ts's TAG_FILE (not imported: `current` would load the trust store for a name). */
const TAG_FILE = ".aws-profile";

// ---------------------------------------------------------------------------------------
// Arguments

/** A command line the quick path may answer. */
export type QuickArgs =
  | { command: "current" }
  | { command: "env"; profile: string; format: string }
  | { command: "credential-process"; profile: string }
  | { command: "exec"; profile: string; staticKeys: boolean; argv: string[] };

/**
 * The forms the quick path answers, each exactly as lib/cli.ts (normalizeArgs, then
 * commander) reads it; undefined for everything else, errors included (the full CLI says
 * them). Accepted:
 *
 *   current
 *   env [PROFILE] [--format F | --format=F | -f F] [--profile NAME | --profile=NAME]
 *   credential-process [PROFILE] [--profile NAME | --profile=NAME]
 *   exec [--env] PROFILE -- CMD…        exec [--profile NAME] -- CMD…   (else $AWS_PROFILE)
 *
 * in any order for env and credential-process; `--profile` may repeat with the same name
 * and agree with PROFILE. Not accepted (the full CLI runs): `--debug`, `-t/--token-code`,
 * `--no-session`, `--help`, any other flag or spelling, `--` outside exec, a second
 * positional, an empty or invalid name. exec is taken only in the shapes where the CLI runs
 * CMD: `--env` before PROFILE (after it commander hands `--env` to the command as its
 * first word), and never with `--profile` or $AWS_PROFILE (normalizeArgs puts the name in
 * front of `--env`, with the same effect).
 */
export function parseQuick(
  argv: string[],
  env: Record<string, string | undefined>,
): QuickArgs | undefined {
  const [command, ...args] = argv;
  if (command === "current") return args.length === 0 ? { command } : undefined;
  if (command !== "env" && command !== "credential-process" && command !== "exec") {
    return undefined;
  }
  const dd = args.indexOf("--");
  if (command === "exec" ? dd < 0 || dd === args.length - 1 : dd >= 0) return undefined;
  const head = dd < 0 ? args : args.slice(0, dd);

  let named: string | undefined; // from --profile
  let positional: string | undefined;
  let format: string | undefined;
  let staticKeys = false;
  for (let i = 0; i < head.length; i++) {
    const a = head[i];
    if (a === "--profile" || a.startsWith("--profile=")) {
      const v = a === "--profile" ? head[++i] : a.slice("--profile=".length);
      if (v === undefined || v.startsWith("-") || !PROFILE_NAME.test(v)) return undefined;
      if (named !== undefined && named !== v) return undefined;
      named = v;
    } else if (command === "env" && (a === "--format" || a === "-f" || a.startsWith("--format="))) {
      if (format !== undefined) return undefined;
      const v = a.startsWith("--format=") ? a.slice("--format=".length) : head[++i];
      if (v === undefined || !FORMAT_NAMES.includes(v)) return undefined;
      format = v;
    } else if (command === "exec" && a === "--env") {
      // Only before the profile, and only once.
      if (staticKeys || positional !== undefined) return undefined;
      staticKeys = true;
    } else if (a.startsWith("-")) {
      return undefined;
    } else {
      if (positional !== undefined || !PROFILE_NAME.test(a)) return undefined;
      positional = a;
    }
  }
  if (named !== undefined && positional !== undefined && named !== positional) return undefined;

  if (command === "exec") {
    if (positional === undefined && staticKeys) return undefined;
    const profile = positional ?? named ?? (env.AWS_PROFILE || "default");
    if (!PROFILE_NAME.test(profile)) return undefined;
    return { command, profile, staticKeys, argv: args.slice(dd + 1) };
  }
  const profile = positional ?? named ?? (env.AWS_PROFILE || "default");
  if (!PROFILE_NAME.test(profile)) return undefined;
  return command === "env" ? { command, profile, format: format ?? "env" } : { command, profile };
}

// ---------------------------------------------------------------------------------------
// The cache, read without side effects

/** A session file is a few KB; the index a line per profile. */
const MAX_SESSION_BYTES = 256 * 1024;
const MAX_INDEX_BYTES = 4 * 1024 * 1024;

/**
 * A file of ours in a private directory, or null: a regular file (not a link), owned by
 * this user, readable by nobody else, not larger than `max`. Nothing is discarded here.
 */
function readPrivate(path: string, max: number): string | null {
  try {
    const st = Deno.lstatSync(path);
    if (!st.isFile || st.size > max) return null;
    if (!isWindows) {
      if (st.uid !== null && st.uid !== Deno.uid()) return null;
      if (st.mode !== null && (st.mode & 0o077) !== 0) return null;
    }
    // Decoded by Deno itself: a TextDecoder's first use costs ~0.3 ms of every warm command.
    const text = Deno.readTextFileSync(path);
    return text.length > max ? null : text;
  } catch {
    return null;
  }
}

function readJson(path: string, max: number): Record<string, unknown> | null {
  const text = readPrivate(path, max);
  if (text === null) return null;
  try {
    const o = JSON.parse(text);
    return o && typeof o === "object" && !Array.isArray(o) ? o : null;
  } catch {
    return null;
  }
}

/**
 * The profile's session from the index when the config is unchanged and the session is
 * fresh, as the engine would return it on a cache hit; null otherwise (a miss, a stale
 * stamp, a damaged or foreign file, a session kept in a secret store).
 */
export function quickCredentials(
  profile: string,
  env: Record<string, string>,
  stamp: string,
  now = Date.now(),
): Credentials | null {
  const dir = cacheDir(env);
  const index = readJson(join(dir, "index.json"), MAX_INDEX_BYTES);
  const e = index && Object.hasOwn(index, profile) ? index[profile] : undefined;
  if (!e || typeof e !== "object") return null;
  const { stamp: st, key, region } = e as Record<string, unknown>;
  if (st !== stamp || typeof key !== "string" || !/^[0-9a-f]{40}$/.test(key)) return null;
  const s = readJson(join(dir, `${key}.json`), MAX_SESSION_BYTES) as Session | null;
  const ok = s !== null && typeof s.accessKeyId === "string" &&
    typeof s.secretAccessKey === "string" && typeof s.sessionToken === "string" &&
    typeof s.expiration === "string" && !isNaN(Date.parse(s.expiration)) &&
    s.stored === undefined && (s.arn === undefined || typeof s.arn === "string") &&
    (s.issued === undefined || typeof s.issued === "string");
  if (!ok || !isFresh(s, now, refreshMargin(env))) return null;
  return {
    accessKeyId: s.accessKeyId,
    secretAccessKey: s.secretAccessKey,
    sessionToken: s.sessionToken,
    expiration: new Date(s.expiration),
    region: typeof region === "string" && region !== "" ? region : undefined,
    profile,
    arn: s.arn,
  };
}

// ---------------------------------------------------------------------------------------
// exec's question about [default], kept under the config stamp

/**
 * `stsh exec` must know whether `[default]` has credentials of its own (they outrank the
 * endpoint in every SDK: lib/serve.ts defaultProfileShadows), which takes a config parse.
 * The full path records the answer under the stamp taken before it parsed; the quick path
 * serves the endpoint only when that record says "nothing" under the current stamp.
 */
const shadowFile = (env: Record<string, string>) => join(cacheDir(env), "exec.json");

/** The recorded answer under `stamp`: null (nothing shadows), a reason, or undefined. */
export function knownShadow(
  env: Record<string, string>,
  stamp: string,
): string | null | undefined {
  const o = readJson(shadowFile(env), 64 * 1024);
  if (!o || o.stamp !== stamp) return undefined;
  return o.shadow === null || typeof o.shadow === "string" ? o.shadow : undefined;
}

/**
 * For lib/cli.ts: `compute()` the answer (it parses the config) and record it under the
 * stamp taken before, for the next exec. A record that cannot be written only costs speed.
 */
export async function shadowUnderStamp(
  env: Record<string, string>,
  compute: () => Promise<string | null>,
): Promise<string | null> {
  let stamp: string | undefined;
  try {
    stamp = configStamp(env);
  } catch { /* no home: nothing to record */ }
  const shadow = await compute();
  if (stamp !== undefined && knownShadow(env, stamp) !== shadow) {
    try {
      const { writeAtomic } = await later<typeof import("./fsafe.ts")>("fsafe");
      await privateDir(cacheDir(env));
      await writeAtomic(shadowFile(env), JSON.stringify({ stamp, shadow }) + "\n", {
        mode: 0o600,
      });
    } catch { /* next time */ }
  }
  return shadow;
}

// ---------------------------------------------------------------------------------------
// Running

const enc = new TextEncoder();

/** Everything or nothing of the payload reaches stdout (as lib/cli.ts `out`). */
function out(text: string): void {
  const bytes = enc.encode(text);
  let done = 0;
  while (done < bytes.length) done += Deno.stdout.writeSync(bytes.subarray(done));
}

/** What lib/cli.ts main says about an error it did not expect (here: stdout failing). */
function unexpected(e: unknown): number {
  Deno.stderr.writeSync(
    enc.encode(`stsh: unexpected error: ${(e as Error).message} (--debug shows details)\n`),
  );
  return 1;
}

/**
 * Answer `argv` from the quick path: the exit code, or undefined when the full CLI must
 * run (nothing has been printed or changed then).
 */
export async function quickMain(argv: string[]): Promise<number | undefined> {
  const env = Deno.env.toObject();
  const q = parseQuick(argv, env);
  if (!q) return undefined;
  if (q.command === "current") {
    const text = currentText(env);
    try {
      out(text);
    } catch (e) {
      return unexpected(e);
    }
    return 0;
  }

  let stamp: string;
  let c: Credentials | null;
  let payload = "";
  let keysEnv: Record<string, string> | undefined;
  try {
    stamp = configStamp(env);
    c = quickCredentials(q.profile, env, stamp);
    if (!c) return undefined;
    // Rendered before anything is written: a value a format refuses is the full path's.
    if (q.command === "env") payload = envPayload(c, q.format);
    else if (q.command === "credential-process") payload = processJson(c);
    else if (q.staticKeys) keysEnv = staticKeysEnv(env, c);
  } catch {
    return undefined;
  }
  if (q.command === "exec" && keysEnv) return await run(q.argv, keysEnv);
  if (q.command !== "exec") {
    try {
      out(payload);
    } catch (e) {
      return unexpected(e);
    }
    return 0;
  }

  // exec with the endpoint: only when [default] is known not to outrank it.
  if (knownShadow(env, stamp) !== null) return undefined;
  const serve = await later<typeof import("./serve.ts")>("serve");
  let server;
  let childEnv: Record<string, string>;
  try {
    // As lib/cli.ts exec starts it (the same options: the same door).
    server = serve.startServer({
      env,
      only: q.profile,
      transport: "raw",
      debug: false,
      log: undefined,
    });
    childEnv = serve.execEnv(env, server, q.profile, c.region);
  } catch {
    await server?.close();
    return undefined; // the full path says why (or manages where this could not)
  }
  return await run(q.argv, childEnv, server);
}

/**
 * Run the command as lib/cli.ts exec does: its exit code (128 + 2 when a signal ended it),
 * Ctrl-C left to reach it from the terminal, the endpoint closed when it ends. A command
 * that cannot be started is the full path's to report (undefined).
 */
async function run(
  argv: string[],
  childEnv: Record<string, string>,
  server?: { close(o?: CloseOptions): Promise<void> },
): Promise<number | undefined> {
  let child;
  try {
    child = new Deno.Command(argv[0], { args: argv.slice(1), env: childEnv, clearEnv: true })
      .spawn();
  } catch {
    await server?.close();
    return undefined;
  }
  Deno.addSignalListener("SIGINT", () => {});
  const status = await child.status;
  // The endpoint ends with the command (a request in flight is answered first, bounded).
  if (server) await server.close({ boundMs: 3000, exiting: true });
  return status.code || (status.signal ? 128 + 2 : 0);
}
