/**
 * Directory tags (`.aws-profile`) and the allow/deny store. A tag counts only once trusted:
 * `stsh allow` records sha256(realpath + "\n" + content), so any edit needs a new allow;
 * `stsh deny` is keyed by path alone. Tags that others could have written are refused.
 */
import { StshError } from "./errors.ts";
import {
  checkRegularSync,
  describeIoError,
  readTextBounded,
  Unreadable,
  writeAtomic,
} from "./fsafe.ts";
import {
  dirname,
  hasEntry,
  join,
  privateDir,
  PROFILE_NAME,
  resolvePath as resolve,
  trustDir,
} from "./paths.ts";
import { sha256Hex } from "./sha256.ts";
import { visible } from "./text.ts";

export const TAG_FILE = ".aws-profile";

export interface Tag {
  /** The directory holding the tag (as found, not resolved). */
  root: string;
  file: string;
}

export type TagState =
  | { ok: true; profile: string; content: string; realRoot: string; link: boolean }
  | { ok: false; reason: string; profile?: string; content?: string; realRoot?: string };

/**
 * How a notice names what an untrusted tag asks for. A tag that is a link (a cloned repo's
 * `.aws-profile -> ../../.aws/token`) shows another file's content: never quoted.
 */
export function asksFor(st: { profile: string; link: boolean }): string {
  return st.link ? "a profile through a link" : `'${st.profile}'`;
}

/**
 * The nearest `.aws-profile` in `dir` or a parent: any entry of that name but a directory
 * (lstat, nothing opened), so that a FIFO, device or dangling link there is refused with a
 * reason by inspectTag rather than silently skipped for a tag further up.
 */
export function findTag(dir: string): Promise<Tag | null> {
  return Promise.resolve(findTagSync(dir));
}

/** findTag without thread hand-offs (lstat opens nothing, so it cannot block). */
function findTagSync(dir: string): Tag | null {
  let d = resolve(dir);
  while (true) {
    const file = join(d, TAG_FILE);
    try {
      const st = Deno.lstatSync(file);
      if (!st.isDirectory) return { root: d, file };
    } catch { /* not here */ }
    const up = dirname(d);
    if (up === d) return null;
    d = up;
  }
}

/** The bytes a tag may hold: a profile name (at most 64 characters) and a line ending. */
export const TAG_MAX_BYTES = 256;

/**
 * What a notice may say about a tag's content: the part that could be a profile name, and
 * nothing after it — a tag can be a link to a secret file, and a notice lands in scrollback.
 */
export function safePrefix(content: string): string {
  const m = content.match(/^[A-Za-z0-9._@+-]{1,64}/);
  return m ? m[0] : "";
}

/** Is this tag safe to read, and what profile does it name? (Trust is checked separately.) */
export async function inspectTag(tag: Tag): Promise<TagState> {
  const file = visible(tag.file);
  let realRoot: string;
  try {
    realRoot = Deno.realPathSync(tag.root);
  } catch (e) {
    return { ok: false, reason: `${file} cannot be read (${describeIoError(e)}); ignored.` };
  }
  let content: string;
  let link = false;
  try {
    // lstat first, regular files only (a link only to a regular file you own), never
    // opened when it cannot be a tag, and never more than TAG_MAX_BYTES read.
    link = checkRegularSync(tag.file, TAG_RULES).link;
    content = await readTextBounded(tag.file, TAG_RULES);
  } catch (e) {
    if (!(e instanceof Unreadable)) throw e;
    const hint = /written by other users/.test(e.why) ? ` Run \`chmod go-w ${file}\`.` : "";
    return { ok: false, reason: `${file} ${e.why}; ignored.${hint}`, realRoot };
  }
  const profile = content.replace(/\r?\n$/, "");
  if (!PROFILE_NAME.test(profile)) {
    const start = link ? "" : safePrefix(content);
    return {
      ok: false,
      reason: `${file} does not hold one profile name${
        start ? ` (it starts with '${start}' and goes on)` : ""
      }; ignored.`,
      content,
      realRoot,
    };
  }
  return { ok: true, profile, content, realRoot, link };
}

const TAG_RULES = {
  maxBytes: TAG_MAX_BYTES,
  nonEmpty: true,
  ownedByMe: true,
  notWritableByOthers: true,
};

export class TrustStore {
  constructor(private readonly env?: Record<string, string>) {}

  private allowFile(realRoot: string, content: string) {
    return join(trustDir(this.env), "allow", sha256Hex(`${realRoot}\n${content}`));
  }
  private denyFile(realRoot: string) {
    return join(trustDir(this.env), "deny", sha256Hex(`${realRoot}\n`));
  }

  // deno-lint-ignore require-await
  async isAllowed(realRoot: string, content: string): Promise<boolean> {
    // Synchronous lstats: the hook asks this on every tagged `cd`. A deny outranks an allow
    // (an allow of an older content can outlive a later deny of the path).
    return exists(this.allowFile(realRoot, content)) && !this.denied(realRoot);
  }

  // deno-lint-ignore require-await
  async isDenied(realRoot: string): Promise<boolean> {
    return this.denied(realRoot);
  }

  /**
   * Without a deny/ directory (nothing was ever denied: the usual case) there is nothing to
   * hash or look up, and no failed lstat, whose exception alone costs the hook's warm `cd`
   * half a millisecond.
   */
  private denied(realRoot: string): boolean {
    return hasEntry(trustDir(this.env), "deny") && exists(this.denyFile(realRoot));
  }

  async allow(realRoot: string, content: string): Promise<void> {
    await Deno.remove(this.denyFile(realRoot)).catch(() => {});
    await write(this.allowFile(realRoot, content), realRoot);
  }

  async deny(realRoot: string, content?: string): Promise<void> {
    if (content !== undefined) {
      await Deno.remove(this.allowFile(realRoot, content)).catch(() => {});
    }
    await write(this.denyFile(realRoot), realRoot);
  }
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path); // no thread hand-off: the hook asks this on every tagged `cd`
    return true;
  } catch {
    return false;
  }
}

async function write(path: string, text: string) {
  await privateDir(dirname(dirname(path)));
  await privateDir(dirname(path));
  await writeAtomic(path, text + "\n");
}

/** The tag for `dir` or its parents, or a clear error for the `allow`/`deny` commands. */
export async function tagFor(dir: string): Promise<{ tag: Tag; state: TagState }> {
  const tag = await findTag(dir);
  if (!tag) {
    throw new StshError(
      `No ${TAG_FILE} in ${visible(resolve(dir))} or its parents.`,
      "Create one with `stsh tag PROFILE`.",
      2,
    );
  }
  return { tag, state: await inspectTag(tag) };
}
