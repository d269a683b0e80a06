/**
 * What the shell suites share around the fake program (tests/support/fake_stsh.bash): the
 * directory it lives in, with the scenario it follows and the log of its starts, and the
 * guard every fixture runs first.
 */

/** A fixture whose `bin` holds the fake program, its `scenario` and its `log`. */
export abstract class FakeProgram {
  abstract readonly bin: string;

  /** What the fake does next (HOOK_STATUS=…, the values it prints). */
  async scenario(text: string): Promise<void> {
    await Deno.writeTextFile(`${this.bin}/scenario`, text);
  }

  /** The program's starts so far, one argv string each. */
  async calls(): Promise<string[]> {
    try {
      return (await Deno.readTextFile(`${this.bin}/log`)).split("\n").filter((l) => l !== "");
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return [];
      throw e;
    }
  }
}

/**
 * Refuse a temp directory with an `.aws-profile` above it: it would tag every "untagged"
 * directory of the tests.
 */
export async function assertNoTagAbove(root: string): Promise<void> {
  for (let d = root; d !== "/";) {
    d = d.slice(0, d.lastIndexOf("/")) || "/";
    const tag = `${d === "/" ? "" : d}/.aws-profile`;
    if (await Deno.lstat(tag).then(() => true, () => false)) {
      throw new Error(`${tag} exists: set TMPDIR elsewhere to run these tests`);
    }
  }
}

/** The one reference file of `shell` in `run` (STSH_HOME/run/SHELL.PID, PROTOCOL.md). */
export function referenceFile(run: string, shell: string): string {
  const refs = [...Deno.readDirSync(run)].map((e) => e.name).filter((n) =>
    n.startsWith(`${shell}.`)
  );
  if (refs.length !== 1) throw new Error(`not one ${shell} reference file in ${run}: ${refs}`);
  return `${run}/${refs[0]}`;
}

/** coreutils touch (`-r FILE`, `-d DATE`: times to the nanosecond, which Deno.utime rounds). */
export async function touch(...args: string[]): Promise<void> {
  const r = await new Deno.Command("touch", { args, stderr: "piped" }).output();
  if (!r.success) throw new Error(`touch ${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
}

/** The year of `path`'s mtime. */
export const mtimeYear = (path: string) => Deno.statSync(path).mtime!.getUTCFullYear();
