/**
 * The endpoint's raw transport (`startServer({transport: "raw"})`, what `stsh exec` serves
 * on): the same answers as under Deno.serve for the same requests, and anything that is not a
 * plain HTTP/1.x request refused before the door sees it. tests/serve_test.ts runs the whole
 * door (token, Host, methods, sizes, loopback only, closed after) through `stsh exec`.
 */
import assert from "node:assert/strict";
import { clientMac, type CredentialServer, startServer } from "../lib/serve.ts";
import type { Credentials } from "../lib/engine.ts";
import { rawHttp } from "./support/http.ts";

const enc = new TextEncoder();
const TOKEN = "t".repeat(43);

const creds: Credentials = {
  accessKeyId: "ASIAFAKEFAKEFAKEFAKE",
  secretAccessKey: "c2VjcmV0",
  sessionToken: "dG9rZW4=",
  expiration: new Date("2030-01-01T00:00:00Z"),
  region: "us-east-1",
  profile: "a",
  arn: "arn:aws:sts::123456789012:assumed-role/a/x",
};

function server(transport: "raw" | "deno"): CredentialServer {
  return startServer({
    env: {},
    token: TOKEN,
    only: "a",
    transport,
    resolver: () => Promise.resolve(creds),
  });
}

const req = (port: number, lines: string[]) =>
  [...lines.map((l) => l.replaceAll("PORT", String(port))), "", ""].join("\r\n");

Deno.test("raw transport: the same status, type and body as Deno.serve for the same requests", async () => {
  const raw = server("raw"), deno = server("deno");
  try {
    const cases: string[][] = [
      ["GET /creds/a HTTP/1.1", "Host: 127.0.0.1:PORT", `Authorization: ${TOKEN}`],
      ["GET /creds/a HTTP/1.1", "Host: localhost", `Authorization: ${TOKEN}`, "Connection: close"],
      ["GET /creds/a HTTP/1.0", "Host: [::1]:PORT", `Authorization: ${TOKEN}`],
      ["GET /creds/a HTTP/1.1", "Host: 127.0.0.1:PORT"],
      ["GET /creds/a HTTP/1.1", "Host: 127.0.0.1:PORT", `Authorization: x${TOKEN.slice(1)}`],
      ["GET /creds/a HTTP/1.1", "Host: evil.test:PORT", `Authorization: ${TOKEN}`],
      ["GET /creds/a HTTP/1.0", `Authorization: ${TOKEN}`],
      ["POST /creds/a HTTP/1.1", "Host: 127.0.0.1:PORT", `Authorization: ${TOKEN}`],
      ["DELETE /creds/a HTTP/1.1", "Host: 127.0.0.1:PORT", `Authorization: ${TOKEN}`],
      ["GET /creds/a HTTP/1.1", "Host: 127.0.0.1", `Authorization: ${TOKEN}`, "Origin: http://x"],
      ["GET /creds/b HTTP/1.1", "Host: 127.0.0.1", `Authorization: ${TOKEN}`],
      ["GET /creds/%ZZ HTTP/1.1", "Host: 127.0.0.1", `Authorization: ${TOKEN}`],
      ["GET / HTTP/1.1", "Host: 127.0.0.1", `Authorization: ${TOKEN}`],
      ["GET /ping HTTP/1.1", "Host: 127.0.0.1"],
      [
        "GET /creds/a HTTP/1.1",
        "Host: 127.0.0.1",
        `Authorization: ${TOKEN}`,
        "X-Pad: " +
        "a".repeat(8500),
      ],
      ["GET /creds/a?x=1 HTTP/1.1", "Host: 127.0.0.1", `Authorization: ${TOKEN}`],
    ];
    for (const lines of cases) {
      const a = await rawHttp(raw.port, req(raw.port, lines));
      const b = await rawHttp(deno.port, req(deno.port, lines));
      const what = lines[0] + " " + lines.slice(1).join(" ").slice(0, 60);
      assert.equal(a.status, b.status, `${what}: ${a.body} / ${b.body}`);
      assert.equal(a.body, b.body, what);
      for (const h of ["content-type", "cache-control", "x-content-type-options", "allow"]) {
        const re = new RegExp(`\r\n${h}: ([^\r]*)`);
        assert.equal(a.head.match(re)?.[1], b.head.match(re)?.[1], `${what}: ${h}`);
      }
      assert.match(a.head, /\r\nconnection: close/, what);
    }
    // And the body answers what the door decided: 200 with the credentials, once.
    const ok = await rawHttp(raw.port, req(raw.port, cases[0]));
    assert.equal(JSON.parse(ok.body).AccessKeyId, creds.accessKeyId);
  } finally {
    await raw.close();
    await deno.close();
  }
});

Deno.test("raw transport: what is not a plain HTTP/1.x request is refused before the door", async () => {
  const s = server("raw");
  try {
    const auth = `Authorization: ${TOKEN}`;
    const bad: [string, string | Uint8Array, number][] = [
      ["garbage", "HELLO\r\n\r\n", 400],
      ["HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400],
      ["absolute form", `GET http://127.0.0.1/creds/a HTTP/1.1\r\nHost: x\r\n${auth}\r\n\r\n`, 400],
      ["a folded header", `GET /creds/a HTTP/1.1\r\nHost: 127.0.0.1\r\n ${auth}\r\n\r\n`, 400],
      ["a bare LF inside", `GET /creds/a HTTP/1.1\r\nHost: 127.0.0.1\n${auth}\r\n\r\n`, 400],
      ["a NUL", `GET /creds/a HTTP/1.1\r\nHost: 127.0.0.1\0\r\n${auth}\r\n\r\n`, 400],
      [
        "an 8-bit byte",
        new Uint8Array([...enc.encode("GET /creds/a HTTP/1.1\r\nX: "), 0xe9, 13, 10, 13, 10]),
        400,
      ],
      ["no colon", `GET /creds/a HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n`, 400],
      ["CONNECT", `CONNECT /creds/a HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}\r\n\r\n`, 405],
      ["a head too large", `GET /creds/a HTTP/1.1\r\nX: ${"a".repeat(20_000)}\r\n\r\n`, 431],
      [
        "a large body, all sent",
        `GET /creds/a HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}\r\nContent-Length: 200000\r\n\r\n${
          "b".repeat(200_000)
        }`,
        413,
      ],
    ];
    for (const [what, bytes, status] of bad) {
      const a = await rawHttp(s.port, bytes);
      assert.equal(a.status, status, `${what}: ${a.status} ${a.body}`);
      assert.match(JSON.parse(a.body).Message, /^stsh: /, what);
      assert.ok(!a.body.includes("ASIA"), `${what}: no credentials`);
    }
  } finally {
    await s.close();
  }
});

/** A raw-transport server whose answers wait until `release()`. */
function heldServer(deadlineMs?: number): { s: CredentialServer; release: () => void } {
  let release = () => {};
  const held = new Promise<void>((r) => release = r);
  const s = startServer({
    env: {},
    token: TOKEN,
    transport: "raw",
    deadlineMs,
    resolver: async () => {
      await held;
      return creds;
    },
  });
  return { s, release };
}

Deno.test("raw transport: close() answers what is in flight and drops clients that never finish their head", async () => {
  const { s, release } = heldServer();
  const stalled = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
  await stalled.write(enc.encode("GET /creds/a HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
  const inflight = rawHttp(
    s.port,
    `GET /creds/a HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${TOKEN}\r\n\r\n`,
  );
  // Let both connections reach the server before it is told to close.
  await new Promise((r) => setTimeout(r, 200));
  const closing = s.close();
  release();
  const answered = await inflight;
  await closing;
  assert.equal(answered.status, 200, answered.body);
  // The stalled client was disconnected without an answer, and nothing listens any more.
  const n = await stalled.read(new Uint8Array(64)).catch(() => null);
  assert.equal(n, null);
  stalled.close();
  await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: s.port }));
});

Deno.test("raw transport: close({ boundMs }) stops waiting for a request in flight at the bound", async () => {
  // The request stays in flight (a 60 s deadline): only the bound ends the wait.
  const { s, release } = heldServer(60_000);
  const inflight = rawHttp(
    s.port,
    `GET /creds/a HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${TOKEN}\r\n\r\n`,
  );
  await new Promise((r) => setTimeout(r, 200));
  const t0 = Date.now();
  await s.close({ boundMs: 300, exiting: true });
  const took = Date.now() - t0;
  assert.ok(took >= 250 && took < 1500, `close() returned after ${took} ms`);
  // Nothing listens any more; the request still in flight is answered when it can be.
  await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: s.port }));
  release();
  assert.equal((await inflight).status, 200);
  await s.close();
});

const credsRequest = (port: number) =>
  req(port, ["GET /creds/a HTTP/1.1", "Host: 127.0.0.1:PORT", `Authorization: ${TOKEN}`]);

Deno.test("raw transport: connections that send nothing cannot hold every slot against a request", async () => {
  const s = server("raw");
  const idle: Deno.Conn[] = [];
  try {
    // More silent connections than the transport serves at once, all still within their
    // 5 s to send a request: the newest request takes the slot of the oldest of them.
    for (let i = 0; i < 150; i++) {
      idle.push(await Deno.connect({ hostname: "127.0.0.1", port: s.port }));
    }
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    const a = await rawHttp(s.port, credsRequest(s.port));
    assert.equal(a.status, 200, a.head);
    assert.ok(Date.now() - t0 < 2000, `answered after ${Date.now() - t0} ms`);
  } finally {
    for (const c of idle) {
      try {
        c.close();
      } catch { /* closed by the server */ }
    }
    await s.close();
  }
});

Deno.test("raw transport: a burst of more requests than slots is answered in full, none reset", async () => {
  const s = server("raw");
  try {
    const all = await Promise.all(
      Array.from({ length: 300 }, () => rawHttp(s.port, credsRequest(s.port))),
    );
    assert.equal(all.filter((a) => a.status === 200).length, 300);
  } finally {
    await s.close();
  }
});

Deno.test("ping: a server full of dead clients' pids makes room for a live one", async () => {
  const alive = (pid: number) => Deno.stat(`/proc/${pid}`).then(() => true, () => false);
  const s = startServer({
    env: {},
    token: TOKEN,
    resolver: () => Promise.resolve(creds),
    liveClients: async (pids) => {
      const live = new Set<number>();
      for (const p of pids) if (await alive(p)) live.add(p);
      return live;
    },
  });
  const ping = async (pid: number) => {
    const nonce = crypto.randomUUID().replaceAll("-", "");
    const mac = await clientMac(TOKEN, nonce, pid);
    const a = await rawHttp(
      s.port,
      req(s.port, [
        `GET /ping?nonce=${nonce}&client=${pid}&mac=${mac} HTTP/1.1`,
        "Host: 127.0.0.1",
      ]),
    );
    assert.equal(a.status, 200, a.body);
  };
  try {
    for (let pid = 3_900_000; pid < 3_900_256; pid++) await ping(pid); // no such processes
    assert.equal(s.clients.size, 256);
    await ping(Deno.pid);
    assert.ok(s.clients.has(Deno.pid), "the live client was turned away");
    assert.equal(s.clients.size, 1);
  } finally {
    await s.close();
  }
});
