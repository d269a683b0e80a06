/**
 * The only module that touches the AWS SDK, and only when a call is really made: the SDK is
 * imported lazily so that the hook's fast path (a cache hit) never loads it. STS errors
 * become one sentence plus a hint.
 */
import type { Keys } from "./config.ts";
import { MfaRefused, StshError } from "./errors.ts";
import { readTextBounded, Unreadable } from "./fsafe.ts";

export interface Issued {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
  arn?: string;
}

export interface CallTarget {
  region: string;
  endpoint: string;
  credentials: Keys;
}

/** A hard deadline per call: `requestTimeout` alone only warns (sts.md §4.5). */
function deadlineMs(env = Deno.env.toObject()): number {
  const s = Number(env.STSH_STS_TIMEOUT);
  return Number.isFinite(s) && s > 0 ? s * 1000 : 10_000;
}

async function client(target: CallTarget, carriesCode: boolean) {
  const { STSClient } = await import("@aws-sdk/client-sts");
  return new STSClient({
    region: target.region,
    endpoint: target.endpoint,
    credentials: target.credentials,
    // A retry would resend a used MFA code, which AWS refuses (sts.md §2.5).
    maxAttempts: carriesCode ? 1 : 3,
    // Everything else the client would look up in the AWS files (for AWS_PROFILE, which is
    // not the profile in use anyway) is said here: each lookup parses the whole config, and
    // a config of 200 000 profiles takes seconds to parse, inside the call's deadline.
    defaultsMode: "legacy",
    retryMode: "standard",
    useFipsEndpoint: false,
    useDualstackEndpoint: false,
    userAgentAppId: "",
    authSchemePreference: [],
    sigv4aSigningRegionSet: [],
    disableClockSkewCorrection: false,
  });
}

async function send<T>(
  target: CallTarget,
  carriesCode: boolean,
  // deno-lint-ignore no-explicit-any
  makeCommand: (sdk: any) => any,
  what: string,
): Promise<T> {
  const sdk = await import("@aws-sdk/client-sts");
  const c = await client(target, carriesCode);
  const ms = deadlineMs();
  try {
    return await c.send(makeCommand(sdk), { abortSignal: AbortSignal.timeout(ms) }) as T;
  } catch (e) {
    throw explain(e as Error & Record<string, unknown>, target, what, ms);
  } finally {
    c.destroy();
  }
}

/** STS (or the network) said no: one sentence, and what to do about it. */
export function explain(
  e: Error & Record<string, unknown>,
  target: { endpoint: string },
  what: string,
  ms = 10_000,
): StshError {
  const code = String(e.name ?? "");
  const msg = String(e.message ?? "");
  const say = (text: string, hint?: string, err = new StshError(text, hint)) => {
    err.cause = e;
    err.stsCode = code;
    return err;
  };
  if (/invalid MFA one time pass code/i.test(msg)) {
    // AWS's own words too: they are what a search or a support case will need.
    const text =
      `${what}: AWS refused the MFA code (wrong, expired or already used): "${msg.trim()}"`;
    const hint = "Wait for the next code and try again.";
    return say(text, hint, new MfaRefused(text, hint));
  }
  if (/unable to validate MFA code/i.test(msg)) {
    return say(
      `${what}: AWS does not know this MFA device for these keys.`,
      "Check mfa_serial: it must be the ARN of the device assigned to the IAM user whose keys are used.",
    );
  }
  if (/exceeds the MaxSessionDuration/i.test(msg)) {
    return say(
      `${what}: duration_seconds is longer than the role allows.`,
      "Lower duration_seconds to the role's maximum session duration (IAM console: role > Maximum session duration; default 3600).",
    );
  }
  if (/1 hour session limit for roles assumed by role chaining/i.test(msg)) {
    return say(
      `${what}: AWS limits a role assumed from another session to 1 hour.`,
      "Set duration_seconds to 3600 or less for this profile.",
    );
  }
  if (code === "AccessDenied" && /not authorized to perform: sts:AssumeRole/i.test(msg)) {
    return say(
      `${what}: AWS refused to let you assume the role (${msg.replace(/^User: /, "")}).`,
      "If the role demands MFA, set mfa_serial on the profile (or its source profile); otherwise check the role's trust policy.",
    );
  }
  if (code === "ExpiredToken") {
    return say(
      `${what}: the session used to call STS has expired.`,
      "Run `stsh clear` for this profile and try again.",
    );
  }
  if (code === "InvalidClientTokenId") {
    return say(
      `${what}: AWS does not recognise the access key.`,
      "The keys in your credentials file may be deactivated or deleted; check them in the IAM console.",
    );
  }
  if (code === "SignatureDoesNotMatch") {
    return say(
      `${what}: AWS says the request signature is wrong${
        /expired/i.test(msg) ? " (your clock is off by more than 15 minutes)" : ""
      }.`,
      /expired/i.test(msg)
        ? "Fix the system clock."
        : "Check aws_secret_access_key in your credentials file.",
    );
  }
  if (/throttl|rate exceeded/i.test(code + msg)) {
    return say(`${what}: AWS is throttling STS calls.`, "Wait a few seconds and try again.");
  }
  if (code === "AbortError" || code === "TimeoutError" || /aborted/i.test(msg)) {
    return say(
      `${what}: STS at ${target.endpoint} did not answer within ${ms / 1000} s.`,
      "Check your network (or STSH_STS_TIMEOUT).",
    );
  }
  const errno = String(e.code ?? (e.cause as Record<string, unknown> | undefined)?.code ?? "");
  // No connection was made, so no request was sent; a reset or a timed-out connection may
  // have carried it, so those count as sent (a code in them may be spent).
  const unsent = /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ENETUNREACH|EHOSTUNREACH/.test(errno + msg) ||
    code === "ConnectionRefused";
  if (unsent || /ECONNRESET|ETIMEDOUT/.test(errno + msg)) {
    const err = say(
      `${what}: cannot reach STS at ${target.endpoint}.`,
      "Check your network, proxy or endpoint_url.",
    );
    err.notSent = unsent;
    return err;
  }
  const status = (e.$metadata as { httpStatusCode?: number } | undefined)?.httpStatusCode;
  if (status && status >= 500) {
    return say(`${what}: STS had an internal error (${code || status}).`, "Try again shortly.");
  }
  return say(`${what}: ${code ? `${code}: ` : ""}${msg || "unknown error"}`);
}

function issued(
  c: {
    AccessKeyId?: string;
    SecretAccessKey?: string;
    SessionToken?: string;
    Expiration?: Date;
  } | undefined,
  arn?: string,
): Issued {
  if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration) {
    throw new StshError("STS answered without credentials.");
  }
  return {
    accessKeyId: c.AccessKeyId,
    secretAccessKey: c.SecretAccessKey,
    sessionToken: c.SessionToken,
    expiration: c.Expiration,
    arn,
  };
}

export async function getSessionToken(
  target: CallTarget,
  p: { durationSeconds: number; serial?: string; code?: string; what: string },
): Promise<Issued> {
  const out = await send<{ Credentials?: Parameters<typeof issued>[0] }>(
    target,
    p.code !== undefined,
    (sdk) =>
      new sdk.GetSessionTokenCommand({
        DurationSeconds: p.durationSeconds,
        SerialNumber: p.code !== undefined ? p.serial : undefined,
        TokenCode: p.code,
      }),
    p.what,
  );
  return issued(out.Credentials);
}

export async function assumeRole(
  target: CallTarget,
  p: {
    roleArn: string;
    sessionName: string;
    externalId?: string;
    durationSeconds?: number;
    serial?: string;
    code?: string;
    what: string;
  },
): Promise<Issued> {
  const out = await send<{
    Credentials?: Parameters<typeof issued>[0];
    AssumedRoleUser?: { Arn?: string };
  }>(
    target,
    p.code !== undefined,
    (sdk) =>
      new sdk.AssumeRoleCommand({
        RoleArn: p.roleArn,
        RoleSessionName: p.sessionName,
        ExternalId: p.externalId,
        DurationSeconds: p.durationSeconds,
        SerialNumber: p.code !== undefined ? p.serial : undefined,
        TokenCode: p.code,
      }),
    p.what,
  );
  return issued(out.Credentials, out.AssumedRoleUser?.Arn);
}

/**
 * SSO, web identity, instance/container roles: the SDK's providers, under a hard deadline
 * (STSH_HELPER_TIMEOUT, as for helpers): a provider that hangs (a portal that never answers,
 * a token file that is a FIFO) ends stsh's wait; the process exits soon after anyway.
 */
export async function sdkCredentials(
  profile: string,
  via: string,
  files: { configPath: string; credentialsPath: string },
  timeoutMs = 60_000,
  tokenFile?: string,
): Promise<Keys & { expiration?: Date }> {
  if (tokenFile) {
    // The SDK reads this file synchronously: a FIFO would block stsh for good (no deadline
    // can fire), /dev/zero would fill the memory. It gets the bytes read here instead.
    let token: string;
    try {
      token = await readTextBounded(tokenFile, { maxBytes: 256 * 1024, nonEmpty: true });
    } catch (e) {
      if (!(e instanceof Unreadable)) throw e;
      throw new StshError(
        `The web_identity_token_file of profile '${profile}': ${e.message}.`,
      );
    }
    const { externalDataInterceptor } = await import("@smithy/shared-ini-file-loader");
    externalDataInterceptor.interceptToken(tokenFile, token);
  }
  const providers = await import("@aws-sdk/credential-providers");
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const provider = via === "Ec2InstanceMetadata"
      ? providers.fromInstanceMetadata({ timeout: 2000, maxRetries: 1 })
      : via === "EcsContainer"
      ? providers.fromContainerMetadata({ timeout: 2000, maxRetries: 1 })
      : providers.fromIni({
        profile,
        filepath: files.credentialsPath,
        configFilepath: files.configPath,
        ignoreCache: true,
      });
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new StshError(
              `Getting credentials for profile '${profile}' (${via}) took longer than ${
                timeoutMs / 1000
              } s; gave up.`,
              "STSH_HELPER_TIMEOUT sets the limit in seconds.",
            ),
          ),
        timeoutMs,
      );
    });
    const c = await Promise.race([provider(), late]);
    return {
      accessKeyId: c.accessKeyId,
      secretAccessKey: c.secretAccessKey,
      sessionToken: c.sessionToken,
      expiration: c.expiration,
    };
  } catch (e) {
    if (e instanceof StshError) throw e;
    throw new StshError(
      `Could not get credentials for profile '${profile}' (${via}): ${(e as Error).message}`,
      via === "sso" ? `Run \`aws sso login --profile ${profile}\` first.` : undefined,
    );
  } finally {
    clearTimeout(timer);
  }
}
