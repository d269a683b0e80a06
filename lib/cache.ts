/**
 * On-disk sessions: one JSON file per session under a 0700 directory, 0600 files, written to
 * a temp file and renamed (fsafe.writeAtomic: never through a link), read with a byte limit,
 * each guarded by a lock file so that concurrent resolves of the same session make one STS
 * call. Long-term keys never reach this module. A cache that cannot be read is a miss and one
 * that cannot be written is the caller's warning: neither ever costs the credentials. Given a
 * SessionVault, an MFA session's secret goes to the secret store and its file keeps only
 * what is not secret (a stub naming the store), read back only when the session is used.
 */
import { readTextBounded, Unreadable, writeAtomic } from "./fsafe.ts";
import { cacheDir, isWindows, join, privateDir } from "./paths.ts";
import { sha256Hex } from "./sha256.ts";
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

/** A session file is a few KB; anything much larger is not one of ours. */
const MAX_SESSION_BYTES = 256 * 1024;
/** The index holds a key and a region per profile. */
const MAX_INDEX_BYTES = 4 * 1024 * 1024;

/** Re-exported: the quick path takes it from paths.ts without loading this module. */
export { isFresh } from "./paths.ts";

export interface IndexEntry {
  stamp: string;
  key: string;
  /** The region to export ("" when the profile has none: the user's own is left alone). */
  region: string;
}

export interface Entry extends Session {
  key: string;
  file: string;
}

/** Who holds a lock, as its holder wrote it into the lock file (never a secret). */
export interface Holder {
  pid: number;
  /** When it took the lock (ISO 8601). */
  since: string;
  /** When that process started (ISO 8601). */
  started?: string;
  /** What the lock guards: "MFA session of 'me'", "role 'prod'". */
  label: string;
  /** "question" while a person is asked for an MFA code; "working" otherwise. */
  doing: "question" | "working";
}

export interface LockOptions {
  /** What the lock guards, for whoever waits on it. */
  label: string;
  /**
   * Called each time the lock is found taken: with what its holder says (null when it says
   * nothing readable) and how long this caller has waited so far. Throw to stop waiting.
   */
  poll: (holder: Holder | null, waitedMs: number) => void;
  /** Called when no lock can be taken at all (the directory cannot be written). */
  onNoLock?: (why: string) => void;
}

/** A stable file key from everything that determines a session. */
export function cacheKey(parts: Record<string, string | number | boolean | undefined>) {
  const sorted = Object.fromEntries(
    Object.entries(parts).filter(([, v]) => v !== undefined).sort(([a], [b]) => a.localeCompare(b)),
  );
  return sha256Hex(JSON.stringify(sorted)).slice(0, 40);
}

const enc = new TextEncoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Cache {
  readonly dir: string;
  /** Warnings worth showing (a discarded file and why); never secrets. */
  readonly warnings: string[] = [];
  /** Lock files this process holds now, with what their holders say. */
  private readonly held = new Map<Deno.FsFile, Holder>();

  constructor(env?: Record<string, string>, private readonly vault?: SessionVault) {
    this.dir = cacheDir(env);
  }

  file(key: string): string {
    return join(this.dir, `${key}.json`);
  }

  /**
   * The session for `key`, or null for a miss. A file that does not parse, is not a regular
   * file of ours, or is readable by others is a miss (and discarded); a directory that cannot
   * be read is a miss too, with a warning — never an error. So is a session in a secret store
   * when this Cache has no vault (the warm path never asks one) or the store no longer has it.
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
        if (st.isFile && st.mode !== null && (st.mode & 0o077) !== 0) {
          await this.discard(
            path,
            `could be read by other users (mode ${(st.mode & 0o777).toString(8)})`,
          );
          return null;
        }
      }
      text = await readTextBounded(path, {
        maxBytes: MAX_SESSION_BYTES,
        ownedByMe: true,
        noLinks: true,
      });
    } catch (e) {
      // No cache directory (or a file in its place): a miss; writing will say why.
      if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return null;
      if (e instanceof Unreadable) {
        if (e.why === "does not exist" || /Not a directory/i.test(e.why)) return null;
        if (/cannot be (examined|read)/.test(e.why)) {
          this.warnings.push(`cannot read the cache (${e.message}); going without it.`);
          return null;
        }
        await this.discard(path, e.why);
        return null;
      }
      this.warnings.push(`cannot read the cache (${(e as Error).message}); going without it.`);
      return null;
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

  /** Save a session; throws StshError with the reason (full disk, not a directory …). */
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
    await writeAtomic(this.file(key), JSON.stringify(session, null, 2) + "\n", { mode: 0o600 });
  }

  private get indexFile() {
    return join(this.dir, "index.json");
  }

  private async readIndex(): Promise<Record<string, IndexEntry>> {
    try {
      const text = await readTextBounded(this.indexFile, {
        maxBytes: MAX_INDEX_BYTES,
        ownedByMe: true,
        noLinks: true,
      });
      const o = JSON.parse(text);
      return o && typeof o === "object" && !Array.isArray(o) ? o : {};
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
    await writeAtomic(this.indexFile, JSON.stringify(index) + "\n", { mode: 0o600 });
  }

  /** The profile's last session, if the config is unchanged and it is still fresh. */
  async quick(
    profile: string,
    stamp: string,
    fresh: (s: Session) => boolean,
  ): Promise<{ session: Session; region: string } | null> {
    const index = await this.readIndex();
    const e = Object.hasOwn(index, profile) ? index[profile] : undefined;
    if (!e || e.stamp !== stamp || typeof e.key !== "string" || !/^[0-9a-f]{40}$/.test(e.key)) {
      return null;
    }
    const session = await this.read(e.key);
    const region = typeof e.region === "string" ? e.region : "";
    return session && fresh(session) ? { session, region } : null;
  }

  async remove(key: string): Promise<boolean> {
    const s = await this.load(key).catch(() => null);
    if (s?.stored) await this.vault?.forget(s.stored, key);
    try {
      await Deno.remove(this.file(key));
      return true;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) {
        return false;
      }
      throw e;
    }
  }

  /** Every readable entry, for `status` and `clear` (secrets in a store are not fetched). */
  async list(): Promise<Entry[]> {
    const out: Entry[] = [];
    try {
      for await (const e of Deno.readDir(this.dir)) {
        if (!/^[0-9a-f]{40}\.json$/.test(e.name)) continue;
        const key = e.name.slice(0, -5);
        const s = await this.load(key);
        if (s) out.push({ ...s, key, file: this.file(key) });
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory)) {
        throw e;
      }
    }
    return out.sort((a, b) => a.expiration.localeCompare(b.expiration));
  }

  /**
   * Hold an exclusive lock for `key` while `fn` runs. Locks are advisory locks on
   * `<key>.lock`, released when the process dies, so a killed stsh never wedges the next one.
   * The holder writes who it is and what it does into the lock file; a caller that finds the
   * lock taken polls it (never a blocking wait) and asks `opts.poll` each time whether to go
   * on waiting. When no lock file can be made at all, `fn` runs without one.
   */
  async withLock<T>(key: string, fn: () => Promise<T>, opts: LockOptions): Promise<T> {
    const path = join(this.dir, `${key}.lock`);
    let lockFile: Deno.FsFile;
    try {
      await privateDir(this.dir);
      const st = await Deno.lstat(path).catch(() => null);
      if (st && !st.isFile) throw new Error(`${path} is not a regular file`);
      lockFile = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
    } catch (e) {
      opts.onNoLock?.((e as Error).message);
      return await fn();
    }
    try {
      const t0 = Date.now();
      while (!(await lockFile.tryLock(true))) {
        const waited = Date.now() - t0;
        opts.poll(await this.holderOf(path), waited);
        await sleep(waited < 1000 ? 100 : 250);
      }
      const holder: Holder = {
        pid: Deno.pid,
        since: new Date().toISOString(),
        started: new Date(performance.timeOrigin).toISOString(),
        label: opts.label,
        doing: "working",
      };
      this.held.set(lockFile, holder);
      await this.describe(lockFile, holder);
      try {
        return await fn();
      } finally {
        this.held.delete(lockFile);
        await lockFile.truncate(0).catch(() => {});
      }
    } finally {
      lockFile.close(); // closing releases the lock
    }
  }

  /** Say in every lock this process holds what it is doing now (a person is being asked). */
  async nowDoing(doing: Holder["doing"]): Promise<void> {
    for (const [f, h] of this.held) {
      h.doing = doing;
      await this.describe(f, h);
    }
  }

  private async describe(f: Deno.FsFile, h: Holder) {
    try {
      await f.truncate(0);
      await f.seek(0, Deno.SeekMode.Start);
      const bytes = enc.encode(JSON.stringify(h) + "\n");
      for (let done = 0; done < bytes.length;) done += await f.write(bytes.subarray(done));
    } catch { /* a full disk: waiters just learn less */ }
  }

  private async holderOf(path: string): Promise<Holder | null> {
    try {
      const h = JSON.parse(await readTextBounded(path, { maxBytes: 4096, noLinks: true }));
      if (typeof h?.pid !== "number" || typeof h.label !== "string") return null;
      return {
        pid: h.pid,
        since: String(h.since ?? ""),
        started: typeof h.started === "string" ? h.started : undefined,
        label: h.label,
        doing: h.doing === "question" ? "question" : "working",
      };
    } catch {
      return null;
    }
  }
}
