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
