import assert from "node:assert/strict";
import { Cache, cacheKey, type Session } from "../lib/cache.ts";
import { ReplayGuard } from "../lib/mfa.ts";
import { dirname, join, resolvePath } from "../lib/paths.ts";
import { sandbox } from "./support/fixture.ts";

const session = (profile: string): Session => ({
  accessKeyId: "ASIAEXAMPLEKEY123456",
  secretAccessKey: "secret",
  sessionToken: "token",
  expiration: new Date(Date.now() + 3600_000).toISOString(),
  kind: "role",
  profile,
  mfa: false,
});

Deno.test("cache: keys depend on every part and not on their order", () => {
  const k1 = cacheKey({ role: "r", source: "s", duration: 3600 });
  assert.equal(k1, cacheKey({ duration: 3600, source: "s", role: "r" }));
  assert.notEqual(k1, cacheKey({ role: "r", source: "s", duration: 900 }));
  assert.equal(
    k1,
    cacheKey({ role: "r", source: "s", duration: 3600, externalId: undefined }),
  );
  assert.match(k1, /^[0-9a-f]{40}$/);
});

Deno.test("cache: private files, atomic writes, damaged files are misses", async () => {
  const sb = await sandbox();
  try {
    const cache = new Cache(sb.env);
    const key = cacheKey({ x: 1 });
    assert.equal(await cache.read(key), null);
    const written = session("p");
    await cache.write(key, written);
    assert.deepEqual(await cache.read(key), written);
    assert.equal((await Deno.stat(cache.file(key))).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(cache.dir)).mode! & 0o777, 0o700);
    const leftovers = [...Deno.readDirSync(cache.dir)].filter((e) => e.name.endsWith(".tmp"));
    assert.deepEqual(leftovers, []);
    await Deno.writeTextFile(cache.file(key), '{"accessKeyId": ');
    assert.equal(await cache.read(key), null);
    assert.match(cache.warnings.join("\n"), /was damaged; discarded it/);
    // A directory someone widened is tightened again before anything is written.
    await Deno.chmod(cache.dir, 0o755);
    await cache.write(key, session("p"));
    assert.equal((await Deno.stat(cache.dir)).mode! & 0o777, 0o700);
  } finally {
    await sb.cleanup();
  }
});

Deno.test("cache: the lock serialises holders and says when it waits", async () => {
  const sb = await sandbox();
  try {
    const cache = new Cache(sb.env);
    const order: string[] = [];
    let waited = 0;
    // A second process holds the lock: here, a child deno that keeps it for a moment.
    const lockPath = join(cache.dir, "k.lock");
    await Deno.mkdir(cache.dir, { recursive: true, mode: 0o700 });
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `const f = await Deno.open(${
          JSON.stringify(lockPath)
        }, {read: true, write: true, create: true});
         await f.lock(true); console.log("locked"); await new Promise(r => setTimeout(r, 400)); f.close();`,
      ],
      stdout: "piped",
    }).spawn();
    const reader = child.stdout.getReader();
    await reader.read(); // "locked"
    reader.releaseLock();
    const holders: unknown[] = [];
    const p = cache.withLock("k", () => {
      order.push("second");
      return Promise.resolve();
    }, {
      label: "k",
      poll: (h) => {
        waited++;
        holders.push(h);
      },
    });
    await p;
    await child.status;
    await child.stdout.cancel().catch(() => {});
    assert.ok(waited >= 1, "polled while the other process held it");
    // That process wrote nothing into the lock file: nothing is known about it.
    assert.deepEqual(new Set(holders), new Set([null]));
    assert.deepEqual(order, ["second"]);
  } finally {
    await sb.cleanup();
  }
});

Deno.test("replay guard: the same code for the same device within 90 s is a replay", async () => {
  const sb = await sandbox();
  try {
    let now = 1_000_000;
    const g = new ReplayGuard(sb.env, () => now);
    assert.equal(await g.isReplay("serial-1", "123456"), false);
    await g.remember("serial-1", "123456");
    assert.equal(await g.isReplay("serial-1", "123456"), true);
    assert.equal(await g.isReplay("serial-1", "654321"), false);
    assert.equal(await g.isReplay("serial-2", "123456"), false);
    now += 91_000;
    assert.equal(await g.isReplay("serial-1", "123456"), false);
    const files = [...Deno.readDirSync(sb.path(".aws/stsh/mfa"))];
    for (const f of files) {
      const text = Deno.readTextFileSync(sb.path(".aws/stsh/mfa", f.name));
      assert.ok(!text.includes("123456"), "codes are stored hashed");
    }
  } finally {
    await sb.cleanup();
  }
});

Deno.test("paths: join, dirname and resolve without node:path", () => {
  assert.equal(join("/a/b", "../c", "./d"), "/a/c/d");
  assert.equal(dirname("/a/b/c"), "/a/b");
  assert.equal(dirname("/a"), "/");
  assert.equal(resolvePath("x/../y", "/r"), "/r/y");
  assert.equal(resolvePath("/"), "/");
});

Deno.test("cache: a lock holder says who it is and when a person is asked, never more", async () => {
  const sb = await sandbox();
  try {
    const a = new Cache(sb.env), b = new Cache(sb.env);
    let release = () => {};
    const held = new Promise<void>((r) => release = r);
    let entered = () => {};
    const inside = new Promise<void>((r) => entered = r);
    const holding = a.withLock("k", async () => {
      await a.nowDoing("question");
      entered();
      await held;
    }, { label: "MFA session of 'me'", poll: () => {} });
    await inside;
    const seen: unknown[] = [];
    await assert.rejects(
      b.withLock("k", () => Promise.resolve(), {
        label: "MFA session of 'me'",
        poll: (h, waited) => {
          seen.push({ h, waited });
          throw new Error("gave up");
        },
      }),
      /gave up/,
    );
    const { h, waited } = seen[0] as { h: Record<string, unknown>; waited: number };
    // Asked at once: before the first pause between tries (100 ms), whatever the load.
    assert.ok(waited < 100, `asked only after ${waited} ms`);
    assert.equal(h.pid, Deno.pid);
    assert.equal(h.doing, "question");
    assert.equal(h.label, "MFA session of 'me'");
    assert.ok(!isNaN(Date.parse(h.since as string)));
    release();
    await holding;
    // Released: the lock file says nothing any more.
    assert.equal(await Deno.readTextFile(join(a.dir, "k.lock")), "");
  } finally {
    await sb.cleanup();
  }
});

Deno.test("cache: with no directory to lock in, the work is done without a lock", async () => {
  const sb = await sandbox();
  try {
    await Deno.mkdir(sb.path(".aws/stsh"), { recursive: true });
    await Deno.writeTextFile(sb.path(".aws/stsh/cache"), "a file in the way\n");
    const cache = new Cache(sb.env);
    const why: string[] = [];
    const got = await cache.withLock("k", () => Promise.resolve(42), {
      label: "x",
      poll: () => assert.fail("nobody holds it"),
      onNoLock: (w) => why.push(w),
    });
    assert.equal(got, 42);
    assert.match(why.join(), /cache is not a directory/);
    assert.equal(await cache.read("k"), null, "a miss, not an error");
    assert.deepEqual(cache.warnings, []);
    await assert.rejects(() => cache.write("k", session("p")), /cache is not a directory/);
  } finally {
    await sb.cleanup();
  }
});
