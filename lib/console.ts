/**
 * `stsh console`: the AWS console as a role profile, in one command. The role session comes
 * from the engine (same cache, same single MFA prompt as `stsh env`); the AWS sign-in
 * federation endpoint exchanges it for a sign-in token (`Action=getSigninToken`), and the
 * `Action=login` URL built from that token opens the console (IAM User Guide, "Enable custom
 * identity broker access to the AWS console").
 *
 * The secret key and session token go only to the federation endpoint, over HTTPS (plain HTTP
 * only to a loopback address, for tests); the URL carries the sign-in token, which opens a
 * console session once within 15 minutes, and is never logged.
 */
import { type Config, loadConfig, type Plan, plan } from "./config.ts";
import { type Credentials, resolve } from "./engine.ts";
import { Cancelled, EXIT, StshError } from "./errors.ts";
import { shQuote } from "./formats.ts";
import { isWindows } from "./paths.ts";
import { helperTimeoutMs, runHelper } from "./proc.ts";
import { oneLine } from "./text.ts";

interface Partition {
  signin: string;
  console: string;
  /** Regions that belong to the partition (for the default Destination). */
  regions: RegExp;
}

/** The partitions with a public console (role ARN `arn:PARTITION:iam::…`). */
export const PARTITIONS: Record<string, Partition> = {
  "aws": {
    signin: "signin.aws.amazon.com",
    console: "console.aws.amazon.com",
    regions: /^(?!cn-|us-gov-)[a-z]{2}(-[a-z]+)+-\d+$/,
  },
  "aws-cn": {
    signin: "signin.amazonaws.cn",
    console: "console.amazonaws.cn",
    regions: /^cn-[a-z]+-\d+$/,
  },
  "aws-us-gov": {
    signin: "signin.amazonaws-us-gov.com",
    console: "console.amazonaws-us-gov.com",
    regions: /^us-gov-[a-z]+-\d+$/,
  },
};

/** A console session: 15 minutes to 12 hours (SessionDuration). */
export const MIN_DURATION = 900;
export const MAX_DURATION = 43200;

/** `3600`, `3600s`, `90m`, `1h30m`, `12h` -> seconds, 900..43200. */
export function parseDuration(text: string): number {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$/.exec(text.trim());
  const seconds = m && text.trim() !== ""
    ? Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0)
    : NaN;
  if (!(seconds >= MIN_DURATION && seconds <= MAX_DURATION)) {
    throw new StshError(
      `--duration '${oneLine(text)}' is not a console session length from 15m to 12h.`,
      "Write it as seconds (3600) or with units: 90m, 1h30m, 12h.",
      EXIT.refused,
    );
  }
  return seconds;
}

/** The partition of a role ARN: `arn:aws-cn:iam::…` -> `aws-cn`. */
export function partitionOf(roleArn: string): string {
  return roleArn.split(":")[1] ?? "aws";
}

function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h);
}

/** The federation endpoint: STSH_FEDERATION_URL, else the partition's. */
export function federationEndpoint(partition: string, env: Record<string, string>): URL {
  const override = env.STSH_FEDERATION_URL;
  if (!override) {
    const p = PARTITIONS[partition];
    if (!p) {
      throw new StshError(
        `stsh knows the console of the partitions aws, aws-cn and aws-us-gov, not '${
          oneLine(partition)
        }'.`,
        "For another partition, set STSH_FEDERATION_URL to its federation endpoint and pass --destination.",
        EXIT.refused,
      );
    }
    return new URL(`https://${p.signin}/federation`);
  }
  let url: URL;
  try {
    url = new URL(override);
  } catch {
    throw new StshError(
      `STSH_FEDERATION_URL is not a URL: '${oneLine(override)}'.`,
      "Set it to the federation endpoint, e.g. https://signin.aws.amazon.com/federation.",
      EXIT.refused,
    );
  }
  const plainLoopback = url.protocol === "http:" && isLoopback(url.hostname);
  if (url.protocol !== "https:" && !plainLoopback) {
    throw new StshError(
      `STSH_FEDERATION_URL must be an https:// URL (plain http only to a loopback address): the role's secret key is sent to it.`,
      undefined,
      EXIT.refused,
    );
  }
  if (url.username || url.password) {
    throw new StshError("STSH_FEDERATION_URL must not carry a user name or password.");
  }
  url.search = "";
  url.hash = "";
  return url;
}

/** Where the console opens: --destination (a URL, or a path on the console), else home. */
export function destinationFor(
  partition: string,
  region: string,
  given: string | undefined,
): string {
  const p = PARTITIONS[partition];
  if (given !== undefined && !given.startsWith("/")) {
    let url: URL | undefined;
    try {
      url = new URL(given);
    } catch { /* said below */ }
    if (!url || url.protocol !== "https:") {
      throw new StshError(
        `--destination must be an https:// URL or a path on the console (/s3/home): '${
          oneLine(given)
        }'.`,
        undefined,
        EXIT.refused,
      );
    }
    return url.href;
  }
  if (!p) {
    throw new StshError(
      `stsh knows no console for the partition '${oneLine(partition)}'.`,
      "Pass --destination with a full https:// URL.",
      EXIT.refused,
    );
  }
  if (given !== undefined) return new URL(given, `https://${p.console}`).href;
  const home = `https://${p.console}/console/home`;
  return p.regions.test(region) ? `${home}?region=${encodeURIComponent(region)}` : home;
}

/**
 * Is the target role assumed with temporary credentials (an MFA session, another role, SSO,
 * a session token)? AWS documents that the federation endpoint accepts SessionDuration only
 * for a role assumed with an IAM user's long-term credentials; for any other role session it
 * answers 400, and without SessionDuration the console session lasts as long as the role
 * session. This mirrors how engine.ts run() assumes the first role.
 */
export function assumedFromTemporary(pl: Plan, env: Record<string, string>): boolean {
  if (pl.roles.length !== 1) return true;
  const b = pl.base;
  if (b.kind === "sdk" || b.kind === "process") return true;
  if (b.kind === "environment") return !!env.AWS_SESSION_TOKEN;
  if (b.keys.sessionToken) return true;
  // With an MFA device, the engine assumes the role from the MFA session unless the profile
  // asks for more than AWS allows from a session (1 h): then straight from the keys.
  if (!pl.mfaSerial) return false;
  return (pl.roles[0].durationSeconds ?? 3600) <= 3600;
}

function refuseNonRole(pl: Plan, config: Config): never {
  const name = pl.target.name;
  const keys = pl.base.kind === "keys";
  throw new StshError(
    keys
      ? `Profile '${name}' is not a role: the AWS console takes only a role session, and an IAM user's keys, or a GetSessionToken session made from them (with or without MFA), cannot be federated into it.`
      : `Profile '${name}' has no role_arn: stsh console signs in only with a role profile's session.`,
    `Add a role profile to ${config.configPath} (role_arn = arn:aws:iam::ACCOUNT:role/NAME, source_profile = ${name}) and run \`stsh console\` with it${
      keys ? ", or sign in to the console with the IAM user's password" : ""
    }.`,
    EXIT.refused,
  );
}

function refuseDuration(pl: Plan): never {
  const name = pl.target.name;
  const fromMfaSession = pl.roles.length === 1 && pl.base.kind === "keys" &&
    !pl.base.keys.sessionToken && !!pl.mfaSerial;
  throw new StshError(
    `--duration cannot be used with '${name}': its role session is assumed from temporary credentials (${
      fromMfaSession ? "the MFA session" : pl.roles.length > 1 ? "another role" : "a session"
    }), and AWS refuses a console session length for such a session; without --duration the console session ends with the role session.`,
    fromMfaSession
      ? `Leave out --duration, or set duration_seconds above 3600 (up to the role's maximum) in profile '${name}': stsh then assumes the role straight from your keys, with an MFA code per role session.`
      : "Leave out --duration.",
    EXIT.refused,
  );
}

/** Seconds to wait for the federation endpoint: STSH_FEDERATION_TIMEOUT, default 10. */
export function federationTimeoutMs(env: Record<string, string>): number {
  const s = Number(env.STSH_FEDERATION_TIMEOUT);
  return Number.isFinite(s) && s > 0 ? s * 1000 : 10_000;
}

const MAX_ANSWER = 64 * 1024;

/** Read at most MAX_ANSWER bytes of the body (the deadline's signal still applies). */
async function readBounded(res: Response): Promise<string | undefined> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > MAX_ANSWER) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return new TextDecoder().decode(all);
}

/**
 * Exchange the role session for a sign-in token. Errors never quote the request, its URL or
 * the runtime's message about it: all of them carry the secret key.
 */
export async function getSigninToken(
  endpoint: URL,
  creds: Credentials,
  opts: { durationSeconds?: number; timeoutMs: number; profile: string },
): Promise<string> {
  const where = `the AWS federation endpoint (${oneLine(endpoint.host)})`;
  const url = new URL(endpoint.href);
  url.searchParams.set("Action", "getSigninToken");
  if (opts.durationSeconds) url.searchParams.set("SessionDuration", String(opts.durationSeconds));
  url.searchParams.set(
    "Session",
    JSON.stringify({
      sessionId: creds.accessKeyId,
      sessionKey: creds.secretAccessKey,
      sessionToken: creds.sessionToken,
    }),
  );
  const signal = AbortSignal.timeout(opts.timeoutMs);
  let status: number, body: string | undefined;
  try {
    const res = await fetch(url, {
      signal,
      redirect: "manual",
      headers: { accept: "application/json" },
    });
    status = res.status;
    body = await readBounded(res);
  } catch (e) {
    const err = e as Error;
    if (signal.aborted || err.name === "TimeoutError" || err.name === "AbortError") {
      throw new StshError(
        `${where} did not answer within ${opts.timeoutMs / 1000} s.`,
        "Check your network and try again (STSH_FEDERATION_TIMEOUT sets the limit in seconds).",
      );
    }
    // Deno says why in the cause, after the full request URL: classify it, never show it.
    const msg = `${err.message ?? ""} ${(err.cause as Error | undefined)?.message ?? ""}`
      .replace(/\(\S*:\/\/\S*\)/g, "");
    const why = /dns error|failed to lookup|not known/i.test(msg)
      ? ": the name does not resolve"
      : /refused/i.test(msg)
      ? ": connection refused"
      : /certificate|tls|ssl/i.test(msg)
      ? ": the TLS connection failed"
      : /timed out/i.test(msg)
      ? ": the connection timed out"
      : "";
    throw new StshError(
      `Cannot reach ${where}${why}.`,
      "Check your network or proxy (and STSH_FEDERATION_URL, if set).",
    );
  }
  if (status === 200) {
    let token: unknown;
    try {
      token = JSON.parse(body ?? "")?.SigninToken;
    } catch { /* said below */ }
    if (typeof token === "string" && /^[\x21-\x7e]{1,16384}$/.test(token)) return token;
    throw new StshError(`${where} answered without a sign-in token.`);
  }
  if (status >= 300 && status < 400) {
    throw new StshError(
      `${where} answered with a redirect (HTTP ${status}); stsh does not follow it with credentials.`,
      "Check STSH_FEDERATION_URL, if set.",
    );
  }
  if (status === 400) {
    throw new StshError(
      `${where} refused the role session of '${opts.profile}' (HTTP 400).`,
      opts.durationSeconds
        ? "AWS accepts --duration only for a role assumed straight from an IAM user's keys; try without it."
        : `The role session may have been revoked or have expired: run \`stsh clear ${opts.profile}\` and try again.`,
    );
  }
  throw new StshError(
    `${where} failed (HTTP ${status}).`,
    status >= 500 ? "Try again in a moment." : undefined,
  );
}

export interface ConsoleOptions {
  destination?: string;
  durationSeconds?: number;
  tokenCode?: string;
  env?: Record<string, string>;
  log?: (m: string) => void;
}

export interface ConsoleLink {
  url: string;
  /** When the console session ends: SessionDuration from now, else the role session's end. */
  until?: Date;
}

/** A console sign-in URL for a role profile. Everything refusable is refused before MFA. */
export async function consoleLink(profile: string, opts: ConsoleOptions): Promise<ConsoleLink> {
  const env = opts.env ?? Deno.env.toObject();
  const log = opts.log ?? (() => {});
  const config = await loadConfig(env);
  const pl = plan(config, profile, env);
  if (!pl.target.roleArn) refuseNonRole(pl, config);
  const partition = partitionOf(pl.target.roleArn);
  const endpoint = federationEndpoint(partition, env);
  const destination = destinationFor(partition, pl.region, opts.destination);
  if (opts.durationSeconds && assumedFromTemporary(pl, env)) refuseDuration(pl);
  const creds = await resolve(profile, {
    env,
    config,
    tokenCode: opts.tokenCode,
    interactive: true,
    log,
  });
  if (!creds.sessionToken) {
    throw new StshError(`The credentials of '${profile}' are not a role session.`);
  }
  log(
    `getSigninToken at ${endpoint.host}${
      opts.durationSeconds ? ` with SessionDuration ${opts.durationSeconds}` : ""
    }`,
  );
  const start = Date.now();
  const token = await getSigninToken(endpoint, creds, {
    durationSeconds: opts.durationSeconds,
    timeoutMs: federationTimeoutMs(env),
    profile,
  });
  const login = new URL(endpoint.href);
  login.searchParams.set("Action", "login");
  login.searchParams.set("Issuer", "stsh");
  login.searchParams.set("Destination", destination);
  login.searchParams.set("SigninToken", token);
  return {
    url: login.href,
    until: opts.durationSeconds ? new Date(start + opts.durationSeconds * 1000) : creds.expiration,
  };
}

/** An executable named `name` on PATH, or undefined. */
async function onPath(name: string, env: Record<string, string>): Promise<string | undefined> {
  for (const dir of (env.PATH ?? "").split(isWindows ? ";" : ":")) {
    if (!dir) continue;
    const file = `${dir}/${name}`;
    try {
      const st = await Deno.stat(file);
      if (st.isFile && (st.mode === null || (st.mode & 0o111) !== 0)) return file;
    } catch { /* not here */ }
  }
  return undefined;
}

/**
 * Open `url` in the default browser: `xdg-open` (Linux and other Unix), `open` (macOS),
 * `start` (Windows), through runHelper with a short deadline. On Linux the opener runs in a
 * session of its own (`setsid -w`), so a browser it starts is not killed with the helper's
 * process group. Its output is discarded: an opener's error message quotes the URL.
 */
export async function openInBrowser(
  url: string,
  opts: { profile: string; env?: Record<string, string> },
): Promise<void> {
  const env = opts.env ?? Deno.env.toObject();
  const os = Deno.build.os;
  const opener = os === "darwin" ? "open" : os === "windows" ? "start" : "xdg-open";
  const hint = `Run \`stsh console ${opts.profile} --print\` and open the URL yourself.`;
  let command: string;
  if (os === "windows") {
    command = `start "" "${url}"`;
  } else {
    if (!(await onPath(opener, env))) {
      throw new StshError(`Cannot open a browser: there is no ${opener} on PATH.`, hint);
    }
    const detach = os !== "darwin" && (await onPath("setsid", env)) ? "setsid -w " : "";
    command = `exec ${detach}${opener} ${shQuote(url)} </dev/null >/dev/null 2>&1`;
  }
  try {
    await runHelper(command, {
      what: `the browser opener (${opener})`,
      timeoutMs: Math.min(helperTimeoutMs(env), 10_000),
      env,
    });
  } catch (e) {
    if (e instanceof Cancelled || !(e instanceof StshError)) throw e;
    throw new StshError(e.message, hint);
  }
}
