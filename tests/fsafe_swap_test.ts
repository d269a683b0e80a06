/**
 * lib/fsafe.ts readBounded opens without a deadline (and without a trip through the thread
 * pool) only where nobody else could have swapped the checked file for a FIFO: swapProof.
 */
import assert from "node:assert/strict";
import { readTextBounded, swapProof } from "../lib/fsafe.ts";

Deno.test({
  name: "swapProof: private and sticky directories yes; others' writable or linked ones no",
  ignore: Deno.build.os === "windows",
  async fn() {
    const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "stsh-swap-" }));
    try {
      const at = async (dir: string, mode: number) => {
        await Deno.mkdir(`${root}/${dir}`, { recursive: true });
        await Deno.chmod(`${root}/${dir}`, mode);
        const f = `${root}/${dir}/f`;
        await Deno.writeTextFile(f, "a\n");
        return { f, proof: swapProof(f, Deno.statSync(f)) };
      };
      await Deno.chmod(root, 0o700);
      const priv = await at("private", 0o755);
      assert.equal(priv.proof, true, "a directory only its owner can write");
      assert.equal((await at("sticky", 0o1777)).proof, true, "sticky: others cannot rename ours");
      const open = await at("open", 0o777);
      assert.equal(open.proof, false, "others may replace the file");
      assert.equal((await at("group", 0o775)).proof, false, "the group may replace the file");
      // A directory above that others can write: they could swap the whole branch.
      await Deno.chmod(`${root}/open`, 0o777);
      await Deno.mkdir(`${root}/open/inner`, { mode: 0o755 });
      await Deno.writeTextFile(`${root}/open/inner/f`, "a\n");
      assert.equal(swapProof(`${root}/open/inner/f`, Deno.statSync(`${root}/open/inner/f`)), false);
      // Through a linked directory: not examined, so not proof.
      await Deno.symlink(`${root}/private`, `${root}/link`);
      assert.equal(swapProof(`${root}/link/f`, Deno.statSync(`${root}/link/f`)), false);
      // Either way the same bytes are read.
      for (const f of [priv.f, open.f, `${root}/link/f`]) {
        assert.equal(await readTextBounded(f, { maxBytes: 10 }), "a\n");
      }
      await assert.rejects(readTextBounded(priv.f, { maxBytes: 1 }), /larger than 1 bytes/);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
