/**
 * Directory tags (`.aws-profile`) and the allow/deny store. A tag counts only once trusted:
 * `stsh allow` records sha256(realpath + "\n" + content), so any edit needs a new allow;
 * `stsh deny` is keyed by path alone. Tags that others could have written are refused.
 */
import { StshError } from "./errors.ts";
import {
  dirname,
  isWindows,
  join,
  privateDir,
  PROFILE_NAME,
  resolvePath as resolve,
  sha256Hex,
  trustDir,
} from "./paths.ts";

export const TAG_FILE = ".aws-profile";

export interface Tag {
  /** The directory holding the tag (as found, not resolved). */
  root: string;
  file: string;
}

export type TagState =
  | { ok: true; profile: string; content: string; realRoot: string }
  | { ok: false; reason: string; profile?: string; content?: string; realRoot?: string };

/** The nearest `.aws-profile` in `dir` or a parent. */
export async function findTag(dir: string): Promise<Tag | null> {
  let d = resolve(dir);
  while (true) {
    const file = join(d, TAG_FILE);
    try {
      const st = await Deno.stat(file);
      if (st.isFile) return { root: d, file };
    } catch { /* not here */ }
    const up = dirname(d);
    if (up === d) return null;
    d = up;
  }
}

/** Show hostile text harmlessly: quoted, escaped, short. */
export const shown = (s: string) => JSON.stringify(s.length > 40 ? s.slice(0, 40) + "…" : s);

/** Is this tag safe to read, and what profile does it name? (Trust is checked separately.) */
export async function inspectTag(tag: Tag): Promise<TagState> {
  let realRoot: string;
  let st: Deno.FileInfo;
  try {
    realRoot = await Deno.realPath(tag.root);
    st = await Deno.stat(tag.file);
  } catch (e) {
    return { ok: false, reason: `${tag.file} cannot be read (${(e as Error).message}).` };
  }
  if (!isWindows) {
    if (st.uid !== null && st.uid !== Deno.uid()) {
      return { ok: false, reason: `${tag.file} belongs to another user; ignored.`, realRoot };
    }
    if (st.mode !== null && (st.mode & 0o022) !== 0) {
      return {
        ok: false,
        reason: `${tag.file} can be written by other users (mode ${
          (st.mode & 0o777).toString(8)
        }); ignored. Run \`chmod go-w ${tag.file}\`.`,
        realRoot,
      };
    }
  }
  if (st.size > 256) {
    return { ok: false, reason: `${tag.file} is too large for a tag; ignored.`, realRoot };
  }
  const content = await Deno.readTextFile(tag.file);
  const profile = content.replace(/\r?\n$/, "");
  if (!PROFILE_NAME.test(profile)) {
    return {
      ok: false,
      reason: `${tag.file} does not hold one profile name (it holds ${shown(content)}); ignored.`,
      content,
      realRoot,
    };
  }
  return { ok: true, profile, content, realRoot };
}

export class TrustStore {
  constructor(private readonly env?: Record<string, string>) {}

  private async allowFile(realRoot: string, content: string) {
    return join(trustDir(this.env), "allow", await sha256Hex(`${realRoot}\n${content}`));
  }
  private async denyFile(realRoot: string) {
    return join(trustDir(this.env), "deny", await sha256Hex(`${realRoot}\n`));
  }

  async isAllowed(realRoot: string, content: string): Promise<boolean> {
    if (await exists(await this.denyFile(realRoot))) return false;
    return await exists(await this.allowFile(realRoot, content));
  }

  async isDenied(realRoot: string): Promise<boolean> {
    return await exists(await this.denyFile(realRoot));
  }

  async allow(realRoot: string, content: string): Promise<void> {
    await Deno.remove(await this.denyFile(realRoot)).catch(() => {});
    await write(await this.allowFile(realRoot, content), realRoot);
  }

  async deny(realRoot: string, content?: string): Promise<void> {
    if (content !== undefined) {
      await Deno.remove(await this.allowFile(realRoot, content)).catch(() => {});
    }
    await write(await this.denyFile(realRoot), realRoot);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

async function write(path: string, text: string) {
  await privateDir(dirname(dirname(path)));
  await privateDir(dirname(path));
  await Deno.writeTextFile(path, text + "\n", { mode: 0o600 });
}

/** The tag for `dir` or its parents, or a clear error for the `allow`/`deny` commands. */
export async function tagFor(dir: string): Promise<{ tag: Tag; state: TagState }> {
  const tag = await findTag(dir);
  if (!tag) {
    throw new StshError(
      `No ${TAG_FILE} in ${resolve(dir)} or its parents.`,
      "Create one with `stsh tag PROFILE`.",
      2,
    );
  }
  return { tag, state: await inspectTag(tag) };
}
