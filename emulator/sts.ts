/**
 * A local AWS STS emulator for tests (see /work/shared/reference/sts.md, sections 1-3 and 8).
 *
 * Library: `const emu = await StsEmulator.start(); const alice = emu.addUser({ name: "alice" });`
 * Standalone: `deno run --allow-net --allow-read --allow-write emulator/sts.ts
 *   --setup setup.json [--port-file PATH] [--port N] [--virtual-clock]` prints one JSON line
 *   `{"url","users","roles"}` and serves until SIGTERM/SIGINT, with control routes under
 *   `/__control/` (code, advance, counts, now) answered for 127.0.0.1 only.
 *
 * It verifies SigV4 over whatever SignedHeaders lists, checks TOTP codes (and refuses reuse),
 * enforces STS's duration, chaining and MFA rules, and answers in STS's XML shapes.
 * Expirations follow a virtual clock (`now`/`advance`); signature freshness (the 15-minute
 * `x-amz-date` window) and the `Date` header use real time, unless `virtualClock` is set: then
 * they use the virtual clock too, for clients whose own clock is moved by the same amount
 * (libfaketime in `deno task demo`).
 * It never logs secrets.
 */

import { randomBase32Secret, STEP_MS, totp } from "./totp.ts";

export interface UserSpec {
  name: string;
  /** Default "123456789012". */
  account?: string;
  /** Default true: the user gets a virtual MFA device. */
  mfa?: boolean;
  /** If set, GetSessionToken sessions last this many (virtual) seconds whatever was asked. */
  sessionLifetimeSeconds?: number;
  /** Fixed long-term key (default: random AKIA...). */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Fixed base32 TOTP seed (default: random). */
  mfaSecret?: string;
}
export interface User {
  name: string;
  arn: string;
  accessKeyId: string;
  secretAccessKey: string;
  mfaSerial?: string;
  mfaSecret?: string;
}
export interface RoleSpec {
  name: string;
  account?: string;
  /** Default 3600; 3600..43200. */
  maxSessionDuration?: number;
  /** The trust policy demands aws:MultiFactorAuthPresent. */
  requireMfa?: boolean;
  /** If set, role sessions last this many (virtual) seconds whatever was asked. */
  lifetimeSeconds?: number;
}
export interface Role {
  name: string;
  arn: string;
  account: string;
}
export type FaultKind = "Throttling" | "ServiceUnavailable" | "Hang" | "Slow";
/** How long a "Slow" fault holds a request before answering it normally. */
export const SLOW_MS = 1500;
/** One request. status 0 with code "Hang" = held open by fault injection. */
export interface CallRecord {
  action: string;
  status: number;
  code?: string;
  accessKeyId?: string;
}

const NS = "https://sts.amazonaws.com/doc/2011-06-15/";
const VERSION = "2011-06-15";
const ACTIONS = ["GetSessionToken", "AssumeRole", "GetCallerIdentity"];
const ROLE_ARN = /^arn:aws:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;

const MSG = {
  invalidToken: "The security token included in the request is invalid.",
  expired: "The security token included in the request is expired",
  badSignature:
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
  mfaBadCode: "MultiFactorAuthentication failed with invalid MFA one time pass code. ",
  mfaBadSerial:
    "MultiFactorAuthentication failed, unable to validate MFA code.  Please verify your MFA serial number is valid and associated with this user.",
  chaining:
    "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
  roleMax: "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
};

class StsError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

interface UserRec {
  user: User;
  account: string;
  userId: string;
  sessionLifetimeSeconds?: number;
  usedSteps: Set<number>;
}
interface RoleRec {
  role: Role;
  roleId: string;
  maxSessionDuration: number;
  requireMfa: boolean;
  lifetimeSeconds?: number;
}
/** An access key the emulator issued: long-term (user, no token) or a session (token + expiry). */
interface Key {
  secret: string;
  user?: UserRec;
  role?: RoleRec;
  sessionName?: string;
  token?: string;
  expiresAt?: number;
  mfa: boolean;
  /** A role session assumed with temporary credentials (role chaining, in AWS's words). */
  fromSession?: boolean;
}

/** What the emulator knows of credentials it issued (see `credentialInfo`). */
export interface CredentialInfo {
  /** long-term: a user's keys; session: GetSessionToken; role: AssumeRole. */
  kind: "long-term" | "session" | "role";
  arn: string;
  /** Epoch ms on the virtual clock; undefined for long-term keys. */
  expiresAt?: number;
  expired: boolean;
  /** A role session assumed with temporary credentials rather than a user's long-term keys. */
  fromSession: boolean;
}

export class StsEmulator {
  counts: Record<string, number> = {};
  calls: CallRecord[] = [];
  #server?: Deno.HttpServer<Deno.NetAddr>;
  #url = "";
  #control: boolean;
  #virtualClock: boolean;
  #offsetMs = 0;
  #users = new Map<string, UserRec>(); // by user ARN
  #devices = new Map<string, UserRec>(); // by MFA serial
  #roles = new Map<string, RoleRec>(); // by role ARN
  #keys = new Map<string, Key>(); // by access key id
  #faults: { action: string; kind: FaultKind; times: number }[] = [];
  #hung = new Set<() => void>();
  #closing?: Promise<void>;

  private constructor(control: boolean, virtualClock: boolean) {
    this.#control = control;
    this.#virtualClock = virtualClock;
  }

  /**
   * Listens on 127.0.0.1, random port. `control` enables the /__control/ routes.
   * `virtualClock` checks signature freshness and sends the `Date` header on the virtual
   * clock instead of real time (for clients whose clock is faked to match it).
   */
  static start(
    opts: { port?: number; hostname?: string; control?: boolean; virtualClock?: boolean } = {},
  ): Promise<StsEmulator> {
    const emu = new StsEmulator(opts.control ?? false, opts.virtualClock ?? false);
    const hostname = opts.hostname ?? "127.0.0.1";
    emu.#server = Deno.serve(
      { hostname, port: opts.port ?? 0, onListen: () => {} },
      (req, info) => emu.#handle(req, info),
    );
    const host = hostname === "0.0.0.0" ? "127.0.0.1" : hostname;
    emu.#url = `http://${host}:${emu.#server.addr.port}`;
    return Promise.resolve(emu);
  }

  get url(): string {
    return this.#url;
  }

  addUser(spec: UserSpec): User {
    const account = spec.account ?? "123456789012";
    const arn = `arn:aws:iam::${account}:user/${spec.name}`;
    const accessKeyId = spec.accessKeyId ?? randomId("AKIA", 16);
    if (this.#users.has(arn)) throw new Error(`user ${arn} already exists`);
    if (this.#keys.has(accessKeyId)) throw new Error(`access key ${accessKeyId} already exists`);
    const user: User = {
      name: spec.name,
      arn,
      accessKeyId,
      secretAccessKey: spec.secretAccessKey ?? randomSecret(),
    };
    if (spec.mfa ?? true) {
      user.mfaSerial = `arn:aws:iam::${account}:mfa/${spec.name}`;
      user.mfaSecret = spec.mfaSecret ?? randomBase32Secret();
    }
    const rec: UserRec = {
      user,
      account,
      userId: randomId("AIDA", 17),
      sessionLifetimeSeconds: spec.sessionLifetimeSeconds,
      usedSteps: new Set(),
    };
    this.#users.set(arn, rec);
    if (user.mfaSerial) this.#devices.set(user.mfaSerial, rec);
    this.#keys.set(accessKeyId, { secret: user.secretAccessKey, user: rec, mfa: false });
    return { ...user };
  }

  addRole(spec: RoleSpec): Role {
    const account = spec.account ?? "123456789012";
    const role: Role = {
      name: spec.name,
      arn: `arn:aws:iam::${account}:role/${spec.name}`,
      account,
    };
    const max = spec.maxSessionDuration ?? 3600;
    if (!(max >= 3600 && max <= 43200)) {
      throw new Error(`maxSessionDuration ${max} not in 3600..43200`);
    }
    if (this.#roles.has(role.arn)) throw new Error(`role ${role.arn} already exists`);
    this.#roles.set(role.arn, {
      role,
      roleId: randomId("AROA", 17),
      maxSessionDuration: max,
      requireMfa: spec.requireMfa ?? false,
      lifetimeSeconds: spec.lifetimeSeconds,
    });
    return { ...role };
  }

  /** The device's TOTP code at the virtual time, `offsetSteps` 30-s steps away. */
  code(serialOrUser: string | User, offsetSteps = 0): Promise<string> {
    const serial = typeof serialOrUser === "string" ? serialOrUser : serialOrUser.mfaSerial;
    const secret = serial ? this.#devices.get(serial)?.user.mfaSecret : undefined;
    if (!secret) return Promise.reject(new Error(`no MFA device ${serial}`));
    return totp(secret, this.now() + offsetSteps * STEP_MS);
  }

  /** Virtual clock, epoch ms (starts at real time, moves with it, plus `advance`). */
  now(): number {
    return Date.now() + this.#offsetMs;
  }

  advance(seconds: number): void {
    this.#offsetMs += seconds * 1000;
  }

  /** The clock that signatures and the `Date` header are checked against. */
  #wallClock(): number {
    return this.#virtualClock ? this.now() : Date.now();
  }

  /**
   * The next `times` calls of `action` fail with `kind` (Hang: held open until close/abort),
   * or (Slow) are answered normally after SLOW_MS.
   */
  failNext(action: string, kind: FaultKind, times = 1): void {
    this.#faults.push({ action, kind, times });
  }

  /**
   * What the emulator knows of the credentials, when it issued them and all three parts match
   * (access key id, secret, session token); undefined otherwise. For peers that accept STS
   * credentials, such as the console federation stand-in (emulator/federation.ts).
   */
  credentialInfo(
    accessKeyId: string,
    secretAccessKey: string,
    sessionToken?: string,
  ): CredentialInfo | undefined {
    const key = this.#keys.get(accessKeyId);
    if (!key || !sameText(key.secret, secretAccessKey)) return undefined;
    if ((key.token ?? "") !== (sessionToken ?? "")) return undefined;
    return {
      kind: key.role ? "role" : key.token !== undefined ? "session" : "long-term",
      arn: this.#arnOf(key),
      expiresAt: key.expiresAt,
      expired: key.expiresAt !== undefined && this.now() >= key.expiresAt,
      fromSession: key.fromSession ?? false,
    };
  }

  /** Clears `counts` and `calls`. */
  resetCounts(): void {
    this.counts = {};
    this.calls = [];
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

  // ---- request handling ----

  async #handle(req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>): Promise<Response> {
    const url = new URL(req.url);
    if (url.pathname.startsWith("/__control/")) return this.#controlRoute(req, url, info);
    const requestId = crypto.randomUUID();
    const record: CallRecord = { action: "", status: 200 };
    this.calls.push(record);
    try {
      const body = new Uint8Array(await req.arrayBuffer());
      const params = req.method === "POST"
        ? new URLSearchParams(new TextDecoder().decode(body))
        : url.searchParams;
      const action = record.action = params.get("Action") ?? "";
      const akid = /Credential=([^/,\s]+)\//.exec(req.headers.get("authorization") ?? "")?.[1];
      if (akid) record.accessKeyId = akid;
      const version = params.get("Version");
      if (!ACTIONS.includes(action) || version !== VERSION) {
        throw new StsError(
          400,
          "InvalidAction",
          `Could not find operation ${action} for version ${version ?? "NO_VERSION_SPECIFIED"}`,
        );
      }
      await this.#injectFault(action, record);
      const caller = await this.#authenticate(req, url, body);
      const result = action === "GetCallerIdentity"
        ? this.#identity(caller)
        : action === "GetSessionToken"
        ? await this.#getSessionToken(params, caller)
        : await this.#assumeRole(params, caller);
      this.counts[action] = (this.counts[action] ?? 0) + 1;
      const wrapped = { [`${action}Result`]: result, ResponseMetadata: { RequestId: requestId } };
      return xmlResponse(
        200,
        toXml(`${action}Response`, wrapped, NS),
        requestId,
        this.#wallClock(),
      );
    } catch (e) {
      const err = e instanceof StsError
        ? e
        : new StsError(500, "InternalFailure", "The request processing has failed.");
      if (!(e instanceof StsError)) console.error("sts emulator: internal error:", e);
      if (record.code !== "Hang") {
        record.status = err.status;
        record.code = err.code;
      }
      const error = {
        Type: err.status >= 500 ? "Receiver" : "Sender",
        Code: err.code,
        Message: err.message,
      };
      return xmlResponse(
        err.status,
        toXml("ErrorResponse", { Error: error, RequestId: requestId }, NS),
        requestId,
        this.#wallClock(),
      );
    }
  }

  async #injectFault(action: string, record: CallRecord): Promise<void> {
    const fault = this.#faults.find((f) => f.action === action);
    if (!fault) return;
    if (--fault.times <= 0) this.#faults.splice(this.#faults.indexOf(fault), 1);
    if (fault.kind === "Throttling") throw new StsError(400, "Throttling", "Rate exceeded");
    if (fault.kind === "Slow") return await new Promise((r) => setTimeout(r, SLOW_MS));
    if (fault.kind === "Hang") {
      record.status = 0;
      record.code = "Hang";
      // Held until close(), even if the client gives up (it then never reads the 503).
      await new Promise<void>((resolve) => this.#hung.add(resolve));
    }
    throw new StsError(503, "ServiceUnavailable", "Service is unavailable. Please try again.");
  }

  async #authenticate(req: Request, url: URL, body: Uint8Array<ArrayBuffer>): Promise<Key> {
    const auth = req.headers.get("authorization");
    if (!auth) {
      throw new StsError(
        403,
        "MissingAuthenticationToken",
        "Request is missing Authentication Token",
      );
    }
    const m =
      /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request,\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/
        .exec(auth.trim());
    if (!m) {
      throw new StsError(
        400,
        "IncompleteSignature",
        "The request signature does not conform to AWS standards.",
      );
    }
    const [, akid, scopeDate, region, service, signedHeaders, signature] = m;
    const key = this.#keys.get(akid);
    if (!key || (key.token ?? null) !== req.headers.get("x-amz-security-token")) {
      throw new StsError(403, "InvalidClientTokenId", MSG.invalidToken);
    }
    if (key.expiresAt !== undefined && this.now() >= key.expiresAt) {
      throw new StsError(403, "ExpiredToken", MSG.expired);
    }
    const sigErr = (msg: string) => new StsError(403, "SignatureDoesNotMatch", msg);
    if (service !== "sts") throw sigErr("Credential should be scoped to correct service: 'sts'. ");
    const amzDate = req.headers.get("x-amz-date") ?? "";
    const signedAt = Date.parse(
      amzDate.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, "$1-$2-$3T$4:$5:$6Z"),
    );
    if (!/^\d{8}T\d{6}Z$/.test(amzDate) || Number.isNaN(signedAt)) {
      throw new StsError(
        400,
        "IncompleteSignature",
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
      );
    }
    const clock = this.#wallClock();
    if (signedAt < clock - 15 * 60_000) {
      throw sigErr(
        `Signature expired: ${amzDate} is now earlier than ${amzStamp(clock - 15 * 60_000)} (${
          amzStamp(clock)
        } - 15 min.)`,
      );
    }
    if (signedAt > clock + 15 * 60_000) {
      throw sigErr(
        `Signature not yet current: ${amzDate} is still later than ${
          amzStamp(clock + 15 * 60_000)
        } (${amzStamp(clock)} + 15 min.)`,
      );
    }
    if (!amzDate.startsWith(scopeDate)) {
      throw sigErr(
        `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${scopeDate}' != '${
          amzDate.slice(0, 8)
        }', from '${amzDate}'.`,
      );
    }
    const bodyHash = hex(new Uint8Array(await crypto.subtle.digest("SHA-256", body)));
    const declared = req.headers.get("x-amz-content-sha256");
    if (declared !== null && declared !== bodyHash) {
      throw sigErr("The provided 'x-amz-content-sha256' header does not match what was computed.");
    }
    const expected = await sigV4Signature({
      method: req.method,
      path: url.pathname,
      search: url.search,
      headers: req.headers,
      signedHeaders,
      bodyHash,
      amzDate,
      scope: `${scopeDate}/${region}/${service}/aws4_request`,
      secret: key.secret,
    });
    if (!sameText(expected, signature)) throw sigErr(MSG.badSignature);
    return key;
  }

  #identity(caller: Key): Fields {
    if (caller.role) {
      const { role, roleId } = caller.role;
      return {
        UserId: `${roleId}:${caller.sessionName}`,
        Account: role.account,
        Arn: this.#arnOf(caller),
      };
    }
    return {
      UserId: caller.user!.userId,
      Account: caller.user!.account,
      Arn: caller.user!.user.arn,
    };
  }

  #arnOf(caller: Key): string {
    if (!caller.role) return caller.user!.user.arn;
    return `arn:aws:sts::${caller.role.role.account}:assumed-role/${caller.role.role.name}/${caller.sessionName}`;
  }

  async #getSessionToken(p: URLSearchParams, caller: Key): Promise<Fields> {
    validate([
      { member: "durationSeconds", value: p.get("DurationSeconds"), range: [900, 129600] },
      ...mfaRules(p),
    ]);
    if (caller.token !== undefined) {
      throw new StsError(
        403,
        "AccessDenied",
        "Cannot call GetSessionToken with session credentials",
      );
    }
    const duration = Number(p.get("DurationSeconds") ?? 43200);
    const mfa = await this.#checkMfa(p, caller);
    const user = caller.user!;
    return { Credentials: this.#issue({ user, mfa }, user.sessionLifetimeSeconds ?? duration) };
  }

  async #assumeRole(p: URLSearchParams, caller: Key): Promise<Fields> {
    const roleArn = p.get("RoleArn");
    const sessionName = p.get("RoleSessionName");
    validate([
      { member: "roleArn", value: roleArn, required: true, length: [20, 2048] },
      {
        member: "roleSessionName",
        value: sessionName,
        required: true,
        length: [2, 64],
        pattern: String.raw`[\w+=,.@-]*`,
      },
      { member: "durationSeconds", value: p.get("DurationSeconds"), range: [900, 43200] },
      {
        member: "externalId",
        value: p.get("ExternalId"),
        length: [2, 1224],
        pattern: String.raw`[\w+=,.@:\/-]*`,
      },
      {
        member: "sourceIdentity",
        value: p.get("SourceIdentity"),
        length: [2, 64],
        pattern: String.raw`[\w+=,.@-]*`,
      },
      ...mfaRules(p),
    ]);
    if (!ROLE_ARN.test(roleArn!)) {
      throw new StsError(400, "ValidationError", `${roleArn} is invalid`);
    }
    const notAuthorized = new StsError(
      403,
      "AccessDenied",
      `User: ${
        this.#arnOf(caller)
      } is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`,
    );
    const role = this.#roles.get(roleArn!);
    if (!role) throw notAuthorized;
    const triesMfa = p.has("SerialNumber") || p.has("TokenCode");
    if (role.requireMfa && !caller.mfa && !triesMfa) throw notAuthorized;
    const duration = Number(p.get("DurationSeconds") ?? 3600);
    if (caller.token !== undefined && duration > 3600) {
      throw new StsError(400, "ValidationError", MSG.chaining);
    }
    if (duration > role.maxSessionDuration) throw new StsError(400, "ValidationError", MSG.roleMax);
    // Last check before issuing, so a code is marked used only by a call that succeeds.
    // (A code given here either passes or throws, so requireMfa is settled above.)
    await this.#checkMfa(p, caller);
    const creds = this.#issue(
      { role, sessionName: sessionName!, mfa: false, fromSession: caller.token !== undefined },
      role.lifetimeSeconds ?? duration,
    );
    const result: Fields = {
      Credentials: creds,
      AssumedRoleUser: {
        Arn: `arn:aws:sts::${role.role.account}:assumed-role/${role.role.name}/${sessionName}`,
        AssumedRoleId: `${role.roleId}:${sessionName}`,
      },
    };
    if (p.get("SourceIdentity")) result.SourceIdentity = p.get("SourceIdentity")!;
    return result;
  }

  /** True when SerialNumber+TokenCode are the caller's device and a fresh, unused code. */
  async #checkMfa(p: URLSearchParams, caller: Key): Promise<boolean> {
    const serial = p.get("SerialNumber");
    const code = p.get("TokenCode");
    if (serial === null && code === null) return false;
    const user = caller.role ? undefined : caller.user;
    if (serial === null || !user?.user.mfaSecret || serial !== user.user.mfaSerial) {
      throw new StsError(403, "AccessDenied", MSG.mfaBadSerial);
    }
    const step = Math.floor(this.now() / STEP_MS);
    const steps = [step - 1, step, step + 1];
    const codes = await Promise.all(steps.map((s) => totp(user.user.mfaSecret!, s * STEP_MS)));
    // No await between the check and the mark: concurrent calls with one code cannot both pass.
    const i = codes.indexOf(code ?? "");
    if (i < 0 || user.usedSteps.has(steps[i])) {
      throw new StsError(403, "AccessDenied", MSG.mfaBadCode);
    }
    user.usedSteps.add(steps[i]);
    return true;
  }

  #issue(base: Omit<Key, "secret" | "token" | "expiresAt">, lifetimeSeconds: number): Fields {
    const accessKeyId = randomId("ASIA", 16);
    const secret = randomSecret();
    const token = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(120))));
    const expiresAt = Math.floor(this.now() / 1000) * 1000 + lifetimeSeconds * 1000;
    this.#keys.set(accessKeyId, { ...base, secret, token, expiresAt });
    return {
      AccessKeyId: accessKeyId,
      SecretAccessKey: secret,
      SessionToken: token,
      Expiration: new Date(expiresAt).toISOString().replace(/\.\d{3}Z$/, "Z"),
    };
  }

  async #controlRoute(
    req: Request,
    url: URL,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  ): Promise<Response> {
    const from = info.remoteAddr.hostname;
    const text = (body: string, status = 200) =>
      new Response(body, { status, headers: { "content-type": "text/plain" } });
    if (!this.#control || (from !== "127.0.0.1" && from !== "::1")) return text("not found\n", 404);
    const route = `${req.method} ${url.pathname}`;
    if (route === "GET /__control/now") return text(String(this.now()));
    if (route === "GET /__control/counts") {
      return new Response(JSON.stringify(this.counts), {
        headers: { "content-type": "application/json" },
      });
    }
    if (route === "POST /__control/advance") {
      const seconds = Number(url.searchParams.get("seconds"));
      if (!Number.isFinite(seconds) || seconds < 0) return text("bad seconds\n", 400);
      this.advance(seconds);
      return text(String(this.now()));
    }
    if (route === "GET /__control/code") {
      const serial = url.searchParams.get("serial") ?? "";
      if (!this.#devices.has(serial)) return text("no such MFA device\n", 404);
      return text(await this.code(serial));
    }
    return text("not found\n", 404);
  }
}

// ---- SigV4 ----

/** The hex SigV4 signature (sts.md 1.2) the client should have sent. */
export async function sigV4Signature(r: {
  method: string;
  path: string;
  search: string;
  headers: Headers;
  signedHeaders: string;
  bodyHash: string;
  amzDate: string;
  scope: string;
  secret: string;
}): Promise<string> {
  const canonicalHeaders = r.signedHeaders.split(";")
    .map((name) => `${name}:${(r.headers.get(name) ?? "").trim().replace(/\s+/g, " ")}\n`)
    .join("");
  const canonicalRequest = [
    r.method,
    uriEncode(r.path).replace(/%2F/g, "/"),
    canonicalQuery(r.search),
    canonicalHeaders,
    r.signedHeaders,
    r.bodyHash,
  ].join("\n");
  const stringToSign = [
    "AWS4-HMAC-SHA256",
    r.amzDate,
    r.scope,
    hex(new Uint8Array(await crypto.subtle.digest("SHA-256", utf8(canonicalRequest)))),
  ].join("\n");
  let key = utf8(`AWS4${r.secret}`);
  for (const part of r.scope.split("/")) key = await hmac(key, part);
  return hex(await hmac(key, stringToSign));
}

function canonicalQuery(search: string): string {
  const decode = (s: string) => decodeURIComponent(s.replace(/\+/g, "%20"));
  return search.replace(/^\?/, "").split("&").filter(Boolean)
    .map((pair) => {
      const i = pair.indexOf("=");
      const [k, v] = i < 0 ? [pair, ""] : [pair.slice(0, i), pair.slice(i + 1)];
      return `${uriEncode(decode(k))}=${uriEncode(decode(v))}`;
    })
    .sort()
    .join("&");
}

function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

async function hmac(key: Uint8Array<ArrayBuffer>, data: string): Promise<Uint8Array<ArrayBuffer>> {
  const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, utf8(data)));
}

const utf8 = (s: string) => new TextEncoder().encode(s);
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

function sameText(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.min(a.length, b.length); i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

function amzStamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

// ---- validation (AWS "N validation errors detected: ..." format) ----

interface Rule {
  member: string;
  value: string | null;
  required?: boolean;
  length?: [number, number];
  pattern?: string;
  range?: [number, number];
}

function mfaRules(p: URLSearchParams): Rule[] {
  return [
    {
      member: "serialNumber",
      value: p.get("SerialNumber"),
      length: [9, 256],
      pattern: String.raw`[\w+=/:,.@-]*`,
    },
    { member: "tokenCode", value: p.get("TokenCode"), length: [6, 6], pattern: String.raw`[\d]*` },
  ];
}

function validate(rules: Rule[]): void {
  const errors: string[] = [];
  for (const { member, value, required, length, pattern, range } of rules) {
    if (value === null) {
      if (required) {
        errors.push(
          `Value null at '${member}' failed to satisfy constraint: Member must not be null`,
        );
      }
      continue;
    }
    const fail = (what: string) =>
      errors.push(
        `Value '${value}' at '${member}' failed to satisfy constraint: Member must ${what}`,
      );
    if (range) {
      const n = Number(value);
      if (!/^-?\d+$/.test(value)) fail("be a valid integer");
      else if (n < range[0]) fail(`have value greater than or equal to ${range[0]}`);
      else if (n > range[1]) fail(`have value less than or equal to ${range[1]}`);
      continue;
    }
    if (length && value.length < length[0]) {
      fail(`have length greater than or equal to ${length[0]}`);
    } else if (length && value.length > length[1]) {
      fail(`have length less than or equal to ${length[1]}`);
    }
    if (pattern && !new RegExp(`^(?:${pattern})$`).test(value)) {
      fail(`satisfy regular expression pattern: ${pattern}`);
    }
  }
  if (errors.length) {
    const n = errors.length;
    throw new StsError(
      400,
      "ValidationError",
      `${n} validation error${n > 1 ? "s" : ""} detected: ${errors.join("; ")}`,
    );
  }
}

// ---- XML ----

interface Fields {
  [name: string]: string | Fields;
}

function toXml(name: string, value: string | Fields, xmlns?: string): string {
  const attr = xmlns ? ` xmlns="${xmlns}"` : "";
  const inner = typeof value === "string"
    ? value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
    : "\n" + Object.entries(value).map(([k, v]) => toXml(k, v)).join("");
  return `<${name}${attr}>${inner}</${name}>\n`;
}

function xmlResponse(status: number, xml: string, requestId: string, now: number): Response {
  return new Response(xml, {
    status,
    headers: {
      "content-type": "text/xml",
      "x-amzn-requestid": requestId,
      "date": new Date(now).toUTCString(),
    },
  });
}

// ---- ids and secrets ----

function randomId(prefix: string, n: number): string {
  const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  return prefix +
    Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => chars[b & 31]).join("");
}

function randomSecret(): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(30))));
}

// ---- standalone ----

async function standalone(args: string[]): Promise<void> {
  const opt = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const setupPath = opt("--setup");
  if (!setupPath) {
    console.error(
      "usage: emulator/sts.ts --setup FILE.json [--port-file PATH] [--port N] [--virtual-clock]",
    );
    Deno.exit(2);
  }
  const setup = JSON.parse(await Deno.readTextFile(setupPath)) as {
    users?: UserSpec[];
    roles?: RoleSpec[];
  };
  const emu = await StsEmulator.start({
    port: Number(opt("--port") ?? 0),
    control: true,
    virtualClock: args.includes("--virtual-clock"),
  });
  const users = (setup.users ?? []).map((u) => emu.addUser(u));
  const roles = (setup.roles ?? []).map((r) => emu.addRole(r));
  const line = JSON.stringify({ url: emu.url, users, roles });
  const portFile = opt("--port-file");
  if (portFile) {
    await Deno.writeTextFile(`${portFile}.tmp`, line + "\n");
    await Deno.rename(`${portFile}.tmp`, portFile);
  }
  console.log(line);
  const stop = () => emu.close().then(() => Deno.exit(0));
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
}

if (import.meta.main) await standalone(Deno.args);
