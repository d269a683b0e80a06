/**
 * On-disk sessions: one JSON file per session under a 0700 directory, 0600 files, written to
 * a temp file and renamed, each guarded by a lock file so that concurrent resolves of the
 * same session make one STS call. Long-term keys never reach this module. Given a
 * SessionVault, an MFA session's secret goes to the secret store and its file keeps only
 * what is not secret (a stub naming the store), read back only when the session is used.
 */
import { cacheDir, isWindows, join, privateDir, sha256Hex } from "./paths.ts";
import type { SessionVault } from "./secrets.ts";

export interface Session {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  /** ISO 8601 UTC. */
  expiration: string;
  kind: "mfa-session" | "session" | "role";
  /** The profile that made it (for `status` and `clear`); the key decides sharing. */
  profile: string;
  /** The ARN stsh acted as, when known (roles). */
  arn?: string;
  /** Whether this session carries MFA (so a role assumed from it satisfies MFA trust). */
  mfa: boolean;
  /** ISO 8601 UTC: when it was issued (absent in files from older versions). */
  issued?: string;
  /** The secret store holding secretAccessKey and sessionToken (then empty here). */
  stored?: string;
}

/**
 * Is a session good for `marginSeconds` more? The margin is capped at half the session's
 * lifetime, so credentials that AWS issues shorter than the margin are not "expired" the
 * moment they arrive (which would cost an STS call on every use).
 */
export function isFresh(s: Session, nowMs: number, marginSeconds: number): boolean {
  const exp = Date.parse(s.expiration);
  const issued = s.issued ? Date.parse(s.issued) : NaN;
  const margin = Number.isFinite(issued)
    ? Math.min(marginSeconds * 1000, (exp - issued) / 2)
    : marginSeconds * 1000;
  return exp - nowMs > margin;
}

export interface IndexEntry {
  stamp: string;
  key: string;
  region: string;
}

export interface Entry extends Session {
  key: string;
  file: string;
}

/** A stable file key from everything that determines a session. */
export async function cacheKey(parts: Record<string, string | number | boolean | undefined>) {
  const sorted = Object.fromEntries(
    Object.entries(parts).filter(([, v]) => v !== undefined).sort(([a], [b]) => a.localeCompare(b)),
  );
  return (await sha256Hex(JSON.stringify(sorted))).slice(0, 40);
}

export class Cache {
  readonly dir: string;
  /** Warnings worth showing (a discarded file and why); never secrets. */
  readonly warnings: string[] = [];

  constructor(env?: Record<string, string>, private readonly vault?: SessionVault) {
    this.dir = cacheDir(env);
  }

  file(key: string): string {
    return join(this.dir, `${key}.json`);
  }

  /**
   * The session for `key`, or null for a miss. A file that does not parse is a miss; so is a
   * session in a secret store when this Cache has no vault (the warm path never asks one) or
   * the store no longer has it.
   */
  async read(key: string): Promise<Session | null> {
    const s = await this.load(key);
    if (!s?.stored) return s;
    if (!this.vault) return null;
    const secret = await this.vault.fetch(s.stored, key);
    try {
      const { secretAccessKey, sessionToken } = JSON.parse(secret ?? "null") ?? {};
      if (typeof secretAccessKey === "string" && typeof sessionToken === "string") {
        return { ...s, secretAccessKey, sessionToken };
      }
    } catch { /* below */ }
    this.warnings.push(
      `the MFA session of '${s.profile}' could not be read back from the ${s.stored} store (deleted there, or not reachable here).`,
    );
    return null;
  }

  /** The file's session as it is: a stub's secrets are empty. */
  private async load(key: string): Promise<Session | null> {
    const path = this.file(key);
    let text: string;
    try {
      if (!isWindows) {
        const st = await Deno.lstat(path);
        if (!st.isFile || (st.uid !== null && st.uid !== Deno.uid())) {
          await this.discard(path, "is not a regular file owned by you");
          return null;
        }
        if (st.mode !== null && (st.mode & 0o077) !== 0) {
          await this.discard(
            path,
            `could be read by other users (mode ${(st.mode & 0o777).toString(8)})`,
          );
          return null;
        }
      }
      text = await Deno.readTextFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    }
    try {
      const s = JSON.parse(text) as Session;
      const ok = typeof s.accessKeyId === "string" && typeof s.secretAccessKey === "string" &&
        typeof s.sessionToken === "string" && !isNaN(Date.parse(s.expiration)) &&
        (s.stored === undefined || typeof s.stored === "string");
      if (ok) return s;
    } catch { /* fall through */ }
    await this.discard(path, "was damaged");
    return null;
  }

  private async discard(path: string, why: string) {
    this.warnings.push(`cache file ${path} ${why}; discarded it.`);
    await Deno.remove(path).catch(() => {});
  }

  async write(key: string, session: Session): Promise<void> {
    if (session.kind === "mfa-session" && this.vault) {
      const before = (await this.load(key))?.stored;
      const { secretAccessKey, sessionToken } = session;
      const stored = await this.vault.keep(
        key,
        JSON.stringify({ secretAccessKey, sessionToken }),
        `stsh: MFA session of '${session.profile}'`,
      );
      if (stored) session = { ...session, secretAccessKey: "", sessionToken: "", stored };
      if (before && before !== stored) await this.vault.forget(before, key);
    }
    await privateDir(this.dir);
    const path = this.file(key);
    const tmp = `${path}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
    try {
      await Deno.writeTextFile(tmp, JSON.stringify(session, null, 2) + "\n", {
        mode: 0o600,
        createNew: true,
      });
      await Deno.rename(tmp, path);
    } catch (e) {
      await Deno.remove(tmp).catch(() => {});
      throw e;
    }
  }

  private get indexFile() {
    return join(this.dir, "index.json");
  }

  private async readIndex(): Promise<Record<string, IndexEntry>> {
    try {
      const o = JSON.parse(await Deno.readTextFile(this.indexFile));
      return o && typeof o === "object" ? o : {};
    } catch {
      return {};
    }
  }

  /**
   * Remember which session a profile resolved to under a config stamp (see configStamp),
   * so the next resolve can read it without parsing the AWS config or loading the engine.
   * Holds only file keys and regions: nothing secret.
   */
  async rememberTarget(profile: string, entry: IndexEntry): Promise<void> {
    const index = await this.readIndex();
    index[profile] = entry;
    await privateDir(this.dir);
    const tmp = `${this.indexFile}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
    await Deno.writeTextFile(tmp, JSON.stringify(index) + "\n", { mode: 0o600 });
    await Deno.rename(tmp, this.indexFile);
  }

  /** The profile's last session, if the config is unchanged and it is still fresh. */
  async quick(
    profile: string,
    stamp: string,
    fresh: (s: Session) => boolean,
  ): Promise<{ session: Session; region: string } | null> {
    const e = (await this.readIndex())[profile];
    if (!e || e.stamp !== stamp || typeof e.key !== "string" || !/^[0-9a-f]{40}$/.test(e.key)) {
      return null;
    }
    const session = await this.read(e.key);
    return session && fresh(session) ? { session, region: e.region } : null;
  }

  async remove(key: string): Promise<boolean> {
    const s = await this.load(key).catch(() => null);
    if (s?.stored) await this.vault?.forget(s.stored, key);
    try {
      await Deno.remove(this.file(key));
      return true;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return false;
      throw e;
    }
  }

  /** Every readable entry, for `status` and `clear` (secrets in a store are not fetched). */
  async list(): Promise<Entry[]> {
    const out: Entry[] = [];
    try {
      for await (const e of Deno.readDir(this.dir)) {
        if (!e.isFile || !/^[0-9a-f]{40}\.json$/.test(e.name)) continue;
        const key = e.name.slice(0, -5);
        const s = await this.load(key);
        if (s) out.push({ ...s, key, file: this.file(key) });
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    return out.sort((a, b) => a.expiration.localeCompare(b.expiration));
  }

  /**
   * Hold an exclusive lock for `key` while `fn` runs; `onWait` is called once when another
   * process holds it. Locks are advisory locks on `<key>.lock`, released when the process
   * dies, so a killed stsh never wedges the next one.
   */
  async withLock<T>(key: string, fn: () => Promise<T>, onWait?: () => void): Promise<T> {
    await privateDir(this.dir);
    const lockFile = await Deno.open(join(this.dir, `${key}.lock`), {
      read: true,
      write: true,
      create: true,
      mode: 0o600,
    });
    try {
      if (!(await lockFile.tryLock(true))) {
        onWait?.();
        await lockFile.lock(true);
      }
      return await fn();
    } finally {
      lockFile.close(); // closing releases the lock
    }
  }
}
