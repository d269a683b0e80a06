/**
 * Files from the outside world (design.md, "Files stsh reads from the outside world"):
 * lstat before open, only regular files, a hard byte limit that counts every byte, a
 * deadline on open (a FIFO swapped in after the check would block it), and writes that never
 * follow a link — a temp file created exclusively beside the target, then renamed over it.
 */
import { StshError } from "./errors.ts";
import { dirname, isWindows, join, resolvePath } from "./paths.ts";
import { visible } from "./text.ts";

/** Why a file was not read: said in one line by the caller. */
export class Unreadable extends Error {
  constructor(readonly path: string, readonly why: string) {
    super(`${visible(path)} ${why}`);
    this.name = "Unreadable";
  }
}

export interface ReadRules {
  /** Refuse files larger than this many bytes (every byte counts, NULs too). */
  maxBytes: number;
  /** Refuse a file (or a link to it) owned by another user (ignored on Windows). */
  ownedByMe?: boolean;
  /** Refuse a file that others may write (mode & 022; ignored on Windows). */
  notWritableByOthers?: boolean;
  /** Refuse a symbolic link even when it resolves to a regular file. */
  noLinks?: boolean;
  /** Refuse an empty file — and with it /proc files, which all say they are empty. */
  nonEmpty?: boolean;
  /** Give up opening after this long (default 1000 ms). */
  openTimeoutMs?: number;
}

/**
 * What `path` is, without opening it: lstat, then (for a link) the target's stat. Throws
 * Unreadable with a reason for anything that is not a plain regular file we may read.
 * Returns the target's info (size, mode, uid) and whether `path` itself was a link.
 */
export function checkRegular(
  path: string,
  rules: ReadRules,
): Promise<{ info: Deno.FileInfo; link: boolean }> {
  try {
    return Promise.resolve(checkRegularSync(path, rules));
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * checkRegular without a trip through Deno's thread pool: lstat and stat never block (they
 * open nothing), and each asynchronous call costs a thread hand-off — on a busy machine more
 * than the call itself, and the hook makes these on every `cd` into a tagged tree.
 */
export function checkRegularSync(
  path: string,
  rules: ReadRules,
): { info: Deno.FileInfo; link: boolean } {
  let st: Deno.FileInfo;
  try {
    st = Deno.lstatSync(path);
  } catch (e) {
    // A path under a regular file (ENOTDIR) cannot exist either.
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) {
      throw new Unreadable(path, "does not exist");
    }
    throw new Unreadable(path, `cannot be examined (${(e as Error).message})`);
  }
  const link = st.isSymlink;
  if (link) {
    if (rules.noLinks) throw new Unreadable(path, "is a symbolic link");
    if (rules.ownedByMe && !isWindows && st.uid !== null && st.uid !== Deno.uid()) {
      throw new Unreadable(path, "is a symbolic link that belongs to another user");
    }
    try {
      st = Deno.statSync(path);
    } catch {
      throw new Unreadable(path, "is a symbolic link to nothing readable");
    }
  }
  if (!st.isFile) {
    throw new Unreadable(
      path,
      `is not a regular file${link ? " (a link to a directory, FIFO or device)" : ""}`,
    );
  }
  if (!isWindows) {
    if (rules.ownedByMe && st.uid !== null && st.uid !== Deno.uid()) {
      throw new Unreadable(path, "belongs to another user");
    }
    if (rules.notWritableByOthers && st.mode !== null && (st.mode & 0o022) !== 0) {
      throw new Unreadable(
        path,
        `can be written by other users (mode ${(st.mode & 0o777).toString(8)})`,
      );
    }
  }
  if (rules.nonEmpty && st.size === 0) throw new Unreadable(path, "is empty");
  if (st.size > rules.maxBytes) {
    throw new Unreadable(path, `is larger than ${rules.maxBytes} bytes`);
  }
  return { info: st, link };
}

/**
 * Read at most `rules.maxBytes` bytes of a regular file, after checkRegular. A file that
 * says it is small but keeps giving bytes (/proc, a file growing under us) is refused when
 * the limit is passed; an open that does not finish in time is abandoned.
 */
export async function readBounded(path: string, rules: ReadRules): Promise<Uint8Array> {
  const { info, link } = checkRegularSync(path, rules);
  if (!link && swapProof(path, info)) {
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(path, { read: true });
    } catch (e) {
      throw new Unreadable(path, `cannot be read (${(e as Error).message})`);
    }
    return readOpened(path, info, rules, file);
  }
  const ms = rules.openTimeoutMs ?? 1000;
  // AbortSignal.timeout, not setTimeout: Deno's setTimeout is Node's, and its first call in a
  // process costs ~10 ms of start-up (every warm `cd` of the hook reads a tag through here).
  // The signal's timer does not keep the process alive.
  const deadline = AbortSignal.timeout(ms);
  let onLate = () => {};
  const opening = Deno.open(path, { read: true });
  let file: Deno.FsFile;
  try {
    file = await Promise.race([
      opening,
      new Promise<never>((_, reject) => {
        onLate = () => reject(new Unreadable(path, "did not open in time"));
        deadline.addEventListener("abort", onLate, { once: true });
      }),
    ]);
  } catch (e) {
    opening.then((f) => f.close(), () => {});
    if (e instanceof Unreadable) throw e;
    throw new Unreadable(path, `cannot be read (${(e as Error).message})`);
  } finally {
    deadline.removeEventListener("abort", onLate);
  }
  return readOpened(path, info, rules, file);
}

/**
 * Could nobody but this user (or root) have swapped the checked file for something else (a
 * FIFO, whose open would block) before it is opened? True when the file and every directory
 * above it belong to this user or root, and no directory lets others rename entries (not
 * group- or world-writable, or sticky). Then the open cannot block and needs no deadline —
 * nor a trip through the thread pool, which the hook would pay on every tagged `cd`.
 */
export function swapProof(path: string, info: Deno.FileInfo): boolean {
  if (isWindows) return false;
  const me = Deno.uid();
  const ours = (st: Deno.FileInfo) => st.uid === me || st.uid === 0;
  if (!ours(info)) return false;
  let d = dirname(resolvePath(path));
  for (let i = 0; i < 64; i++) {
    let st: Deno.FileInfo;
    try {
      st = Deno.lstatSync(d);
    } catch {
      return false;
    }
    const mode = st.mode ?? 0o777;
    if (!st.isDirectory || !ours(st) || ((mode & 0o022) !== 0 && (mode & 0o1000) === 0)) {
      return false;
    }
    const up = dirname(d);
    if (up === d) return true;
    d = up;
  }
  return false;
}

/** The rest of readBounded once `file` is open: synchronous, since it cannot block. */
function readOpened(
  path: string,
  info: Deno.FileInfo,
  rules: ReadRules,
  file: Deno.FsFile,
): Uint8Array {
  try {
    // Opened, and the same regular file that was checked: reading it cannot block.
    const now = file.statSync();
    if (!now.isFile || (!isWindows && (now.ino !== info.ino || now.dev !== info.dev))) {
      throw new Unreadable(path, "changed while it was being opened");
    }
    const limit = rules.maxBytes;
    const out = new Uint8Array(limit + 1);
    let n = 0;
    while (n <= limit) {
      let got: number | null;
      try {
        got = file.readSync(out.subarray(n));
      } catch (e) {
        throw new Unreadable(path, `cannot be read (${describeIoError(e)})`);
      }
      if (got === null) break;
      n += got;
    }
    if (n > limit) throw new Unreadable(path, `is larger than ${limit} bytes`);
    return out.slice(0, n);
  } finally {
    file.close();
  }
}

/** readBounded as UTF-8 text (invalid bytes become U+FFFD, never an exception). */
export async function readTextBounded(path: string, rules: ReadRules): Promise<string> {
  return decode(await readBounded(path, rules));
}

/**
 * UTF-8 bytes as text, as TextDecoder gives it. A few hundred bytes of ASCII (a tag, every
 * tagged `cd`) are spelled directly: a TextDecoder's first use costs ~0.3 ms.
 */
export function decode(bytes: Uint8Array): string {
  if (bytes.length <= 1024) {
    let s = "";
    for (const b of bytes) {
      if (b > 0x7f) return new TextDecoder().decode(bytes);
      s += String.fromCharCode(b);
    }
    return s;
  }
  return new TextDecoder().decode(bytes);
}

export interface WriteOptions {
  /** Mode of the new file (default 0o600). */
  mode?: number;
  /** Keep the mode of the file being replaced, when there is one. */
  keepMode?: boolean;
}

/**
 * Replace `path` with `data` atomically, never through a link: a symbolic link (or anything
 * but a regular file) at `path` is refused, the data goes to a temp file created exclusively
 * in the same directory (O_EXCL: a planted link there fails the create), and a rename puts it
 * in place. On any failure the temp file is removed and `path` is as it was.
 */
export async function writeAtomic(
  path: string,
  data: string | Uint8Array,
  opts: WriteOptions = {},
): Promise<void> {
  let mode = opts.mode ?? 0o600;
  try {
    const st = await Deno.lstat(path);
    if (st.isSymlink) {
      throw new StshError(
        `${visible(path)} is a symbolic link; stsh never writes through a link.`,
        "Remove the link (or write the file yourself) and try again.",
      );
    }
    if (!st.isFile) throw new StshError(`${visible(path)} is not a regular file; not replaced.`);
    if (opts.keepMode && st.mode !== null) mode = st.mode & 0o7777;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const dir = dirname(path);
  const base = path.slice(dir.length).replace(isWindows ? /^[\\/]+/ : /^\/+/, "");
  const tmp = join(dir, `.${base}.${crypto.randomUUID().slice(0, 12)}.tmp`);
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  let created = false;
  try {
    const f = await Deno.open(tmp, { write: true, createNew: true, mode });
    created = true;
    try {
      for (let done = 0; done < bytes.length;) done += await f.write(bytes.subarray(done));
      // The umask may have narrowed the create mode. Deno has no fchmod, so the path is
      // used — only where nobody else can swap the temp file for a link meanwhile.
      if (!isWindows && (await Deno.stat(tmp)).mode !== null && await private_(dir)) {
        await Deno.chmod(tmp, mode);
      }
      await f.sync();
    } finally {
      f.close();
    }
    await Deno.rename(tmp, path);
  } catch (e) {
    if (created) await Deno.remove(tmp).catch(() => {});
    if (e instanceof StshError) throw e;
    throw new StshError(`Cannot write ${visible(path)}: ${describeIoError(e)}.`);
  }
}

/** Can only its owner (or root) create and rename entries in `dir`? */
async function private_(dir: string): Promise<boolean> {
  const st = await Deno.stat(dir).catch(() => null);
  return !!st && st.mode !== null && (st.mode & 0o022) === 0 &&
    (st.uid === Deno.uid() || st.uid === 0);
}

/** A short reason for an I/O error a person can act on (disk full, permission, read-only). */
export function describeIoError(e: unknown): string {
  const msg = (e as Error)?.message ?? String(e);
  if (/ENOSPC|No space left/i.test(msg)) return "the disk is full";
  if (/EROFS|Read-only file system/i.test(msg)) return "the file system is read-only";
  if (/EDQUOT|quota/i.test(msg)) return "the disk quota is exceeded";
  if (e instanceof Deno.errors.PermissionDenied || /EACCES|EPERM/.test(msg)) {
    return "permission denied";
  }
  if (e instanceof Deno.errors.NotFound) return "its directory does not exist";
  return visible(msg.replace(/\s*\(os error \d+\)$/, ""));
}
