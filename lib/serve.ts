/**
 * The credential endpoint: a loopback HTTP server answering the container-credentials
 * protocol (AWS_CONTAINER_CREDENTIALS_FULL_URI + AWS_CONTAINER_AUTHORIZATION_TOKEN) from the
 * engine — the same cache, locks and re-minting as `stsh env` — so that a program started with
 * it refreshes its own credentials for as long as the MFA session lives, instead of dying
 * with the static keys it was given.
 *
 * Two uses: `stsh exec` runs one for its child (one profile, ephemeral port, closed with the
 * command), and `stsh serve` (lib/serve_user.ts) is the one per-user server the hooked shells
 * share (every profile under /creds/PROFILE; port and token remembered in a 0600 state file
 * so that a restart comes back where running programs expect it).
 *
 * It never waits for a person inside a request: SDKs give up after 1–2 s. A request that
 * needs an MFA code, or that would wait on another process, is answered at once with a
 * non-2xx JSON {"Code", "Message"} saying what to run. Those answers are 4xx: the JS SDK
 * passes Code and Message on to the program only for a 4xx (botocore shows any body).
 *
 * The hook's side of the per-user server (ensureUserServer) is in lib/serve_user.ts; this
 * module loads nothing heavy either: the engine is imported only by a server.
 */
import { EXIT, MfaNeeded, StshError } from "./errors.ts";
import type { Credentials, ResolveOptions } from "./engine.ts";
import type { Config } from "./config.ts";
import { type ChangeSet, checkCredentials, iso } from "./formats.ts";
import { later, PROFILE_NAME } from "./paths.ts";
import { oneLine } from "./text.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Variables that outrank the endpoint in SDK credential chains, or point elsewhere. */
export const ENDPOINT_SHADOWING_VARS = [
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_SECURITY_TOKEN",
  "AWS_CREDENTIAL_EXPIRATION",
  "AWS_SESSION_EXPIRATION",
  "AWS_PROFILE",
  "AWS_DEFAULT_PROFILE",
  "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
  "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
] as const;

export const FULL_URI = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
export const TOKEN_VAR = "AWS_CONTAINER_AUTHORIZATION_TOKEN";

/** Where a server is: enough for a client to build the endpoint variables. */
export interface Endpoint {
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  url: string;
  token: string;
}

/** The two endpoint variables for `profile`. */
export function endpointVars(server: Endpoint, profile: string): Record<string, string> {
  checkProfileName(profile);
  return {
    [FULL_URI]: `${server.url}/creds/${encodeURIComponent(profile)}`,
    [TOKEN_VAR]: server.token,
  };
}

/**
 * The change set that hands a program the endpoint instead of keys: the two endpoint
 * variables, the region when one is known, and every variable that would outrank the
 * endpoint (static keys, AWS_PROFILE, the relative URI, a token file) unset.
 */
export function endpointChanges(server: Endpoint, profile: string, region?: string): ChangeSet {
  const c: ChangeSet = {};
  for (const k of ENDPOINT_SHADOWING_VARS) c[k] = null;
  Object.assign(c, endpointVars(server, profile));
  if (region) Object.assign(c, { AWS_REGION: region, AWS_DEFAULT_REGION: region });
  return c;
}

function checkProfileName(profile: string) {
  if (!PROFILE_NAME.test(profile)) {
    throw new StshError(`'${oneLine(profile)}' is not a profile name.`, undefined, EXIT.refused);
  }
}

/** A token of 256 random bits, base64url (43 characters). */
export function newToken(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/**
 * Bytes as unpadded base64url (RFC 4648 §5). Spelled out rather than btoa(), which Deno
 * loads on first use: about 1.2 ms of every `stsh exec` and server start.
 */
export function base64url(bytes: Uint8Array): string {
  let out = "";
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = ((acc << 8) | b) & 0xffff;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += B64URL[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += B64URL[(acc << (6 - bits)) & 63];
  return out;
}

export const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43,128}$/;

/** Compare a presented secret with the expected one in time that depends only on the latter. */
export function sameSecret(given: string, expected: string): boolean {
  const a = enc.encode(given), b = enc.encode(expected);
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (i < a.length ? a[i] : 0) ^ b[i];
  return diff === 0;
}

export async function hmacHex(key: string, text: string): Promise<string> {
  const k = await crypto.subtle.importKey(
    "raw",
    enc.encode(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const sig = new Uint8Array(await crypto.subtle.sign("HMAC", k, enc.encode(text)));
  return Array.from(sig, (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * What a ping carries to show that its sender holds the token (and so may register a client
 * pid): an HMAC distinct from the server's proof, so neither answer can stand in for the
 * other, and bound to the pid it registers.
 */
export function clientMac(token: string, nonce: string, client: number): Promise<string> {
  return hmacHex(token, `client:${Number.isSafeInteger(client) ? client : 0}:${nonce}`);
}

/** The message for a request that needs a code, which only a person can give. */
export function codeNeededMessage(profile: string): string {
  return `stsh: an MFA code is needed for '${profile}': run \`stsh env ${profile} >/dev/null\` in a terminal, or press Enter in a shell hooked with --serve.`;
}

// ---------------------------------------------------------------------------------------
// The server

export interface ServerOptions {
  /** The environment the engine resolves with (config paths, STS endpoint, STSH_HOME). */
  env: Record<string, string>;
  /** Default: a new random token. */
  token?: string;
  /** Serve only this profile (exec); default: any profile name under /creds/. */
  only?: string;
  /** How long a request may take before it is answered "not ready" (default 1500 ms). */
  deadlineMs?: number;
  /** A line for the server's log (never a secret). */
  log?: (line: string) => void;
  /** Log every request, not only refusals and failures. */
  debug?: boolean;
  /** Which of these pids still run (the per-user server: to make room among its clients). */
  liveClients?: (pids: number[]) => Promise<Set<number>>;
  /** Instead of the engine (tests): credentials for a profile. */
  resolver?: (profile: string) => Promise<Credentials>;
  /**
   * "raw" (default): one request per connection on a plain TCP listener with a bounded
   * number of connections, each dropped when its request does not arrive in time. "deno":
   * Deno.serve, kept as the reference the raw transport is tested against; it keeps idle
   * connections open without limit, so a local flood can exhaust its descriptors.
   */
  transport?: "deno" | "raw";
}

export interface CredentialServer extends Endpoint {
  port: number;
  /** Epoch ms of the last request that carried the right token (or a client's ping). */
  lastActivity: number;
  /** Client processes registered by ensureUserServer (pids). */
  clients: Set<number>;
  /** Stop listening; requests in flight are answered first. */
  close(o?: CloseOptions): Promise<void>;
}

export interface CloseOptions {
  /** Wait at most this long for requests in flight. */
  boundMs?: number;
  /** The process exits right after: do not wait for the accept loop to unwind. */
  exiting?: boolean;
}

/** Until every promise has settled, or `boundMs` has passed; at once (no timer) for none. */
function settle(ps: Promise<unknown>[], boundMs?: number): Promise<void> {
  if (ps.length === 0) return Promise.resolve();
  const all = Promise.allSettled(ps).then(() => {});
  if (boundMs === undefined) return all;
  // AbortSignal.timeout, not setTimeout: the first setTimeout costs ~10 ms (lib/fsafe.ts).
  const bound = AbortSignal.timeout(boundMs);
  return Promise.race([
    all,
    new Promise<void>((r) => bound.addEventListener("abort", () => r(), { once: true })),
  ]);
}

const MAX_URL = 1024;
const MAX_HEADER_BYTES = 8 * 1024;
const MAX_CLIENTS = 256;
/**
 * Connections the raw transport serves at once. Beyond that a newcomer waits, or takes the
 * slot of a connection that sent no request within EVICT_AFTER_MS.
 */
const MAX_CONNECTIONS = 128;
const EVICT_AFTER_MS = 200;

function json(status: number, body: unknown, extra: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: {
      "content-type": "application/json",
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
      ...extra,
    },
  });
}

const refuse = (status: number, code: string, message: string, extra?: Record<string, string>) =>
  json(status, { Code: code, Message: message }, extra);

/** The Host values a loopback client sends: DNS-rebinding pages send their own name. */
function loopbackHosts(port: number): Set<string> {
  const names = ["127.0.0.1", "localhost", "[::1]"];
  return new Set(names.flatMap((n) => [n, `${n}:${port}`]));
}

/** Start serving on 127.0.0.1, on a new ephemeral port. */
export function startServer(opts: ServerOptions): CredentialServer {
  const token = opts.token ?? newToken();
  if (!TOKEN_SHAPE.test(token)) throw new StshError("The endpoint token has an unusable shape.");
  if (opts.only !== undefined) checkProfileName(opts.only);
  const deadlineMs = opts.deadlineMs ?? 1500;
  const log = opts.log ?? (() => {});
  const inflight = new Map<string, Promise<Credentials>>();
  let hosts = new Set<string>();

  const resolver = opts.resolver ?? (async (profile: string) => {
    const { resolve } = await later<typeof import("./engine.ts")>("engine");
    // Not interactive: the engine gives up at once behind another terminal's MFA question
    // (MfaNeeded), and waits a bounded few seconds behind a process at work (an AssumeRole
    // in flight) — in the background: the deadline below answers the request in time
    // ("not ready") and the next request gets the result.
    const o: ResolveOptions = { env: opts.env, interactive: false, wait: "bounded" };
    return await resolve(profile, o);
  });

  /** One resolve per profile at a time: requests that arrive meanwhile share it. */
  const credentialsFor = (profile: string): Promise<Credentials> => {
    let p = inflight.get(profile);
    if (!p) {
      p = resolver(profile).finally(() => inflight.delete(profile));
      p.catch(() => {}); // a request that gave up waiting must not leave it unhandled
      inflight.set(profile, p);
    }
    return p;
  };

  const answer = async (profile: string): Promise<Response> => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((r) => timer = setTimeout(() => r("late"), deadlineMs));
    const got = await Promise.race([
      credentialsFor(profile).then((c) => ({ c }), (e: unknown) => ({ e })),
      late,
    ]);
    clearTimeout(timer);
    if (got === "late") {
      log(`/creds/${profile}: not ready within ${deadlineMs} ms`);
      return refuse(
        409,
        "NotReady",
        `stsh: the credentials for '${profile}' are not ready: another stsh is renewing them (perhaps waiting for an MFA code). Try again in a moment, or run \`stsh env ${profile} >/dev/null\` in a terminal.`,
      );
    }
    if ("e" in got) {
      const e = got.e;
      if (e instanceof MfaNeeded) {
        log(`/creds/${profile}: an MFA code is needed`);
        return refuse(403, "MfaNeeded", codeNeededMessage(profile));
      }
      if (e instanceof StshError) {
        log(`/creds/${profile}: ${oneLine(e.message)}`);
        return refuse(422, "StshError", `stsh: ${oneLine(e.message)}`);
      }
      log(`/creds/${profile}: unexpected error: ${oneLine(String((e as Error)?.message ?? e))}`);
      return refuse(
        500,
        "StshError",
        `stsh: an unexpected error; \`stsh env ${profile} >/dev/null\` in a terminal shows it.`,
      );
    }
    const c = got.c;
    try {
      checkCredentials(c);
    } catch (e) {
      return refuse(422, "StshError", `stsh: ${(e as Error).message}`);
    }
    const body: Record<string, string> = {
      AccessKeyId: c.accessKeyId,
      SecretAccessKey: c.secretAccessKey,
      Token: c.sessionToken ?? "",
      // SDKs need an expiry to refresh; credentials without one are asked for again hourly.
      Expiration: iso(c.expiration ?? new Date(Date.now() + 3600_000)),
    };
    const account = c.arn?.split(":")[4];
    if (account && /^\d{12}$/.test(account)) body.AccountId = account;
    if (opts.debug) log(`/creds/${profile}: 200, until ${body.Expiration}`);
    return json(200, body);
  };

  const handle = async (req: Request): Promise<Response> => {
    const host = (req.headers.get("host") ?? "").toLowerCase();
    if (!hosts.has(host)) {
      log("refused: a Host that is not a loopback name");
      return refuse(403, "Forbidden", "stsh: this endpoint answers loopback names only.");
    }
    if (req.headers.has("origin")) {
      log("refused: a request with an Origin (a web page)");
      return refuse(403, "Forbidden", "stsh: this endpoint does not answer web pages.");
    }
    if (req.method !== "GET") {
      return refuse(405, "MethodNotAllowed", "stsh: GET only.", { allow: "GET" });
    }
    let headerBytes = 0;
    for (const [k, v] of req.headers) headerBytes += k.length + v.length + 4;
    if (req.url.length > MAX_URL || headerBytes > MAX_HEADER_BYTES) {
      return refuse(431, "TooLarge", "stsh: the request is too large.");
    }
    const length = req.headers.get("content-length");
    if ((length !== null && length !== "0") || req.headers.has("transfer-encoding")) {
      return refuse(413, "TooLarge", "stsh: a request has no body here.");
    }
    const url = new URL(req.url);
    if (url.pathname === "/ping") return await ping(url);
    const auth = req.headers.get("authorization");
    if (auth === null) {
      log("refused: no Authorization");
      return refuse(401, "Unauthorized", "stsh: the Authorization header is missing.");
    }
    if (!sameSecret(auth, token)) {
      log("refused: a wrong Authorization");
      return refuse(403, "Forbidden", "stsh: the Authorization token is wrong.");
    }
    const m = url.pathname.match(/^\/creds\/([^/]+)$/);
    let profile: string | undefined;
    try {
      profile = m ? decodeURIComponent(m[1]) : undefined;
    } catch { /* not a name */ }
    if (
      profile === undefined || !PROFILE_NAME.test(profile) ||
      (opts.only !== undefined && profile !== opts.only)
    ) {
      return refuse(404, "NotFound", "stsh: no such path; the endpoint serves /creds/PROFILE.");
    }
    server.lastActivity = Date.now();
    return await answer(profile);
  };

  /**
   * Proof of the token without revealing it (HMAC of the caller's nonce). A client pid is
   * registered, and the idle clock reset, only when the ping proves the token in turn
   * (`mac`: clientMac below): anyone may ask for a proof, only a holder of the token may
   * keep the server up.
   */
  const ping = async (url: URL): Promise<Response> => {
    const nonce = url.searchParams.get("nonce") ?? "";
    if (!/^[0-9a-f]{32,64}$/.test(nonce)) {
      return refuse(400, "BadRequest", "stsh: ping needs a nonce.");
    }
    const client = Number(url.searchParams.get("client"));
    const mac = url.searchParams.get("mac") ?? "";
    if (mac !== "" && sameSecret(mac, await clientMac(token, nonce, client))) {
      // Full of pids (of shells long gone): forget the dead before turning a live one away.
      if (server.clients.size >= MAX_CLIENTS && opts.liveClients) {
        server.clients = await opts.liveClients([...server.clients]);
      }
      if (Number.isSafeInteger(client) && client > 1 && server.clients.size < MAX_CLIENTS) {
        server.clients.add(client);
      }
      server.lastActivity = Date.now();
    }
    return json(200, { stsh: "serve", proof: await hmacHex(token, nonce) });
  };

  const onError = () => refuse(500, "StshError", "stsh: the request could not be answered.");
  const http = opts.transport === "deno" ? denoHttp(handle, onError) : rawHttp(handle, onError);
  const port = http.port;
  hosts = loopbackHosts(port);
  const server: CredentialServer = {
    url: `http://127.0.0.1:${port}`,
    token,
    port,
    lastActivity: Date.now(),
    clients: new Set(),
    close: (o) => http.shutdown(o),
  };
  return server;
}

/** What answers HTTP on 127.0.0.1:port. */
interface Http {
  port: number;
  /** Stop listening; requests in flight are answered first. */
  shutdown(o?: CloseOptions): Promise<void>;
}

function denoHttp(
  handle: (req: Request) => Promise<Response>,
  onError: () => Response,
): Http {
  const http = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {}, onError }, handle);
  return { port: http.addr.port, shutdown: (o) => settle([http.shutdown()], o?.boundMs) };
}

/** A request head (request line and headers) larger than this is refused (431). */
const MAX_HEAD_BYTES = MAX_URL + MAX_HEADER_BYTES + 256;
/** A client that has not sent its whole head by then is disconnected. */
const HEAD_DEADLINE_MS = 5000;
/** After answering: how long and how much of what the client still sends is read away. */
const DRAIN_MS = 1000;
const DRAIN_BYTES = 1024 * 1024;
const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Content Too Large",
  422: "Unprocessable Content",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
};
const TOKEN_CHARS = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function closeQuietly(conn: Deno.Conn) {
  try {
    conn.close();
  } catch { /* closed already */ }
}

/**
 * The same door on a plain TCP listener, one request per connection (answered with
 * `Connection: close`), for `stsh exec` and the per-user server. Deno.serve costs 5–10 ms of
 * start-up (its Request and Response machinery), which a one-command server pays on every
 * exec; here that machinery is loaded by the first request instead — the child's time, not
 * stsh's. And Deno.serve keeps idle connections without limit, so a local flood exhausts its
 * descriptors; here at most MAX_CONNECTIONS are held, each for HEAD_DEADLINE_MS at most
 * before its request is in. The head is read with a byte limit and a deadline; anything that
 * is not a plain HTTP/1.x request line with well-formed headers is refused before `handle`
 * sees it, and `handle` makes every other decision exactly as under Deno.serve.
 */
function rawHttp(
  handle: (req: Request) => Promise<Response>,
  onError: () => Response,
): Http {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0, transport: "tcp" });
  const bound = listener.addr.port;
  /** Connections still sending their head: closed at shutdown (nothing to answer yet). */
  const reading = new Map<Deno.Conn, number>(); // since when (performance.now())
  const answering = new Set<Promise<void>>();
  let closing = false;

  const write = async (conn: Deno.Conn, res: Response) => {
    const body = new Uint8Array(await res.arrayBuffer());
    const lines = [`HTTP/1.1 ${res.status} ${REASONS[res.status] ?? "Status"}`];
    for (const [k, v] of res.headers) {
      if (k !== "content-length" && k !== "connection") lines.push(`${k}: ${v}`);
    }
    lines.push(`content-length: ${body.length}`, "connection: close", "", "");
    const head = enc.encode(lines.join("\r\n"));
    const all = new Uint8Array(head.length + body.length);
    all.set(head);
    all.set(body, head.length);
    for (let done = 0; done < all.length;) done += await conn.write(all.subarray(done));
    // Closing with unread bytes (a body, the rest of an oversized head) would reset the
    // connection and could lose the answer: say we are done, read what is left, bounded.
    await conn.closeWrite().catch(() => {});
    const stop = AbortSignal.timeout(DRAIN_MS);
    const onStop = () => closeQuietly(conn);
    stop.addEventListener("abort", onStop, { once: true });
    try {
      const sink = new Uint8Array(16 * 1024);
      for (let drained = 0; drained < DRAIN_BYTES;) {
        const got = await conn.read(sink);
        if (got === null) break;
        drained += got;
      }
    } catch {
      /* closed */
    } finally {
      stop.removeEventListener("abort", onStop);
    }
  };

  /** The request head, or a Response refusing it, or null when the client went away. */
  const readHead = async (conn: Deno.Conn): Promise<Request | Response | null> => {
    const buf = new Uint8Array(MAX_HEAD_BYTES + 4);
    let n = 0;
    let end = -1;
    while (end < 0) {
      if (n >= buf.length) {
        return refuse(431, "TooLarge", "stsh: the request is too large.");
      }
      const got = await conn.read(buf.subarray(n));
      if (got === null) return null;
      const from = Math.max(0, n - 3);
      n += got;
      for (let i = from; i + 3 < n; i++) {
        if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) {
          end = i;
          break;
        }
      }
    }
    const bad = () => refuse(400, "BadRequest", "stsh: a malformed request.");
    const bytes = buf.subarray(0, end);
    // Printable ASCII, tab and CRLF only: no NUL, no bare CR or LF, no 8-bit bytes.
    for (const b of bytes) if (b > 126 || (b < 32 && b !== 9 && b !== 10 && b !== 13)) return bad();
    const lines = dec.decode(bytes).split("\r\n");
    if (lines.some((l) => l.includes("\r") || l.includes("\n"))) return bad();
    const m = lines[0].match(/^([A-Z]{1,16}) (\/[^ ]*) HTTP\/1\.[01]$/);
    if (!m) return bad();
    const headers = new Headers();
    for (const line of lines.slice(1)) {
      const i = line.indexOf(":");
      const name = i > 0 ? line.slice(0, i) : "";
      if (!TOKEN_CHARS.test(name)) return bad(); // also: no folded (leading-space) lines
      try {
        headers.append(name, line.slice(i + 1).trim());
      } catch {
        return bad();
      }
    }
    try {
      return new Request(`http://127.0.0.1:${bound}${m[2]}`, { method: m[1], headers });
    } catch {
      return refuse(405, "MethodNotAllowed", "stsh: GET only.", { allow: "GET" });
    }
  };

  const serveConn = async (conn: Deno.Conn) => {
    reading.set(conn, performance.now());
    const deadline = AbortSignal.timeout(HEAD_DEADLINE_MS);
    const late = () => closeQuietly(conn);
    deadline.addEventListener("abort", late, { once: true });
    let got: Request | Response | null;
    try {
      got = await readHead(conn);
    } catch {
      got = null; // closed by the deadline or at shutdown, or reset by the client
    } finally {
      deadline.removeEventListener("abort", late);
      reading.delete(conn);
    }
    if (got === null) return;
    let res: Response;
    try {
      res = got instanceof Response ? got : await handle(got);
    } catch {
      res = onError();
    }
    await write(conn, res);
  };

  const accepting = (async () => {
    while (true) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (e) {
        if (closing || e instanceof Deno.errors.BadResource) return; // the listener was closed
        // Out of descriptors (a flood of connections) or another passing failure: keep
        // listening, a moment later, rather than stop answering for good.
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      if (closing) {
        closeQuietly(conn);
        continue;
      }
      // Full: the connection that has kept its slot longest without sending a request gives
      // way (what a flood holds); while every slot is busy with a request, or has just
      // arrived, the newcomer waits its turn — never reset because others were first.
      while (answering.size >= MAX_CONNECTIONS && !closing) {
        const first = reading.entries().next();
        const [oldest, since] = first.done ? [undefined, 0] : first.value;
        if (oldest && performance.now() - since >= EVICT_AFTER_MS) {
          reading.delete(oldest);
          closeQuietly(oldest);
          break;
        }
        await Promise.race([...answering, new Promise((r) => setTimeout(r, EVICT_AFTER_MS))]);
      }
      const p: Promise<void> = serveConn(conn).catch(() => {}).finally(() => {
        answering.delete(p);
        closeQuietly(conn);
      });
      answering.add(p);
    }
  })();

  return {
    port: bound,
    async shutdown(o: CloseOptions = {}) {
      if (!closing) {
        closing = true;
        listener.close();
        // The pending accept fails with the close; settling that costs Deno a few tenths of
        // a millisecond (up to 3 ms), which a process about to exit need not wait for (any
        // connection it still hands over sees `closing` and is closed).
        if (!o.exiting) await accepting;
        for (const c of reading.keys()) closeQuietly(c);
      }
      await settle([...answering], o.boundMs);
    },
  };
}

// ---------------------------------------------------------------------------------------
// `stsh exec`: what a child is given

/**
 * Why the endpoint would not be used by SDKs under the `default` profile, or null: SDKs
 * look at the default profile's own credentials (keys, role, SSO, credential_process) before
 * the container endpoint, so a `[default]` with credentials wins over it.
 */
export function defaultProfileShadows(config: Config): string | null {
  const d = config.profiles.get("default");
  if (!d) return null;
  if (d.keys) return "keys";
  if (d.roleArn) return "role_arn";
  if (d.sdk) return d.sdk;
  if (d.credentialSource) return "credential_source";
  return null;
}

/** The child's environment for `stsh exec` with the endpoint. */
export function execEnv(
  base: Record<string, string>,
  server: Endpoint,
  profile: string,
  region?: string,
): Record<string, string> {
  const env = { ...base };
  for (const [k, v] of Object.entries(endpointChanges(server, profile, region))) {
    if (v === null) delete env[k];
    else env[k] = v;
  }
  return env;
}
