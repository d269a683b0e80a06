/**
 * Every wait is bounded: while one terminal sits at the MFA question, a resolve that cannot
 * ask a person exits 3 at once, one that can says on whom it waits and gives up at its
 * deadline; a holder that says nothing is waited on for a few seconds only.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { STSH } from "./support/fixture.ts";
import { type World, world } from "./support/world.ts";

/** stsh in a real pseudo-terminal (script(1)); what it prints there comes back on stdout. */
function inTerminal(w: World, command: string, env: Record<string, string> = {}) {
  const child = new Deno.Command("setsid", {
    args: ["-w", "script", "-qec", command, "/dev/null"],
    env: { ...w.env, STSH, ...env },
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  let seen = "";
  const reader = child.stdout.getReader();
  const reading = (async () => {
    const dec = new TextDecoder();
    while (true) {
      const { value, done } = await reader.read();
      if (done) return;
      seen += dec.decode(value, { stream: true });
    }
  })();
  return {
    child,
    type: (text: string) => writer.write(new TextEncoder().encode(text)),
    output: () => seen,
    async finish() {
      await writer.close().catch(() => {});
      const status = await child.status;
      await reading;
      await child.stderr.cancel().catch(() => {});
      return { code: status.code, output: seen };
    },
  };
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The holder written into a lock file of the cache by a stsh that is asking a person. */
async function questionHolder(w: World): Promise<{ pid: number }> {
  const dir = w.sb.path(".aws/stsh/cache");
  return await until("a lock holder at the MFA question", async () => {
    try {
      for await (const e of Deno.readDir(dir)) {
        if (!e.name.endsWith(".lock")) continue;
        const text = await Deno.readTextFile(join(dir, e.name)).catch(() => "");
        if (text.includes('"doing":"question"')) return JSON.parse(text);
      }
    } catch { /* not there yet */ }
    return undefined;
  });
}

Deno.test("behind a person at the MFA question: no terminal exits 3 at once; a terminal waits, says on whom, and gives up at its deadline", async () => {
  const w = await world({ mfaProcess: false });
  const holder = inTerminal(w, '"$STSH" env a > "$HOME/holder.out"');
  try {
    const h = await questionHolder(w);
    assert.ok(h.pid > 0);

    // No terminal: exit 3 within seconds, naming the terminal that is being asked.
    const t0 = Date.now();
    const a = await w.run(["env", "a"]);
    assert.equal(a.code, 3, a.stderr);
    assert.equal(a.stdout, "");
    assert.match(
      a.stderr,
      new RegExp(
        `^stsh: Not waiting for the MFA code being typed in another terminal \\(pid ${h.pid}, since [\\d:]+\\): there is no terminal here\\.\\n {2}Answer the question there`,
      ),
    );
    assert.ok(Date.now() - t0 < 15_000, "it did not wait for the person");
    // Another role from the same MFA session waits on that session's lock: the same.
    const b = await w.run(["env", "b"]);
    assert.equal(b.code, 3, b.stderr);
    // The hook without --prompt: 4 (ask again with --prompt), at once.
    const hook = await w.run(["hook", "bash", "--assume", "b"]);
    assert.equal(hook.code, 4, hook.stderr);

    // The explicit option for callers that must never wait (a credential endpoint).
    const { resolve } = await import("../lib/engine.ts");
    const { MfaNeeded } = await import("../lib/errors.ts");
    await assert.rejects(
      resolve("a", { env: w.env, interactive: true, wait: "never" }),
      (e: Error) => e instanceof MfaNeeded && /this caller never waits/.test(e.message),
    );

    // A terminal: it says on whom it waits, and gives up at STSH_LOCK_TIMEOUT.
    const waiter = inTerminal(w, '"$STSH" env a', { STSH_LOCK_TIMEOUT: "2" });
    const waited = await waiter.finish();
    assert.equal(waited.code, 1, waited.output);
    assert.match(
      waited.output,
      new RegExp(
        `stsh: waiting for the MFA code being typed in another terminal \\(pid ${h.pid}, since [\\d:]+\\)…`,
      ),
    );
    assert.match(waited.output, /stsh: Gave up after 2 s waiting for the MFA code being typed/);

    // The person answers: the one waiting there gets its credentials; everyone else reuses them.
    await holder.type(`${await w.emu.code(w.alice)}\r`);
    const done = await holder.finish();
    assert.equal(done.code, 0, done.output);
    assert.match(await Deno.readTextFile(w.sb.path("holder.out")), /AWS_SESSION_TOKEN/);
    const after = await w.run(["env", "b"]);
    assert.equal(after.code, 0, after.stderr);
    assert.equal(w.emu.counts.GetSessionToken, 1);
  } finally {
    try {
      holder.child.kill("SIGKILL");
    } catch { /* already done */ }
    await holder.finish().catch(() => {});
    await w.close();
  }
});

Deno.test("a lock holder that says nothing is waited on for a few seconds, then exit 3", async () => {
  const w = await world();
  try {
    // Leave the lock files of 'a' behind, then hold them all from a process that writes
    // nothing into them (an older stsh, or anything else that took the lock).
    await w.primeCode();
    assert.equal((await w.run(["env", "a"])).code, 0);
    await w.run(["clear", "--all"]);
    const dir = w.sb.path(".aws/stsh/cache");
    const locks = [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".lock"))
      .map((e) => join(dir, e.name));
    assert.equal(locks.length, 2, "the MFA session's and the role's");
    const holder = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `for (const p of ${JSON.stringify(locks)}) {
           const f = await Deno.open(p, { read: true, write: true });
           await f.lock(true);
         }
         console.log("held");
         await new Promise((r) => setTimeout(r, 120_000));`,
      ],
      stdout: "piped",
    }).spawn();
    try {
      const reader = holder.stdout.getReader();
      await reader.read();
      reader.releaseLock();
      await w.primeCode(1);
      const t0 = Date.now();
      const r = await w.run(["env", "a"]);
      assert.equal(r.code, 3, r.stderr);
      assert.match(
        r.stderr,
        /Not waiting for another stsh, which holds the role 'a': no terminal here, and 3 s passed\./,
      );
      assert.match(r.stderr, /waiting for another stsh, which holds the role 'a'…/);
      assert.ok(Date.now() - t0 < 20_000);
      assert.equal(w.emu.counts.AssumeRole, 1, "no second STS call behind the lock");
    } finally {
      holder.kill("SIGKILL");
      await holder.status;
      await holder.stdout.cancel().catch(() => {});
    }
  } finally {
    await w.close();
  }
});
