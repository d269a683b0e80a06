/**
 * Secrets at rest (design.md, "Secrets at rest"): one small store interface — get, set,
 * delete, list — with a backend per platform under lib/secrets/ (the Secret Service, the
 * macOS Keychain, the Windows Credential Manager, an encrypted file). Long-term keys live
 * there instead of ~/.aws/credentials (`stsh keys`), and MFA sessions whenever a store is
 * active. A backend is loaded only when a secret is really needed: the warm path (a cache
 * hit, the hook's `cd`) never imports one, starts a helper or asks for a passphrase.
 *
 * Also here: the key index, a 0600 file (profile -> key id, backend) that lets planning and
 * the cache keys of MFA sessions work without asking the store, which holds the secrets.
 */
import { Cancelled, EXIT, MfaNeeded, StshError } from "./errors.ts";
import { readTextBounded, Unreadable, writeAtomic } from "./fsafe.ts";
import { isWindows, join, privateDir, PROFILE_NAME, stateDir } from "./paths.ts";
import { notice } from "./tty.ts";

export const BACKENDS = ["secret-service", "keychain", "wincred", "file"] as const;
export type BackendName = typeof BACKENDS[number];
export type Choice = "auto" | "none" | BackendName;

/** A place that keeps secrets, named by stsh's item names (`keys:PROFILE`, …). */
export interface SecretStore {
  readonly name: BackendName;
  /** For messages: "the Secret Service", "the encrypted file ~/.aws/stsh/keyring.json". */
  readonly where: string;
  /** The secret, or null when there is no such item. */
  get(item: string): Promise<string | null>;
  /** Create or replace an item; `label` is what a keyring's own UI shows. */
  set(item: string, secret: string, label: string): Promise<void>;
  /** Remove an item; false when there was none. */
  delete(item: string): Promise<boolean>;
  /** The names of stsh's items (never their secrets). */
  list(): Promise<string[]>;
  /**
   * Get ready to write, asking the person now if anything must be asked (a passphrase), so
   * that it happens before an MFA code is spent. Default: a lookup.
   */
  ready?(): Promise<void>;
}

export interface StoreOptions {
  env: Record<string, string>;
  /** May the store ask the person (a passphrase) on the terminal? */
  interactive: boolean;
}

/** Why a store failed, so callers can fall back (unavailable) or stop (everything else). */
export type StoreProblem = "unavailable" | "locked" | "timeout" | "passphrase" | "failed";

export class StoreError extends StshError {
  /** What the backend's own tool said, when it said anything (made visible, one line). */
  detail = "";

  constructor(readonly problem: StoreProblem, message: string, hint?: string) {
    super(message, hint);
    this.name = "StoreError";
  }
}

/**
 * The encrypted file needs its passphrase and this run may not ask for it (a hook without
 * --prompt): an MfaNeeded, so the shell hooks run stsh again with --prompt, as for a code.
 */
export class PassphraseNeeded extends MfaNeeded {
  constructor(file: string) {
    super("", "");
    this.message = `The passphrase of the encrypted keyring ${file} is needed.`;
    (this as { hint?: string }).hint =
      "Run it in a terminal, or set STSH_KEYRING_PASSPHRASE (weaker: see README).";
    this.name = "PassphraseNeeded";
  }
}

export const HINT_NO_KEYRING =
  "Set STSH_KEYRING=file to keep them in a passphrase-encrypted file instead.";

/** STSH_KEYRING, checked: auto (default), none, or a backend's name. */
export function keyringChoice(env: Record<string, string>): Choice {
  const v = (env.STSH_KEYRING ?? "").trim() || "auto";
  if (v === "auto" || v === "none" || (BACKENDS as readonly string[]).includes(v)) {
    return v as Choice;
  }
  throw new StshError(
    `STSH_KEYRING is '${v}'; it must be one of auto, ${BACKENDS.join(", ")}, none.`,
    undefined,
    EXIT.refused,
  );
}

/** Seconds one keyring operation may take: STSH_KEYRING_TIMEOUT, default 20. */
export function keyringTimeoutMs(env: Record<string, string>): number {
  const s = Number(env.STSH_KEYRING_TIMEOUT);
  return Number.isFinite(s) && s > 0 ? s * 1000 : 20_000;
}

/** Is `name` a file in one of PATH's directories? (No process is started to find out.) */
export function onPath(name: string, env: Record<string, string>): boolean {
  for (const dir of (env.PATH ?? "").split(isWindows ? ";" : ":")) {
    if (!dir) continue;
    try {
      if (Deno.statSync(join(dir, name)).isFile) return true;
    } catch { /* not here */ }
  }
  return false;
}

/** Can a D-Bus session bus be reached, going by what libdbus and GIO look at? */
export function sessionBus(env: Record<string, string>): boolean {
  if (env.DBUS_SESSION_BUS_ADDRESS) return true;
  if (!env.XDG_RUNTIME_DIR) return false;
  try {
    return !Deno.statSync(join(env.XDG_RUNTIME_DIR, "bus")).isFile;
  } catch {
    return false;
  }
}

/**
 * Where new secrets go: the backend STSH_KEYRING names, or for `auto` the platform's keyring
 * when it can be reached (Linux: a session bus and secret-tool; macOS: the Keychain; Windows:
 * the Credential Manager), else none. `auto` stays true so that a Secret Service that turns
 * out not to answer falls back to none instead of failing.
 */
export function chooseBackend(env: Record<string, string>): {
  name: BackendName | null;
  auto: boolean;
} {
  const c = keyringChoice(env);
  if (c === "none") return { name: null, auto: false };
  if (c !== "auto") return { name: c, auto: false };
  const os = Deno.build.os;
  if (os === "darwin") return { name: "keychain", auto: true };
  if (os === "windows") return { name: "wincred", auto: true };
  if (sessionBus(env) && onPath("secret-tool", env)) return { name: "secret-service", auto: true };
  return { name: null, auto: true };
}

/** Why `auto` found no keyring, for the one line that says so. */
export function whyNoKeyring(env: Record<string, string>): string {
  if (keyringChoice(env) === "none") return "STSH_KEYRING is none: no keyring is used.";
  if (Deno.build.os === "linux") {
    if (!sessionBus(env)) {
      return "No keyring here: there is no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set) for the Secret Service.";
    }
    if (!onPath("secret-tool", env)) {
      return "No keyring here: secret-tool is not installed (Debian/Ubuntu: libsecret-tools; Fedora/Arch: libsecret).";
    }
  }
  return `No keyring here: stsh knows none on ${Deno.build.os}.`;
}

/**
 * Open one backend (its module is loaded only now). One instance per backend, environment
 * and mode for the whole process, so what it learnt (an unlocked file's key, derived once
 * in about a second) serves the keys and the MFA session of one resolve alike.
 */
export function openStore(name: BackendName, opts: StoreOptions): Promise<SecretStore> {
  let mine = opened.get(opts.env);
  if (!mine) opened.set(opts.env, mine = new Map());
  const id = `${name}:${opts.interactive}`;
  let s = mine.get(id);
  if (!s) {
    s = load(name, opts);
    s.catch(() => mine.delete(id));
    mine.set(id, s);
  }
  return s;
}

const opened = new WeakMap<Record<string, string>, Map<string, Promise<SecretStore>>>();

async function load(name: BackendName, opts: StoreOptions): Promise<SecretStore> {
  switch (name) {
    case "secret-service":
      return new (await import("./secrets/secret_service.ts")).SecretService(opts);
    case "keychain":
      return new (await import("./secrets/keychain.ts")).Keychain(opts);
    case "wincred":
      return new (await import("./secrets/wincred.ts")).WinCred(opts);
    case "file":
      return new (await import("./secrets/file.ts")).FileStore(opts);
  }
}

/** The store new secrets go to; a clear error when there is none. */
export async function storeForWriting(opts: StoreOptions): Promise<SecretStore> {
  const { name } = chooseBackend(opts.env);
  if (!name) throw new StshError(whyNoKeyring(opts.env), HINT_NO_KEYRING);
  return await openStore(name, opts);
}

/** Item names: long-term keys by profile, MFA sessions by their cache key. */
export const keysItem = (profile: string) => `keys:${profile}`;
export const sessionItem = (cacheKey: string) => `mfa-session:${cacheKey}`;

// --- Long-term keys ------------------------------------------------------------------------

const KEY_ID = /^AKIA[A-Z0-9]{12,124}$/;
const SECRET = /^[A-Za-z0-9/+]{40}$/;

/** The shapes AWS gives long-term keys, checked before anything is stored. */
export function checkKeyShapes(keyId: string, secret: string): void {
  if (/^ASIA/.test(keyId)) {
    throw new StshError(
      "That key id starts with ASIA: it belongs to temporary credentials, which need a session token and expire.",
      "stsh keeps an IAM user's long-term keys (AKIA…).",
      EXIT.refused,
    );
  }
  if (!KEY_ID.test(keyId)) {
    throw new StshError(
      `That is not an access key id: AKIA followed by 12 to 124 capital letters and digits (got ${keyId.length} characters${
        /^AKIA/.test(keyId) ? "" : ", not starting with AKIA"
      }).`,
      undefined,
      EXIT.refused,
    );
  }
  if (!SECRET.test(secret)) {
    throw new StshError(
      `That is not a secret access key: 40 characters of A-Z a-z 0-9 / + (got ${secret.length}${
        /^[A-Za-z0-9/+]*$/.test(secret) ? "" : ", with other characters"
      }).`,
      undefined,
      EXIT.refused,
    );
  }
}

/** AKIA…WXYZ: enough to tell keys apart, never the whole id. */
export function maskKeyId(id: string): string {
  return id.length > 8 ? `${id.slice(0, 4)}…${id.slice(-4)}` : "…";
}

export interface KeyRecord {
  keyId: string;
  backend: BackendName;
  /** ISO 8601: when the keys were stored. */
  added: string;
}

export const keyIndexFile = (env: Record<string, string>) => join(stateDir(env), "keys.json");

/**
 * The key index: which profiles have keys in which store, and their key ids (not secret;
 * AWS shows them in every CloudTrail record). Missing file: no stored keys.
 */
export async function readKeyIndex(
  env: Record<string, string>,
): Promise<Record<string, KeyRecord>> {
  const path = keyIndexFile(env);
  let text: string;
  try {
    text = await readTextBounded(path, { maxBytes: 1 << 20, ownedByMe: true, noLinks: true });
  } catch (e) {
    if (e instanceof Unreadable && e.why === "does not exist") return {};
    throw new StshError(
      `The key index ${e instanceof Unreadable ? e.message : `${path}: ${(e as Error).message}`}.`,
    );
  }
  const out: Record<string, KeyRecord> = {};
  try {
    const o = JSON.parse(text);
    for (const [profile, r] of Object.entries(o as Record<string, KeyRecord>)) {
      if (
        PROFILE_NAME.test(profile) && typeof r?.keyId === "string" && KEY_ID.test(r.keyId) &&
        (BACKENDS as readonly string[]).includes(r.backend)
      ) out[profile] = { keyId: r.keyId, backend: r.backend, added: String(r.added ?? "") };
    }
  } catch {
    throw new StshError(
      `The key index ${path} is damaged; stsh no longer knows which profiles have keys in a keyring.`,
      "Move it away and run `stsh keys add PROFILE` for each profile again.",
    );
  }
  return out;
}

/** Change the key index under its lock (read, change, write atomically, 0600). */
export async function updateKeyIndex(
  env: Record<string, string>,
  change: (index: Record<string, KeyRecord>) => void,
): Promise<void> {
  const path = keyIndexFile(env);
  await privateDir(stateDir(env));
  await withFileLock(`${path}.lock`, keyringTimeoutMs(env), async () => {
    const index = await readKeyIndex(env);
    change(index);
    await writeAtomic(path, JSON.stringify(index, null, 2) + "\n", { mode: 0o600 });
  });
}

/**
 * The long-term keys of `profile` from the store the key index names. The one place keys
 * come out of a store; called only when STS must be called with them.
 */
export async function storedKeys(
  profile: string,
  rec: { accessKeyId: string; stored: BackendName },
  opts: StoreOptions,
): Promise<{ accessKeyId: string; secretAccessKey: string }> {
  const store = await openStore(rec.stored, opts);
  const text = await store.get(keysItem(profile));
  if (text === null) {
    throw new StshError(
      `The keys of profile '${profile}' are no longer in ${store.where} (deleted outside stsh?).`,
      `Store them again: stsh keys add ${profile}`,
    );
  }
  let k: { accessKeyId?: unknown; secretAccessKey?: unknown };
  try {
    k = JSON.parse(text);
  } catch {
    k = {};
  }
  if (typeof k.secretAccessKey !== "string" || k.accessKeyId !== rec.accessKeyId) {
    throw new StshError(
      `The item for profile '${profile}' in ${store.where} does not hold its keys (${
        maskKeyId(rec.accessKeyId)
      }); it was changed outside stsh.`,
      `Store them again: stsh keys add ${profile}`,
    );
  }
  return { accessKeyId: rec.accessKeyId, secretAccessKey: k.secretAccessKey };
}

// --- MFA sessions: the Cache's seam --------------------------------------------------------

/**
 * What the Cache needs to keep MFA sessions' secrets out of its files: where a new one goes,
 * and the way back. Backends open lazily, once per process.
 */
export class SessionVault {
  /** Set when an `auto` Secret Service did not answer: files, for the rest of this run. */
  private fallback = false;

  constructor(private readonly opts: StoreOptions) {}

  private open(name: BackendName): Promise<SecretStore> {
    return openStore(name, this.opts);
  }

  private target(): BackendName | null {
    if (this.fallback) return null;
    return chooseBackend(this.opts.env).name;
  }

  /**
   * Make sure a new MFA session can be kept before a code is spent on it: unlock the
   * keyring, ask the passphrase. A store that `auto` picked and that does not answer means
   * files (as with no keyring); any other failure stops here, before the MFA question.
   */
  async ready(): Promise<void> {
    const name = this.target();
    if (!name) return;
    try {
      const store = await this.open(name);
      await (store.ready ? store.ready() : store.get(sessionItem("ready")));
    } catch (e) {
      if (this.fellBack(e)) return;
      throw e;
    }
  }

  private fellBack(e: unknown): boolean {
    if (
      e instanceof StoreError && e.problem === "unavailable" && chooseBackend(this.opts.env).auto
    ) {
      this.fallback = true;
      return true;
    }
    return false;
  }

  /** Keep an MFA session's secret; returns the backend holding it, or null: keep it in the file. */
  async keep(key: string, secret: string, label: string): Promise<BackendName | null> {
    const name = this.target();
    if (!name) return null;
    try {
      await (await this.open(name)).set(sessionItem(key), secret, label);
      return name;
    } catch (e) {
      if (this.fellBack(e)) return null;
      if (e instanceof Cancelled || e instanceof MfaNeeded) throw e;
      // The code is spent: the session is kept as it was before keyrings, rather than lost.
      notice(
        `${
          e instanceof StshError ? e.message : (e as Error).message
        } The new MFA session is kept in a 0600 file this time.`,
      );
      return null;
    }
  }

  /** The secret of a session kept in `backend`; null when it is gone or not reachable here. */
  async fetch(backend: string, key: string): Promise<string | null> {
    if (!(BACKENDS as readonly string[]).includes(backend)) return null;
    if (keyringChoice(this.opts.env) === "none") return null;
    try {
      return await (await this.open(backend as BackendName)).get(sessionItem(key));
    } catch (e) {
      if (e instanceof StoreError && e.problem === "unavailable") return null;
      throw e;
    }
  }

  /** Remove a session's secret (best effort: a session nobody can read is harmless). */
  async forget(backend: string, key: string): Promise<void> {
    if (!(BACKENDS as readonly string[]).includes(backend)) return;
    try {
      await (await this.open(backend as BackendName)).delete(sessionItem(key));
    } catch { /* left behind; `stsh keys list --verify` shows it */ }
  }
}

// --- Shared by backends --------------------------------------------------------------------

/**
 * Hold an exclusive lock on `lockPath` while `fn` runs, waiting at most `ms` for another
 * process to let go (a wedged holder must not hang stsh).
 */
export async function withFileLock<T>(lockPath: string, ms: number, fn: () => Promise<T>) {
  const f = await Deno.open(lockPath, { read: true, write: true, create: true, mode: 0o600 });
  try {
    const until = Date.now() + ms;
    while (!(await f.tryLock(true))) {
      if (Date.now() > until) {
        throw new StoreError(
          "timeout",
          `Another stsh has held ${lockPath} for over ${ms / 1000} s; gave up waiting.`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return await fn();
  } finally {
    f.close();
  }
}

/** POSIX single quotes, for the (non-secret) arguments of a keyring tool. */
export function shArg(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}
