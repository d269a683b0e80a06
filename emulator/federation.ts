/**
 * A local stand-in for the AWS sign-in federation endpoint
 * (`https://signin.aws.amazon.com/federation`), for `stsh console` tests.
 *
 * Library: `const fed = await FederationEmulator.start({ sts: emu })`; `fed.url` is the
 * endpoint (set STSH_FEDERATION_URL to it).
 *
 * What it implements, as AWS documents it ("Enable custom identity broker access to the AWS
 * console", IAM User Guide):
 * - `GET ?Action=getSigninToken&Session={"sessionId","sessionKey","sessionToken"}` with an
 *   optional `SessionDuration` (900..43200 s): answers `{"SigninToken":"…"}`. The credentials
 *   must be ones the STS emulator issued, all three parts matching, not expired, and a role
 *   session: long-term keys and GetSessionToken sessions cannot be federated into the console.
 *   `SessionDuration` is refused for a role session assumed with temporary credentials (role
 *   chaining, which includes a role assumed from an MFA session): AWS documents that such a
 *   role must be assumed by an IAM user with long-term credentials, and the endpoint answers
 *   400 when the parameter is sent anyway (without it, the console session lasts as long as
 *   the credentials).
 * - `GET ?Action=login&Issuer=…&Destination=…&SigninToken=…`: a token it issued in the last
 *   15 minutes, once, redirects (302) to Destination.
 * Every refusal is HTTP 400 with a small HTML page, as the real endpoint answers; the reason
 * is in `calls` for tests. It never records or logs a secret key or session token.
 */
import type { StsEmulator } from "./sts.ts";

export interface FederationCall {
  action: string;
  /** 0 while held open by a Hang fault. */
  status: number;
  /** Why it was refused (tests only; never a secret). */
  reason?: string;
  accessKeyId?: string;
  sessionDuration?: string;
}

export interface IssuedToken {
  token: string;
  accessKeyId: string;
  arn: string;
  /** Virtual epoch ms. */
  issuedAt: number;
  /** When the console session it opens ends (virtual epoch ms). */
  consoleUntil: number;
  used: boolean;
}

export type FederationFault = "ServerError" | "Hang";

const TOKEN_LIFETIME_MS = 15 * 60_000;

export class FederationEmulator {
  calls: FederationCall[] = [];
  tokens: IssuedToken[] = [];
  #sts: StsEmulator;
  #server?: Deno.HttpServer<Deno.NetAddr>;
  #url = "";
  #faults: { kind: FederationFault; times: number }[] = [];
  #hung = new Set<() => void>();
  #closing?: Promise<void>;

  private constructor(sts: StsEmulator) {
    this.#sts = sts;
  }

  /** Listens on 127.0.0.1, random port; checks credentials against `sts`. */
  static start(opts: { sts: StsEmulator; port?: number }): Promise<FederationEmulator> {
    const fed = new FederationEmulator(opts.sts);
    fed.#server = Deno.serve(
      { hostname: "127.0.0.1", port: opts.port ?? 0, onListen: () => {} },
      (req) => fed.#handle(req),
    );
    fed.#url = `http://127.0.0.1:${fed.#server.addr.port}/federation`;
    return Promise.resolve(fed);
  }

  /** The endpoint, path included: what STSH_FEDERATION_URL is set to. */
  get url(): string {
    return this.#url;
  }

  /** The next `times` getSigninToken calls fail: HTTP 500, or held open until close(). */
  failNext(kind: FederationFault, times = 1): void {
    this.#faults.push({ kind, times });
  }

  close(): Promise<void> {
    for (const release of this.#hung) release();
    this.#hung.clear();
    this.#closing ??= this.#server?.shutdown() ?? Promise.resolve();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const p = url.searchParams;
    const call: FederationCall = { action: p.get("Action") ?? "", status: 200 };
    this.calls.push(call);
    const refuse = (reason: string, status = 400) => {
      call.status = status;
      call.reason = reason;
      return errorPage(status);
    };
    if (req.method !== "GET" || url.pathname !== "/federation") {
      return refuse(`${req.method} ${url.pathname} is not the federation endpoint`, 404);
    }
    if (call.action === "login") return this.#login(p, refuse);
    if (call.action !== "getSigninToken") return refuse("unknown Action");
    const fault = this.#faults[0];
    if (fault) {
      if (--fault.times <= 0) this.#faults.shift();
      if (fault.kind === "Hang") {
        call.status = 0;
        await new Promise<void>((resolve) => this.#hung.add(resolve));
      }
      return refuse("injected fault", 500);
    }
    return this.#getSigninToken(p, call, refuse);
  }

  #getSigninToken(
    p: URLSearchParams,
    call: FederationCall,
    refuse: (reason: string) => Response,
  ): Response {
    let session: Record<string, unknown>;
    try {
      session = JSON.parse(p.get("Session") ?? "");
    } catch {
      return refuse("Session is not JSON");
    }
    const field = (k: string) => typeof session?.[k] === "string" ? session[k] as string : "";
    const id = field("sessionId"), key = field("sessionKey"), token = field("sessionToken");
    if (!id || !key) return refuse("Session lacks sessionId or sessionKey");
    call.accessKeyId = id;
    const duration = p.get("SessionDuration");
    if (duration !== null) {
      call.sessionDuration = duration;
      if (!/^\d+$/.test(duration) || +duration < 900 || +duration > 43200) {
        return refuse("SessionDuration is not a number of seconds from 900 to 43200");
      }
    }
    const info = this.#sts.credentialInfo(id, key, token || undefined);
    if (!info) return refuse("credentials the STS emulator did not issue");
    if (info.expired) return refuse("expired credentials");
    if (info.kind === "long-term") return refuse("long-term keys, not temporary credentials");
    if (info.kind === "session") return refuse("GetSessionToken credentials cannot sign in");
    if (duration !== null && info.fromSession) {
      return refuse("SessionDuration with a role session assumed from temporary credentials");
    }
    const now = this.#sts.now();
    const issued: IssuedToken = {
      token: randomToken(),
      accessKeyId: id,
      arn: info.arn,
      issuedAt: now,
      consoleUntil: duration !== null ? now + +duration * 1000 : info.expiresAt!,
      used: false,
    };
    this.tokens.push(issued);
    return new Response(JSON.stringify({ SigninToken: issued.token }), {
      headers: { "content-type": "application/json" },
    });
  }

  #login(p: URLSearchParams, refuse: (reason: string) => Response): Response {
    const t = this.tokens.find((x) => x.token === p.get("SigninToken"));
    if (!t) return refuse("unknown SigninToken");
    if (t.used) return refuse("SigninToken already used");
    if (this.#sts.now() > t.issuedAt + TOKEN_LIFETIME_MS) return refuse("SigninToken expired");
    let destination: URL;
    try {
      destination = new URL(p.get("Destination") ?? "");
    } catch {
      return refuse("Destination is not a URL");
    }
    t.used = true;
    return new Response(null, { status: 302, headers: { location: destination.href } });
  }
}

function errorPage(status: number): Response {
  const title = status === 400 ? "Bad Request" : status === 404 ? "Not Found" : "Server Error";
  return new Response(
    `<html><head><title>${status} ${title}</title></head><body><h1>${title}</h1></body></html>\n`,
    { status, headers: { "content-type": "text/html" } },
  );
}

function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(96));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
}
