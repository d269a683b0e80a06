/** The README's set-up: ./install.sh puts a working stsh in PREFIX/bin, and again is harmless. */
import assert from "node:assert/strict";
import { join } from "../lib/paths.ts";
import { ROOT } from "./support/fixture.ts";

async function install(prefix: string) {
  const o = await new Deno.Command(join(ROOT, "install.sh"), {
    args: ["--prefix", prefix],
    env: { PATH: Deno.env.get("PATH")!, HOME: Deno.env.get("HOME")! },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: o.code, out: d.decode(o.stdout) + d.decode(o.stderr) };
}

Deno.test("install.sh: stsh --version works from the prefix, and a second run is idempotent", async () => {
  const prefix = await Deno.makeTempDir({ prefix: "stsh-install-" });
  try {
    const first = await install(prefix);
    assert.equal(first.code, 0, first.out);
    assert.match(first.out, /stsh \d+\.\d+\.\d+ is ready/);
    assert.match(
      first.out,
      /built .* with deno compile|installed .* as a launcher running 'deno run'/,
    );
    const v = await new Deno.Command(join(prefix, "bin", "stsh"), { args: ["--version"] }).output();
    assert.equal(v.code, 0);
    assert.match(new TextDecoder().decode(v.stdout), /^\d+\.\d+\.\d+\n$/);
    // The installed copy prints hooks that call it back by its installed path.
    const init = await new Deno.Command(join(prefix, "bin", "stsh"), { args: ["init", "bash"] })
      .output();
    assert.equal(init.code, 0);
    assert.ok(new TextDecoder().decode(init.stdout).includes(join(prefix, "bin", "stsh")));
    const second = await install(prefix);
    assert.equal(second.code, 0, second.out);
    const entries = [...Deno.readDirSync(join(prefix, "bin"))].map((e) => e.name).sort();
    assert.ok(entries.includes("stsh") && !entries.some((e) => e.endsWith(".new")), entries.join());
    assert.equal(await install(prefix + "-x").then(() => 0), 0);
    const bad = await new Deno.Command(join(ROOT, "install.sh"), {
      args: ["--bogus"],
      stderr: "piped",
    }).output();
    assert.equal(bad.code, 2);
  } finally {
    await Deno.remove(prefix, { recursive: true });
  }
});
