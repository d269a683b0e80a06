/**
 * The credential endpoint (lib/serve.ts) as programs meet it: a real boto3 job and the real
 * AWS CLI under `stsh exec`, the door (token, Host, loopback only, closed with the command,
 * token in no argv), answers that never wait for a person, and the per-user `stsh serve` the
 * hooks start on demand — all against the STS emulator with short lifetimes.
 */
import assert from "node:assert/strict";
import { ROOT, STSH } from "./support/fixture.ts";
import { type Answer, rawHttp } from "./support/http.ts";
import { type World, world } from "./support/world.ts";
import {
  base64url,
  endpointChanges,
  endpointVars,
  execEnv,
  newToken,
  sameSecret,
} from "../lib/serve.ts";
import { ensureUserServer, serveFiles, serverEnv as userServerEnv } from "../lib/serve_user.ts";

const AWS = "/usr/bin/aws";
const haveAws = await Deno.stat(AWS).then(() => true, () => false);
const JOB = `${ROOT}/tests/support/long_job.py`;
const haveBoto3 = await new Deno.Command("python3", {
  args: ["-c", "import boto3"],
  stdout: "null",
  stderr: "null",
}).output().then((o) => o.success, () => false);

const dec = new TextDecoder();

async function waitFor(what: string, cond: () => Promise<boolean> | boolean, ms = 30_000) {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const exists = (p: string) => Deno.stat(p).then(() => true, () => false);

/** A long-lived process that stands in for a shell (or anyone's process) by its pid. */
const standIn = () => new Deno.Command("sleep", { args: ["600"], stdin: "null" }).spawn();

/** Kill and reap stand-ins, whether or not they are still running. */
async function killAll(...ps: Deno.ChildProcess[]) {
  for (const p of ps) {
    try {
      p.kill("SIGKILL");
    } catch { /* gone */ }
    await p.status;
  }
}
const alive = (pid: number) => exists(`/proc/${pid}`);

function get(
  port: number,
  path: string,
  o: { token?: string; host?: string; method?: string; extra?: string[] } = {},
): Promise<Answer> {
  const lines = [
    `${o.method ?? "GET"} ${path} HTTP/1.1`,
    `Host: ${o.host ?? `127.0.0.1:${port}`}`,
    "Connection: close",
    ...(o.token !== undefined ? [`Authorization: ${o.token}`] : []),
    ...(o.extra ?? []),
  ];
  return rawHttp(port, lines.join("\r\n") + "\r\n\r\n");
}

/** `stsh exec ARGS -- sh -c …` whose command writes its environment and waits for a file. */
async function execWaiting(
  w: World,
  args: string[],
  env: Record<string, string> = {},
  fdLimit?: number,
) {
  const home = w.sb.home;
  const script =
    `env > "$HOME/child.env"; while [ ! -e "$HOME/stop" ]; do sleep 0.05; done; exit 3`;
  await Deno.remove(`${home}/stop`).catch(() => {});
  await Deno.remove(`${home}/child.env`).catch(() => {});
  const exec = [STSH, "exec", ...args, "--", "sh", "-c", script];
  const child = new Deno.Command(fdLimit ? "sh" : "setsid", {
    args: fdLimit
      ? ["-c", `ulimit -n ${fdLimit} && exec setsid -w "$0" "$@"`, ...exec]
      : ["-w", ...exec],
    env: { ...w.env, ...env },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  await waitFor("the command to start", async () => {
    const t = await Deno.readTextFile(`${home}/child.env`).catch(() => "");
    return t.includes("\nPATH=") || t.startsWith("PATH=");
  });
  await new Promise((r) => setTimeout(r, 100)); // env(1) may still be writing
  const childEnv = Object.fromEntries(
    (await Deno.readTextFile(`${home}/child.env`)).split("\n").filter((l) => l.includes("="))
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
  const uri = new URL(childEnv.AWS_CONTAINER_CREDENTIALS_FULL_URI);
  return {
    childEnv,
    port: Number(uri.port),
    path: uri.pathname,
    token: childEnv.AWS_CONTAINER_AUTHORIZATION_TOKEN,
    async finish() {
      await Deno.writeTextFile(`${home}/stop`, "");
      const o = await output;
      return { code: o.code, stderr: dec.decode(o.stderr) };
    },
  };
}

Deno.test("base64url spells bytes as btoa does, URL-safe and unpadded", () => {
  for (let n = 0; n <= 40; n++) {
    for (const fill of ["random", "zero", "ones"]) {
      const b = fill === "random"
        ? crypto.getRandomValues(new Uint8Array(n))
        : new Uint8Array(n).fill(fill === "zero" ? 0 : 255);
      const want = btoa(String.fromCharCode(...b)).replace(/\+/g, "-").replace(/\//g, "_")
        .replace(/=+$/, "");
      assert.equal(base64url(b), want, `${n} ${fill} bytes`);
    }
  }
});

Deno.test("endpoint variables: names URL-encoded, shadowing names unset, tokens long and compared whole", () => {
  const server = { url: "http://127.0.0.1:4242", token: newToken() };
  assert.match(server.token, /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(newToken(), server.token);
  assert.deepEqual(endpointVars(server, "dev@acme+1"), {
    AWS_CONTAINER_CREDENTIALS_FULL_URI: "http://127.0.0.1:4242/creds/dev%40acme%2B1",
    AWS_CONTAINER_AUTHORIZATION_TOKEN: server.token,
  });
  assert.throws(() => endpointVars(server, "../x"), /not a profile name/);
  const c = endpointChanges(server, "a", "eu-west-1");
  assert.equal(c.AWS_ACCESS_KEY_ID, null);
  assert.equal(c.AWS_PROFILE, null);
  assert.equal(c.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, null);
  assert.equal(c.AWS_REGION, "eu-west-1");
  assert.equal(c.AWS_DEFAULT_REGION, "eu-west-1");
  assert.equal("AWS_REGION" in endpointChanges(server, "a"), false, "no region: left alone");
  const env = execEnv(
    { PATH: "/bin", AWS_SESSION_TOKEN: "x", AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: "/v2" },
    server,
    "a",
  );
  assert.deepEqual(Object.keys(env).sort(), [
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "PATH",
  ]);
  // A shared server keeps no shell's keys, endpoint or hook state, but the person's profile.
  const se = userServerEnv({
    HOME: "/h",
    AWS_PROFILE: "p",
    AWS_ACCESS_KEY_ID: "k",
    AWS_CONTAINER_CREDENTIALS_FULL_URI: "http://127.0.0.1:1/creds/a",
    STSH_PREV: "{}",
  });
  assert.deepEqual(se, { HOME: "/h", AWS_PROFILE: "p" });
  assert.ok(sameSecret(server.token, server.token));
  for (const wrong of ["", server.token.slice(0, -1), server.token + "A", "x".repeat(43)]) {
    assert.ok(!sameSecret(wrong, server.token));
  }
});

Deno.test({
  name:
    "exec: a boto3 job outlives its role sessions on the endpoint, and fails with static keys (--env)",
  ignore: !haveBoto3,
  async fn() {
    const w = await world({ roleLifetimeSeconds: 6 });
    try {
      await w.primeCode();
      const job = ["python3", JOB, "--endpoint-url", w.emu.url, "--seconds", "20"];
      // Both at once: one resolve asks (mfa_process), the other waits for it and reuses it.
      // Profile a has no region of its own, so stsh leaves the person's alone (the AWS CLI's
      // rule); boto3 reads AWS_DEFAULT_REGION.
      const region = { env: { AWS_DEFAULT_REGION: "us-east-1" } };
      const [served, keys] = await Promise.all([
        w.run(["exec", "a", "--", ...job], region),
        w.run(["exec", "--env", "a", "--", ...job], region),
      ]);
      const s = JSON.parse(served.stdout), k = JSON.parse(keys.stdout);
      assert.equal(served.code, 0, `${served.stdout}\n${served.stderr}`);
      assert.equal(s.failed, 0, s.errors.join("\n"));
      assert.ok(s.ok >= 15, served.stdout);
      for (const arn of s.arns) assert.match(arn, /:assumed-role\/a\/stsh-\d+$/);
      // The same job with keys dies with them (boto3 reads AWS_CREDENTIAL_EXPIRATION and
      // refuses keys past it; without that variable STS would say ExpiredToken).
      assert.equal(keys.code, 1, keys.stdout);
      assert.ok(k.failed >= 5, keys.stdout);
      assert.match(k.errors.join("\n"), /ExpiredToken|credentials are still expired/);
      // One code for the whole run; the role was re-minted from the MFA session, silently.
      assert.equal(await w.codeRequests(), 1);
      assert.equal(w.emu.counts.GetSessionToken, 1);
      assert.ok(w.emu.counts.AssumeRole >= 3, JSON.stringify(w.emu.counts));
    } finally {
      await w.close();
    }
  },
});

Deno.test({
  name: "exec: the real AWS CLI gets its credentials from the endpoint and prints the role ARN",
  ignore: !haveAws,
  async fn() {
    const w = await world();
    try {
      await w.primeCode();
      const r = await w.run([
        "exec",
        "a",
        "--",
        AWS,
        "sts",
        "get-caller-identity",
        "--endpoint-url",
        w.emu.url,
        "--output",
        "text",
        "--query",
        "Arn",
      ], { env: { AWS_ACCESS_KEY_ID: "AKIAOLDKEYSLEFTOVER1", AWS_SECRET_ACCESS_KEY: "x" } });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout.trim(), /^arn:aws:sts::123456789012:assumed-role\/a\/stsh-\d+$/);
    } finally {
      await w.close();
    }
  },
});

Deno.test("exec: the endpoint's door — token, Host, GET only, loopback only, closed after, token in no argv", async () => {
  const w = await world();
  try {
    await w.primeCode();
    // Everything that would outrank the endpoint in an SDK's chain is in stsh's environment.
    const ep = await execWaiting(w, ["a"], {
      AWS_ACCESS_KEY_ID: "AKIAOLDKEYSLEFTOVER1",
      AWS_SECRET_ACCESS_KEY: "old",
      AWS_SESSION_TOKEN: "old",
      AWS_SECURITY_TOKEN: "old",
      AWS_PROFILE: "me",
      AWS_DEFAULT_PROFILE: "me",
      AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: "/v2/credentials/x",
      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: "/tmp/x",
      AWS_CREDENTIAL_EXPIRATION: "2020-01-01T00:00:00Z",
    });
    for (
      const k of [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "AWS_CREDENTIAL_EXPIRATION",
      ]
    ) assert.equal(ep.childEnv[k], undefined, k);
    assert.match(
      ep.childEnv.AWS_CONTAINER_CREDENTIALS_FULL_URI,
      /^http:\/\/127\.0\.0\.1:\d+\/creds\/a$/,
    );
    assert.equal(ep.childEnv.AWS_REGION, "us-east-1");
    assert.ok(ep.token.length >= 43, "a token of at least 256 bits");

    const ok = await get(ep.port, ep.path, { token: ep.token });
    assert.equal(ok.status, 200, ok.body);
    const c = JSON.parse(ok.body);
    assert.match(c.AccessKeyId, /^ASIA/);
    assert.ok(c.SecretAccessKey && c.Token);
    assert.match(c.Expiration, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.ok(Date.parse(c.Expiration) > Date.now());
    assert.equal(c.AccountId, "123456789012");
    assert.match(ok.head, /\r\ncache-control: no-store/);
    assert.match(ok.head, /\r\ncontent-type: application\/json/);
    assert.doesNotMatch(ok.head, /access-control/);
    // Any loopback name the SDKs use is fine.
    assert.equal((await get(ep.port, ep.path, { token: ep.token, host: "localhost" })).status, 200);
    assert.equal(
      (await get(ep.port, ep.path, { token: ep.token, host: `[::1]:${ep.port}` })).status,
      200,
    );

    const refused: [string, Answer, number][] = [
      ["no token", await get(ep.port, ep.path), 401],
      // One character changed; the replacement is never the character it replaces.
      [
        "a wrong token",
        await get(ep.port, ep.path, {
          token: (ep.token[0] === "x" ? "y" : "x") + ep.token.slice(1),
        }),
        403,
      ],
      ["a short token", await get(ep.port, ep.path, { token: ep.token.slice(0, 10) }), 403],
      ["the token plus more", await get(ep.port, ep.path, { token: ep.token + "x" }), 403],
      ["Bearer TOKEN", await get(ep.port, ep.path, { token: `Bearer ${ep.token}` }), 403],
      [
        "a foreign Host (DNS rebinding)",
        await get(ep.port, ep.path, { token: ep.token, host: "attacker.example" }),
        403,
      ],
      [
        "a foreign Host on our port",
        await get(ep.port, ep.path, { token: ep.token, host: `evil.test:${ep.port}` }),
        403,
      ],
      [
        "loopback on another port",
        await get(ep.port, ep.path, { token: ep.token, host: "127.0.0.1:1" }),
        403,
      ],
      ["no Host", await rawHttp(ep.port, `GET ${ep.path} HTTP/1.0\r\n\r\n`), 403],
      ["POST", await get(ep.port, ep.path, { token: ep.token, method: "POST" }), 405],
      ["PUT", await get(ep.port, ep.path, { token: ep.token, method: "PUT" }), 405],
      [
        "a web page's request",
        await get(ep.port, ep.path, { token: ep.token, extra: ["Origin: https://x.example"] }),
        403,
      ],
      [
        "a body",
        await rawHttp(
          ep.port,
          `GET ${ep.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${ep.token}\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc`,
        ),
        413,
      ],
      [
        "huge headers",
        await get(ep.port, ep.path, { token: ep.token, extra: [`X-Pad: ${"a".repeat(9000)}`] }),
        431,
      ],
      ["another profile", await get(ep.port, "/creds/b", { token: ep.token }), 404],
      ["another path", await get(ep.port, "/", { token: ep.token }), 404],
    ];
    for (const [what, a, status] of refused) {
      assert.equal(a.status, status, `${what}: ${a.status} ${a.body}`);
      const m = JSON.parse(a.body);
      assert.match(m.Message, /^stsh: /, what);
      assert.doesNotMatch(a.body, /ASIA|attacker|evil|x\.example/, `${what} echoes nothing`);
      assert.ok(!a.body.includes(ep.token.slice(4, 20)), `${what}: no token in the answer`);
      assert.doesNotMatch(a.head, /access-control/);
    }

    // Only 127.0.0.1 listens: not another loopback address, not ::1, not the machine's own.
    const others = [
      "127.0.0.2",
      "::1",
      ...Deno.networkInterfaces()
        .filter((i) =>
          !i.address.startsWith("127.") && i.address !== "::1" && !i.address.startsWith("fe80")
        )
        .map((i) => i.address),
    ];
    for (const addr of others) {
      await assert.rejects(
        Deno.connect({ hostname: addr, port: ep.port }).then((c) => c.close()),
        `reachable on ${addr}`,
      );
    }

    // The token is in no process's command line (it travels in the child's environment only).
    let seen = 0;
    for await (const e of Deno.readDir("/proc")) {
      if (!/^\d+$/.test(e.name)) continue;
      const argv = await Deno.readFile(`/proc/${e.name}/cmdline`).catch(() => null);
      if (!argv) continue;
      seen++;
      assert.ok(!dec.decode(argv).includes(ep.token), `pid ${e.name} has the token in its argv`);
    }
    assert.ok(seen > 3);

    const done = await ep.finish();
    assert.equal(done.code, 3, done.stderr); // the command's own status
    assert.ok(!done.stderr.includes(ep.token));
    await assert.rejects(
      Deno.connect({ hostname: "127.0.0.1", port: ep.port }).then((c) => c.close()),
      "the endpoint is closed once the command has ended",
    );
  } finally {
    await w.close();
  }
});

Deno.test({
  name: "exec: a flood of connections that runs the endpoint out of descriptors does not stop it",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const w = await world();
    try {
      await w.primeCode();
      // A low descriptor limit for stsh, so that a few hundred idle connections exhaust it.
      const ep = await execWaiting(w, ["a"], {}, 80);
      const conns: Deno.Conn[] = [];
      for (let i = 0; i < 200; i++) {
        conns.push(await Deno.connect({ hostname: "127.0.0.1", port: ep.port }));
      }
      await new Promise((r) => setTimeout(r, 500));
      for (const c of conns) c.close();
      // Once the flood is gone the endpoint answers again (a request that is never accepted
      // counts as no answer).
      const within = (ms: number) =>
        Promise.race([
          get(ep.port, ep.path, { token: ep.token }),
          new Promise<Answer>((r) =>
            setTimeout(() => r({ status: 0, head: "", body: "", ms }), ms)
          ),
        ]);
      await waitFor(
        "the endpoint to answer again",
        async () => (await within(2000)).status === 200,
        20_000,
      );
      const r = await ep.finish();
      assert.equal(r.code, 3, r.stderr);
      assert.doesNotMatch(r.stderr, /Uncaught|error:/);
    } finally {
      await w.close();
    }
  },
});

Deno.test("exec: when a code is needed, the endpoint says so at once instead of waiting", async () => {
  // No mfa_process: the only code is the one given up front, and it is spent then.
  const w = await world({ mfaProcess: false, sessionLifetimeSeconds: 4, roleLifetimeSeconds: 4 });
  try {
    const code = await w.emu.code(w.alice);
    const ep = await execWaiting(w, ["-t", code, "a"]);
    assert.equal((await get(ep.port, ep.path, { token: ep.token })).status, 200);
    // The MFA session and the role end on their own; the next request needs a person.
    let last: Answer | undefined;
    await waitFor("a refusal", async () => {
      last = await get(ep.port, ep.path, { token: ep.token });
      assert.ok(last.ms < 2000, `answered in ${last.ms} ms`);
      return last.status !== 200;
    });
    assert.equal(last!.status, 403, last!.body);
    const m = JSON.parse(last!.body);
    assert.equal(m.Code, "MfaNeeded");
    assert.match(m.Message, /^stsh: an MFA code is needed for 'a': run `stsh env a/);
    const again = await get(ep.port, ep.path, { token: ep.token });
    assert.equal(again.status, 403);
    assert.ok(again.ms < 2000, `answered in ${again.ms} ms`);
    if (haveBoto3) {
      // What a program's user reads: boto3 passes the message on.
      const o = await new Deno.Command("python3", {
        args: [JOB, "--endpoint-url", w.emu.url, "--seconds", "0"],
        env: {
          ...w.env,
          ...Object.fromEntries(
            Object.entries(ep.childEnv).filter(([k]) => k.startsWith("AWS_CONTAINER_")),
          ),
        },
        clearEnv: true,
        stdout: "piped",
        stderr: "null",
      }).output();
      const job = JSON.parse(dec.decode(o.stdout) || "null");
      assert.equal(job.failed, 1);
      assert.match(job.errors[0], /an MFA code is needed for 'a': run `stsh env a/);
    }
    assert.equal((await ep.finish()).code, 3);
  } finally {
    await w.close();
  }
});

Deno.test("exec: a renewal held up by another process's lock is answered within the deadline", async () => {
  const w = await world({ roleLifetimeSeconds: 4 });
  const held: Deno.FsFile[] = [];
  try {
    await w.primeCode();
    const ep = await execWaiting(w, ["a"]);
    assert.equal((await get(ep.port, ep.path, { token: ep.token })).status, 200);
    // Another stsh holding every session's lock (as one waiting at the MFA question would).
    const dir = `${w.env.STSH_HOME}/cache`;
    for await (const e of Deno.readDir(dir)) {
      if (!e.name.endsWith(".lock")) continue;
      const f = await Deno.open(`${dir}/${e.name}`, { read: true, write: true });
      await f.lock(true);
      held.push(f);
    }
    assert.ok(held.length >= 1);
    let last: Answer | undefined;
    await waitFor("a refusal", async () => {
      last = await get(ep.port, ep.path, { token: ep.token });
      assert.ok(last.ms < 2000, `answered in ${last.ms} ms`);
      return last.status !== 200;
    });
    assert.equal(last!.status, 409, last!.body);
    assert.equal(JSON.parse(last!.body).Code, "NotReady");
    assert.match(JSON.parse(last!.body).Message, /another stsh is renewing them/);
    for (const f of held.splice(0)) f.close();
    // Free again: the renewal that was waiting finishes, and the next request has keys.
    await waitFor(
      "credentials again",
      async () => (await get(ep.port, ep.path, { token: ep.token })).status === 200,
    );
    assert.equal((await ep.finish()).code, 3);
  } finally {
    for (const f of held) f.close();
    await w.close();
  }
});

Deno.test("exec: a [default] profile with its own keys would outrank the endpoint: static keys, with a warning", async () => {
  const w = await world();
  try {
    await w.primeCode();
    await Deno.writeTextFile(
      w.env.AWS_SHARED_CREDENTIALS_FILE,
      `\n[default]\naws_access_key_id = ${w.plain.accessKeyId}\naws_secret_access_key = ${w.plain.secretAccessKey}\n`,
      { append: true },
    );
    const r = await w.run([
      "exec",
      "a",
      "--",
      "sh",
      "-c",
      'echo "${AWS_ACCESS_KEY_ID:-none} ${AWS_CONTAINER_CREDENTIALS_FULL_URI:-none}"',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ASIA\w+ none$/m);
    assert.match(r.stderr, /profile 'default' has credentials of its own \(keys\)/);
  } finally {
    await w.close();
  }
});

// ---------------------------------------------------------------------------------------
// The per-user server

function serverEnv(w: World, idle: number): Record<string, string> {
  return { ...w.env, STSH_BIN: STSH, STSH_SERVE_IDLE: String(idle) };
}

async function stopServer(pid: number | undefined) {
  if (!pid || !(await alive(pid))) return;
  try {
    Deno.kill(pid, "SIGTERM");
  } catch { /* gone */ }
  await waitFor(`server ${pid} to exit`, async () => !(await alive(pid)), 15_000);
}

async function awsAs(w: World, vars: Record<string, string>) {
  const env = { ...w.env, ...vars };
  const o = await new Deno.Command(AWS, {
    args: ["sts", "get-caller-identity", "--endpoint-url", w.emu.url, "--output", "text"],
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: o.code, stdout: dec.decode(o.stdout), stderr: dec.decode(o.stderr) };
}

Deno.test({
  name: "serve: started on demand, serves two profiles, restarts with a new token, idles out",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const w = await world();
    let pid: number | undefined;
    try {
      await w.primeCode();
      assert.equal((await w.run(["env", "a"])).code, 0);
      // Idle long enough for the AWS CLI's start-up between two requests, under load.
      const env = serverEnv(w, 8);
      const s = await ensureUserServer(env);
      pid = s.pid;
      assert.match(s.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.ok(await alive(s.pid));
      // The state file is private, and the token is in no argv (the server's included).
      const files = serveFiles(env);
      assert.equal((await Deno.stat(files.state)).mode! & 0o777, 0o600);
      const argv = dec.decode(await Deno.readFile(`/proc/${s.pid}/cmdline`));
      assert.match(argv, /serve/);
      assert.ok(!argv.includes(s.token));

      // Two profiles, each its own role, through the real SDK in the AWS CLI when present.
      const a = JSON.parse((await get(s.port, "/creds/a", { token: s.token })).body);
      const b = JSON.parse((await get(s.port, "/creds/b", { token: s.token })).body);
      assert.match(a.AccessKeyId, /^ASIA/);
      assert.match(b.AccessKeyId, /^ASIA/);
      assert.notEqual(a.AccessKeyId, b.AccessKeyId);
      if (haveAws) {
        for (const p of ["a", "b"]) {
          const r = await awsAs(w, endpointVars(s, p));
          assert.equal(r.code, 0, r.stderr);
          assert.match(r.stdout, new RegExp(`assumed-role/${p}/`));
        }
      }
      assert.equal((await get(s.port, "/creds/nope!", { token: s.token })).status, 404);
      assert.equal((await get(s.port, "/creds/a")).status, 401);

      // Asked again: the same server, nothing started; a second `stsh serve` steps aside.
      const again = await ensureUserServer(env);
      assert.equal(again.pid, s.pid);
      const second = await w.run(["serve"], { env });
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stderr, /already running/);
      assert.equal((await ensureUserServer(env)).pid, s.pid);

      // Gone (killed): while no server held its port, anything could have listened there
      // and collected the token from programs' requests. The next start has a new port and
      // a new token, and the old token is refused there.
      await stopServer(s.pid);
      const back = await ensureUserServer(env);
      pid = back.pid;
      assert.notEqual(back.pid, s.pid);
      assert.notEqual(back.token, s.token);
      assert.equal((await get(back.port, "/creds/a", { token: s.token })).status, 403);
      assert.equal((await get(back.port, "/creds/a", { token: back.token })).status, 200);
      assert.equal(JSON.parse(await Deno.readTextFile(files.state)).token, back.token);

      // Idle (no request, no client) for STSH_SERVE_IDLE seconds: it exits by itself.
      await waitFor("the idle server to exit", async () => !(await alive(back.pid)));
      assert.match(await Deno.readTextFile(files.log), /exiting: idle/);
      assert.ok(await exists(files.state));
      assert.ok(!(await Deno.readTextFile(files.log)).includes(s.token));
    } finally {
      await stopServer(pid);
      await w.close();
    }
  },
});

Deno.test({
  name:
    "serve: a live client shell keeps an idle server up; it exits once the shell is gone, whoever else pings",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const w = await world();
    let pid: number | undefined;
    const shell = standIn();
    const stranger = standIn();
    try {
      await w.primeCode();
      assert.equal((await w.run(["env", "a"])).code, 0);
      const env = serverEnv(w, 1);
      const s = await ensureUserServer(env, { client: shell.pid });
      pid = s.pid;
      // Several idle periods pass: the client lives, so the server stays.
      const log = serveFiles(env).log;
      await new Promise((r) => setTimeout(r, 4000));
      assert.ok(await alive(s.pid), await Deno.readTextFile(log));
      // Anyone may ask for the proof, but a ping that does not prove the token (none, or a
      // wrong mac) neither registers a live process as a client nor keeps the server up.
      const nonce = "0123456789abcdef0123456789abcdef";
      const pings = [
        `/ping?nonce=${nonce}&client=${stranger.pid}`,
        `/ping?nonce=${nonce}&client=${stranger.pid}&mac=${"0".repeat(64)}`,
      ];
      for (const q of pings) {
        const r = await get(s.port, q);
        assert.equal(r.status, 200, r.body);
        assert.doesNotMatch(r.body, /"pid"/);
      }
      await killAll(shell);
      // The shell is gone; the stranger lives and keeps pinging: the server exits anyway.
      await waitFor("the server to exit", async () => {
        for (const q of pings) await get(s.port, q).catch(() => {});
        return !(await alive(s.pid));
      });
      assert.match(await Deno.readTextFile(log), /exiting: idle/);
    } finally {
      await killAll(shell, stranger);
      await stopServer(pid);
      await w.close();
    }
  },
});

Deno.test({
  name:
    "serve: while its shell lives it stays between MFA sessions; after the next code, the same address serves again",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const w = await world({ mfaProcess: false, sessionLifetimeSeconds: 5, roleLifetimeSeconds: 5 });
    let pid: number | undefined;
    const shell = standIn();
    try {
      const code = await w.emu.code(w.alice);
      assert.equal((await w.run(["env", "a", "-t", code])).code, 0);
      const env = serverEnv(w, 3);
      const s = await ensureUserServer(env, { client: shell.pid });
      pid = s.pid;
      assert.equal((await get(s.port, "/creds/a", { token: s.token })).status, 200);
      // The sessions end: a program is told a code is needed, and the server stays (past its
      // grace and idle time) because the shell that uses it lives.
      await waitFor("the sessions to end", async () => {
        const r = await get(s.port, "/creds/a", { token: s.token });
        return r.status === 403 && JSON.parse(r.body).Code === "MfaNeeded";
      });
      await new Promise((r) => setTimeout(r, 5000));
      assert.ok(await alive(s.pid), await Deno.readTextFile(serveFiles(env).log));
      // The shell gets the next code: the program's next request at the same address works.
      const next = await w.emu.code(w.alice, 1);
      const again = await w.run(["env", "a", "-t", next], { env });
      assert.equal(again.code, 0, again.stderr);
      assert.equal((await get(s.port, "/creds/a", { token: s.token })).status, 200);
    } finally {
      await killAll(shell);
      await stopServer(pid);
      await w.close();
    }
  },
});

Deno.test({
  name: "serve: exits when no session is left, answering 'code needed' until then",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const w = await world({ mfaProcess: false, sessionLifetimeSeconds: 5, roleLifetimeSeconds: 5 });
    let pid: number | undefined;
    try {
      const code = await w.emu.code(w.alice);
      assert.equal((await w.run(["env", "a", "-t", code])).code, 0);
      const env = serverEnv(w, 3);
      const s = await ensureUserServer(env);
      pid = s.pid;
      assert.equal((await get(s.port, "/creds/a", { token: s.token })).status, 200);
      // Requests keep coming (it is never idle), but once the sessions are gone it can give
      // nothing without a person: it says so, then it exits.
      let sawRefusal = false;
      await waitFor("the server to exit", async () => {
        if (!(await alive(s.pid))) return true;
        const r = await get(s.port, "/creds/a", { token: s.token }).catch(() => null);
        if (r && r.status === 403) {
          assert.ok(r.ms < 2000);
          assert.equal(JSON.parse(r.body).Code, "MfaNeeded");
          sawRefusal = true;
        }
        await new Promise((r) => setTimeout(r, 300));
        return false;
      });
      assert.ok(sawRefusal);
      assert.match(await Deno.readTextFile(serveFiles(env).log), /exiting: no session left/);
    } finally {
      await stopServer(pid);
      await w.close();
    }
  },
});
