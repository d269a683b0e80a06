/** lib/fsafe.ts and lib/proc.ts: hostile files and hanging helpers, for real. */
import assert from "node:assert/strict";
import { decode, readTextBounded, Unreadable, writeAtomic } from "../lib/fsafe.ts";
import { HelperFailed, runHelper, runHelperOutput } from "../lib/proc.ts";
import { StshError } from "../lib/errors.ts";
import { visible } from "../lib/text.ts";

const rules = { maxBytes: 256 };

async function tmp(): Promise<string> {
  return await Deno.realPath(await Deno.makeTempDir({ prefix: "stsh-fsafe-" }));
}

async function sh(cmd: string) {
  const out = await new Deno.Command("/bin/sh", { args: ["-c", cmd] }).output();
  assert.ok(out.success, cmd);
}

async function refusedFast(path: string, why: RegExp) {
  const t0 = performance.now();
  await assert.rejects(
    readTextBounded(path, rules),
    (e) => e instanceof Unreadable && why.test(e.message),
  );
  assert.ok(performance.now() - t0 < 1000, "refused within a second");
}

Deno.test("fsafe: FIFOs, devices, /proc links, huge and NUL-filled files are refused fast", async () => {
  const d = await tmp();
  try {
    await sh(
      `mkfifo ${d}/fifo && ln -s ${d}/fifo ${d}/to-fifo && ln -s /proc/self/pagemap ${d}/to-proc`,
    );
    await sh(`truncate -s 50G ${d}/huge && ln -s /dev/zero ${d}/to-zero`);
    await sh(`head -c 300 /dev/zero > ${d}/nuls`);
    await refusedFast(`${d}/fifo`, /not a regular file/);
    await refusedFast(`${d}/to-fifo`, /not a regular file/);
    await refusedFast(`${d}/to-zero`, /not a regular file/);
    await refusedFast(`${d}/huge`, /larger than 256 bytes/);
    await refusedFast(`${d}/nuls`, /larger than 256 bytes/);
    // /proc files say they are empty and then never end: the byte limit stops them.
    await refusedFast(`${d}/to-proc`, /larger than 256 bytes|cannot be read/);
    await assert.rejects(readTextBounded(`${d}/to-proc`, { ...rules, nonEmpty: true }), /is empty/);
    await refusedFast(`${d}/missing`, /does not exist/);
    await Deno.writeTextFile(`${d}/ok`, "prod\n");
    assert.equal(await readTextBounded(`${d}/ok`, rules), "prod\n");
    await Deno.symlink(`${d}/ok`, `${d}/link`);
    assert.equal(await readTextBounded(`${d}/link`, rules), "prod\n");
    await assert.rejects(
      readTextBounded(`${d}/link`, { ...rules, noLinks: true }),
      /symbolic link/,
    );
  } finally {
    await Deno.remove(d, { recursive: true });
  }
});

Deno.test("fsafe: writeAtomic never writes through a link and keeps the mode when asked", async () => {
  const d = await tmp();
  try {
    await Deno.writeTextFile(`${d}/id_ed25519`, "SECRET KEY\n", { mode: 0o600 });
    await Deno.symlink(`${d}/id_ed25519`, `${d}/.aws-profile`);
    await assert.rejects(
      writeAtomic(`${d}/.aws-profile`, "prod\n"),
      (e) => e instanceof StshError && /symbolic link/.test(e.message),
    );
    assert.equal(await Deno.readTextFile(`${d}/id_ed25519`), "SECRET KEY\n");
    assert.equal((await Deno.stat(`${d}/id_ed25519`)).mode! & 0o777, 0o600);

    await Deno.writeTextFile(`${d}/creds`, "a\n", { mode: 0o640 });
    await Deno.chmod(`${d}/creds`, 0o640);
    await writeAtomic(`${d}/creds`, "b\n", { keepMode: true });
    assert.equal(await Deno.readTextFile(`${d}/creds`), "b\n");
    assert.equal((await Deno.stat(`${d}/creds`)).mode! & 0o777, 0o640);
    await writeAtomic(`${d}/new`, "c\n");
    assert.equal((await Deno.stat(`${d}/new`)).mode! & 0o777, 0o600);
    // Nothing left behind.
    const names = [];
    for await (const e of Deno.readDir(d)) names.push(e.name);
    assert.deepEqual(names.sort(), [".aws-profile", "creds", "id_ed25519", "new"]);
  } finally {
    await Deno.remove(d, { recursive: true });
  }
});

Deno.test("proc: a hanging helper and what it started are killed at the deadline", async () => {
  const d = await tmp();
  try {
    const t0 = performance.now();
    await assert.rejects(
      runHelper(`sleep 300 & echo $! > ${d}/grandchild; sleep 300`, {
        what: "mfa_process of profile 'x'",
        timeoutMs: 500,
      }),
      (e) => e instanceof StshError && /did not finish within 0.5 s/.test(e.message),
    );
    assert.ok(performance.now() - t0 < 3000);
    const pid = Number(await Deno.readTextFile(`${d}/grandchild`));
    await new Promise((r) => setTimeout(r, 200));
    const alive = await Deno.readTextFile(`/proc/${pid}/stat`).then(
      (s) => !/\) Z /.test(s),
      () => false,
    );
    assert.equal(alive, false, "the grandchild is gone");
    assert.equal(await runHelper("echo 123456", { what: "x", timeoutMs: 5000 }), "123456\n");
    await assert.rejects(runHelper("exit 7", { what: "helper" }), /helper failed \(exit code 7\)/);
    await assert.rejects(
      runHelper("yes", { what: "helper", maxOutputBytes: 1000 }),
      /printed more than 1000 bytes/,
    );
    // What its own group prints after the helper's shell exited is still its output.
    assert.equal(
      await runHelper("(sleep 0.8; echo late) & echo early", { what: "x", timeoutMs: 10_000 }),
      "early\nlate\n",
    );
  } finally {
    await Deno.remove(d, { recursive: true });
  }
});

Deno.test("proc: input goes to the helper's stdin; captured stderr comes back with a failure", async () => {
  const big = "x".repeat(200_000); // more than a pipe holds: fed while the helper reads
  assert.equal(
    await runHelper("wc -c", { what: "helper", input: big, timeoutMs: 5000 }),
    `${big.length}\n`,
  );
  const both = await runHelperOutput("cat; echo said >&2", {
    what: "helper",
    input: "in",
    captureStderr: true,
  });
  assert.deepEqual(both, { stdout: "in", stderr: "said\n" });
  await assert.rejects(
    runHelper("echo 'no such thing' >&2; exit 3", { what: "helper", captureStderr: true }),
    (e) =>
      e instanceof HelperFailed && e.reason === "exit" && e.code === 3 &&
      e.stderr === "no such thing\n",
  );
});

Deno.test("text: control and bidi characters are shown, not obeyed", () => {
  assert.equal(visible("a\x1b]0;pwned\x07b"), "a\\x1b]0;pwned\\x07b");
  assert.equal(visible("x\u202ey"), "x\\u202ey");
  assert.equal(visible("line\nnext\ttab"), "line\nnext\ttab");
  assert.equal(visible("\x9b31m"), "\\x9b31m");
});

Deno.test("decode gives what TextDecoder gives: ASCII, UTF-8, a BOM, broken sequences, any length", () => {
  const td = new TextDecoder();
  const samples: Uint8Array[] = [
    new Uint8Array(0),
    new TextEncoder().encode("prod\n"),
    new TextEncoder().encode("dév-ü\u{1F600}"),
    new Uint8Array([0xef, 0xbb, 0xbf, 0x61]), // a BOM, which TextDecoder drops
    new Uint8Array([0x61, 0xc3]), // cut in the middle of a character
    new Uint8Array([0x00, 0x1b, 0x7f, 0x80, 0xff]),
    new Uint8Array(1024).fill(0x61),
    new Uint8Array(1025).fill(0x61),
  ];
  for (let i = 0; i < 200; i++) {
    const n = Math.floor(Math.random() * 300);
    const b = crypto.getRandomValues(new Uint8Array(n));
    // Half of them ASCII only: the spelled-out path.
    if (i % 2) { for (let j = 0; j < n; j++) b[j] &= 0x7f; }
    samples.push(b);
  }
  for (const b of samples) {
    assert.equal(decode(b), td.decode(b), `${b.length} bytes: ${b.slice(0, 8)}`);
  }
});
