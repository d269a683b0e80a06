/**
 * The per-user credential server (`stsh serve`) that shells hooked with `--serve` share:
 * every profile under /creds/PROFILE, its port and token in a 0600 state file (new ones at
 * every start: a token is never offered again once its server was gone), gone when idle or
 * when no session is left and no client shell lives; and the hook's side, ensureUserServer,
 * which finds it or starts it. The endpoint itself (the door, the transports, the answers) is
 * lib/serve.ts, which `stsh exec` loads alone.
 */
import { StshError } from "./errors.ts";
import { readTextBounded, writeAtomic } from "./fsafe.ts";
import { isWindows, join, later, privateDir, stateDir } from "./paths.ts";
import { oneLine } from "./text.ts";
import {
  clientMac,
  type CredentialServer,
  type Endpoint,
  ENDPOINT_SHADOWING_VARS,
  hmacHex,
  sameSecret,
  startServer,
  TOKEN_SHAPE,
} from "./serve.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

interface State {
  port: number;
  token: string;
  pid: number;
}

export const serveFiles = (env: Record<string, string>) => {
  const dir = stateDir(env);
  return {
    dir,
    state: join(dir, "serve.json"),
    running: join(dir, "serve.lock"),
    starting: join(dir, "serve.start.lock"),
    log: join(dir, "serve.log"),
  };
};

/** The remembered port and token, or null (missing, damaged, or readable by others). */
async function readState(env: Record<string, string>): Promise<State | null> {
  const path = serveFiles(env).state;
  try {
    const text = await readTextBounded(path, { maxBytes: 4096, ownedByMe: true, noLinks: true });
    if (!isWindows) {
      const st = await Deno.lstat(path);
      if (st.mode !== null && (st.mode & 0o077) !== 0) return null;
    }
    const o = JSON.parse(text);
    const ok = Number.isInteger(o?.port) && o.port > 0 && o.port < 65536 &&
      typeof o.token === "string" && TOKEN_SHAPE.test(o.token) && Number.isInteger(o.pid);
    return ok ? { port: o.port, token: o.token, pid: o.pid } : null;
  } catch {
    return null;
  }
}

/** One raw HTTP/1.1 GET to 127.0.0.1 (no proxy, no fetch machinery), bounded in time. */
export async function loopbackGet(
  port: number,
  path: string,
  headers: Record<string, string> = {},
  timeoutMs = 1000,
): Promise<{ status: number; body: string }> {
  let conn: Deno.TcpConn | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const work = (async () => {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const head = [
      `GET ${path} HTTP/1.1`,
      `Host: 127.0.0.1:${port}`,
      "Connection: close",
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
      "",
      "",
    ].join("\r\n");
    const bytes = enc.encode(head);
    for (let done = 0; done < bytes.length;) done += await conn.write(bytes.subarray(done));
    const chunks: Uint8Array[] = [];
    let size = 0;
    const buf = new Uint8Array(16 * 1024);
    while (true) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
      size += n;
      if (size > 256 * 1024) throw new Error("answer too large");
    }
    const all = new Uint8Array(size);
    let at = 0;
    for (const c of chunks) {
      all.set(c, at);
      at += c.length;
    }
    const text = dec.decode(all);
    const m = text.match(/^HTTP\/1\.[01] (\d{3})/);
    if (!m) throw new Error("not an HTTP answer");
    const split = text.indexOf("\r\n\r\n");
    let body = split < 0 ? "" : text.slice(split + 4);
    if (/\r\ntransfer-encoding:\s*chunked/i.test(text.slice(0, split))) body = unchunk(body);
    return { status: Number(m[1]), body };
  })();
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("no answer in time")), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    work.catch(() => {});
    try {
      conn?.close();
    } catch { /* closed */ }
  }
}

function unchunk(body: string): string {
  let out = "";
  let rest = body;
  while (true) {
    const eol = rest.indexOf("\r\n");
    if (eol < 0) break;
    const n = parseInt(rest.slice(0, eol), 16);
    if (!(n > 0)) break;
    out += rest.slice(eol + 2, eol + 2 + n);
    rest = rest.slice(eol + 2 + n + 2);
  }
  return out;
}

/** Is our server listening there? It must prove it holds the token; the token is not sent. */
async function answers(state: State, client?: number): Promise<boolean> {
  const nonce = Array.from(
    crypto.getRandomValues(new Uint8Array(16)),
    (x) => x.toString(16).padStart(2, "0"),
  ).join("");
  // The ping proves the token in turn (without sending it), so it may register the client.
  const mac = await clientMac(state.token, nonce, client ?? 0);
  const q = `/ping?nonce=${nonce}${client ? `&client=${client}` : ""}&mac=${mac}`;
  try {
    const r = await loopbackGet(state.port, q, {}, 1000);
    if (r.status !== 200) return false;
    const o = JSON.parse(r.body);
    return typeof o?.proof === "string" && sameSecret(o.proof, await hmacHex(state.token, nonce));
  } catch {
    return false;
  }
}

/** The program to start: as `stsh init` finds itself (STSH_BIN, else the compiled binary). */
export function stshProgram(env: Record<string, string>): string {
  return env.STSH_BIN || (Deno.build.standalone ? Deno.execPath() : "stsh");
}

/** The server's environment: the person's, without credentials of any one shell. */
export function serverEnv(env: Record<string, string>): Record<string, string> {
  const out = { ...env };
  for (const k of Object.keys(out)) {
    if (/^(STSH_(PROFILE|ROOT|EXPIRES|PINNED|PREV)|AWS_CONTAINER_.*)$/.test(k)) delete out[k];
  }
  for (const k of ENDPOINT_SHADOWING_VARS) {
    if (k !== "AWS_PROFILE" && k !== "AWS_DEFAULT_PROFILE") delete out[k];
  }
  return out;
}

async function sleep(ms: number) {
  await new Promise((r) => setTimeout(r, ms));
}

/** Hold an exclusive lock on `path` while `fn` runs, waiting at most `ms` for it. */
async function withFileLock<T>(path: string, ms: number, fn: () => Promise<T>): Promise<T> {
  const f = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
  try {
    const until = Date.now() + ms;
    while (!(await f.tryLock(true))) {
      if (Date.now() > until) {
        throw new StshError("Another stsh is starting the credential server and has not finished.");
      }
      await sleep(50);
    }
    return await fn();
  } finally {
    f.close();
  }
}

export interface EnsureOptions {
  /**
   * A process whose life keeps the server up even when no request comes (the shell: the
   * hook passes its parent's pid). Without one, only requests keep it from idling out.
   */
  client?: number;
  /** How long to wait for a new server to be ready (default 10 s). */
  timeoutMs?: number;
}

/**
 * The per-user server, started when none answers: what the hook calls on its slow path.
 * Cost when one is running: one state-file read and one loopback round trip (HMAC ping),
 * about a millisecond; when none is, starting `stsh serve` (a Deno start-up) and waiting for
 * it, bounded by `timeoutMs`. A restarted server has a new port and token (see runServe).
 */
export async function ensureUserServer(
  env: Record<string, string>,
  opts: EnsureOptions = {},
): Promise<Endpoint & { port: number; pid: number }> {
  const found = (s: State) => ({
    url: `http://127.0.0.1:${s.port}`,
    token: s.token,
    port: s.port,
    pid: s.pid,
  });
  const known = await readState(env);
  if (known && await answers(known, opts.client)) return found(known);
  const files = serveFiles(env);
  await privateDir(files.dir);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return await withFileLock(files.starting, timeoutMs, async () => {
    const again = await readState(env);
    if (again && await answers(again, opts.client)) return found(again);
    const bin = stshProgram(env);
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(bin, {
        args: ["serve"],
        env: serverEnv(env),
        clearEnv: true,
        cwd: isWindows ? undefined : "/",
        detached: true,
        stdin: "null",
        stdout: "piped",
        stderr: "null",
      }).spawn();
    } catch (e) {
      throw new StshError(
        `Cannot start the credential server (${bin} serve): ${oneLine((e as Error).message)}`,
      );
    }
    child.unref();
    // The server prints one line once it listens and has written the state file.
    const reader = child.stdout.getReader();
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        reader.read(),
        new Promise((r) => timer = setTimeout(r, timeoutMs)),
      ]);
    } finally {
      clearTimeout(timer);
      reader.cancel().catch(() => {});
    }
    const until = Date.now() + Math.min(timeoutMs, 3000);
    while (true) {
      const now = await readState(env);
      if (now && await answers(now, opts.client)) return found(now);
      if (Date.now() > until) break;
      await sleep(100);
    }
    throw new StshError(
      "The stsh credential server did not start.",
      `Run \`${bin} serve --debug\` to see why (its log: ${files.log}).`,
    );
  });
}

export interface UserServerOptions {
  env: Record<string, string>;
  debug?: boolean;
  /** Seconds without a request (and without a live client) before it exits: STSH_SERVE_IDLE. */
  idleSeconds?: number;
  /** Called once it listens (the CLI prints the ready line). */
  onReady?: (s: CredentialServer) => void;
}

/** STSH_SERVE_IDLE seconds, default 7200. */
export function idleSeconds(env: Record<string, string>): number {
  const v = Number(env.STSH_SERVE_IDLE);
  return env.STSH_SERVE_IDLE !== undefined && Number.isFinite(v) && v > 0 ? v : 7200;
}

/**
 * Which of `pids` are alive: `kill -0` through /bin/sh (Deno reads /proc only with
 * --allow-all). Windows has no cheap check: they all count as alive there.
 */
async function liveProcesses(pids: number[]): Promise<Set<number>> {
  const alive = new Set<number>();
  if (!pids.length) return alive;
  if (isWindows) return new Set(pids);
  try {
    const out = await new Deno.Command("/bin/sh", {
      args: [
        "-c",
        'for p; do kill -0 "$p" 2>/dev/null && echo "$p"; done',
        "sh",
        ...pids.map(String),
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    for (const l of dec.decode(out.stdout).split("\n")) if (l) alive.add(Number(l));
  } catch { /* none known alive */ }
  return alive;
}

/** Does the cache still hold anything unexpired (an MFA session, or a role session from one)? */
async function anySessionLeft(env: Record<string, string>): Promise<boolean> {
  const { Cache } = await later<typeof import("./cache.ts")>("cache");
  const now = Date.now();
  return (await new Cache(env).list()).some((e) => Date.parse(e.expiration) > now);
}

/**
 * `stsh serve`: run the per-user server until it is idle (no request and no live client for
 * idleSeconds) or nothing is left in the cache to serve without a person. Returns at once
 * when another one runs.
 */
export async function runUserServer(
  opts: UserServerOptions,
): Promise<"stopped" | "already running"> {
  const env = opts.env;
  const files = serveFiles(env);
  await privateDir(files.dir);
  const running = await Deno.open(files.running, {
    read: true,
    write: true,
    create: true,
    mode: 0o600,
  });
  if (!(await running.tryLock(true))) {
    running.close();
    return "already running"; // ensureUserServer finds that one through the state file
  }
  // Opened (and emptied) only by the one server that runs.
  const logFile = await Deno.open(files.log, {
    write: true,
    create: true,
    truncate: true,
    mode: 0o600,
  }).catch(() => null);
  if (logFile && !isWindows) await Deno.chmod(files.log, 0o600).catch(() => {});
  let logged = 0;
  const log = (line: string) => {
    if (!logFile || logged > 1024 * 1024) return;
    const b = enc.encode(`${new Date().toISOString()} ${line}\n`);
    logged += b.length;
    try {
      logFile.writeSync(b);
    } catch { /* logging never stops serving */ }
  };
  // A new port and a new token at every start, never the last ones again: while no server
  // held the old port, anything else could listen there and collect the token from the
  // requests of programs that still had it. Those programs get a refusal at their next
  // refresh; shells take the new address at their next slow path.
  const server: CredentialServer = startServer({
    env,
    log,
    debug: opts.debug,
    liveClients: liveProcesses,
  });
  await writeAtomic(
    files.state,
    JSON.stringify({ port: server.port, token: server.token, pid: Deno.pid }) + "\n",
    { mode: 0o600 },
  );
  log(`listening on ${server.url} (pid ${Deno.pid})`);
  opts.onReady?.(server);

  const idleMs = (opts.idleSeconds ?? idleSeconds(env)) * 1000;
  const tick = Math.min(30_000, Math.max(250, idleMs / 4));
  const started = Date.now();
  let stop: (why: string) => void = () => {};
  const stopped = new Promise<string>((r) => stop = r);
  const signals: Deno.Signal[] = isWindows ? [] : ["SIGTERM", "SIGINT"];
  const onSignal = () => stop("a signal");
  for (const s of signals) Deno.addSignalListener(s, onSignal);
  if (!isWindows) Deno.addSignalListener("SIGHUP", () => {}); // no terminal to hang up on
  /** Forgets the client shells that are gone; true while one still runs. */
  const clientLives = async () => {
    server.clients = await liveProcesses([...server.clients]);
    return server.clients.size > 0;
  };
  const timer = setInterval(async () => {
    const now = Date.now();
    if (now - server.lastActivity >= idleMs && !(await clientLives())) return stop("idle");
    // A grace period after start, for a person who is about to type a code. While a shell
    // that uses it lives, it stays even then: that shell asks for the next code, and the
    // programs started from it go on with the same address and token once it is typed.
    if (
      now - started > Math.min(idleMs, 60_000) && !(await anySessionLeft(env)) &&
      !(await clientLives())
    ) {
      stop("no session left");
    }
  }, tick);
  const why = await stopped;
  clearInterval(timer);
  for (const s of signals) Deno.removeSignalListener(s, onSignal);
  log(`exiting: ${why}`);
  await server.close();
  running.close();
  logFile?.close();
  return "stopped";
}
