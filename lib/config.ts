/**
 * ~/.aws/config + ~/.aws/credentials -> resolved profiles and the plan to get credentials
 * for one of them. Parsing is the AWS SDK's own (`@smithy/shared-ini-file-loader`), so a
 * profile means here what it means to the SDK; everything the parser forgives silently
 * (unreadable files, unknown shapes) is checked here and said in one sentence.
 */
import { externalDataInterceptor, loadSharedConfigFiles } from "@smithy/shared-ini-file-loader";
import { ConfigError, StshError } from "./errors.ts";
import { readTextBounded, Unreadable } from "./fsafe.ts";
import { configFile, credentialsFile } from "./paths.ts";
import { type BackendName, readKeyIndex } from "./secrets.ts";

export interface Keys {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /**
   * Long-term keys kept in a secret store (`stsh keys`): secretAccessKey is empty until the
   * engine fetches it, which it does only when STS must be called with them.
   */
  keyring?: BackendName;
}

export interface Profile {
  name: string;
  /** The raw keys, as the SDK's parser gave them (credentials-file keys win). */
  raw: Record<string, string | undefined>;
  region?: string;
  mfaSerial?: string;
  roleArn?: string;
  sourceProfile?: string;
  credentialSource?: string;
  roleSessionName?: string;
  externalId?: string;
  durationSeconds?: number;
  /** GetSessionToken length: stsh's own key, default 43200. */
  mfaSessionDurationSeconds: number;
  endpointUrl?: string;
  mfaProcess?: string;
  keys?: Keys;
  /** Credentials from elsewhere: the SDK's own providers, or (process) a command stsh runs. */
  sdk?: "sso" | "credential_process" | "web_identity";
  credentialProcess?: string;
  /** What is wrong with it (shapes, half a key pair): said when it is used, never before. */
  problems: Problem[];
}

export interface Config {
  profiles: Map<string, Profile>;
  configPath: string;
  credentialsPath: string;
}

/** Where the first credentials of a chain come from. */
export type Base =
  | { kind: "keys"; profile: Profile; keys: Keys }
  | { kind: "environment"; profile: Profile }
  | { kind: "process"; profile: Profile; command: string }
  | { kind: "sdk"; profile: Profile; via: string };

export interface Plan {
  target: Profile;
  base: Base;
  /** Roles to assume in order: the first with the base credentials, each next with the last. */
  roles: Profile[];
  /** The MFA device: the target's `mfa_serial`, else the nearest one down its source chain. */
  mfaSerial?: string;
  mfaProcess?: string;
  /** The region for the STS calls: the chain's, else AWS_REGION / AWS_DEFAULT_REGION. */
  region: string;
  /** The region to export: the target's own `region` only; none leaves the user's alone. */
  exportRegion?: string;
  endpoint: string;
}

export { PROFILE_NAME } from "./paths.ts";
const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@\/-]{1,512}$/;
const SERIAL = /^[\w+=\/:,.@-]{9,256}$/;
const SESSION_NAME = /^[\w+=,.@-]{2,64}$/;
const EXTERNAL_ID = /^[\w+=,.@:\/-]{2,1224}$/;
/** us-east-1, us-gov-west-1, cn-north-1, us-isob-east-1, eusc-de-east-1 … (sts.md §4.2). */
export const REGION = /^[a-z]{2,4}(-[a-z]+)+-\d{1,2}$/;
/** The AWS files are small; anything larger is not a config (and must not be read whole). */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

/** Why one profile cannot be used: said only when it (or a profile it needs) is used. */
export interface Problem {
  /** The key at fault, when there is one. */
  key?: string;
  /** One sentence naming the file, the profile and the key. */
  message: string;
  /** The same without the profile's name, for a table row. */
  short: string;
}

/** "Known profiles: …" for a name that is not one of them. */
export function knownHint(config: Config): string {
  const names = sortedNames(config);
  if (!names.length) return "No profiles are defined yet.";
  const max = 30;
  const shown = names.slice(0, max).join(", ");
  return names.length > max
    ? `Known profiles: ${shown}, … (${names.length} in all; \`stsh profiles --names\` lists them).`
    : `Known profiles: ${shown}.`;
}

const sorted = new WeakMap<Config, string[]>();
function sortedNames(config: Config): string[] {
  let names = sorted.get(config);
  if (!names) sorted.set(config, names = [...config.profiles.keys()].sort());
  return names;
}

/**
 * Read one AWS file with a hard byte limit, refusing anything but a regular file (a FIFO or
 * /dev/zero named by AWS_CONFIG_FILE would block or never end). null when it does not exist.
 */
async function readAwsFile(
  path: string,
  what: "config" | "credentials",
  env: Record<string, string>,
): Promise<string | null> {
  try {
    await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    // An unreadable directory on the way, for example: readBounded says it in its words.
  }
  const envVar = what === "config" ? "AWS_CONFIG_FILE" : "AWS_SHARED_CREDENTIALS_FILE";
  const hint = env[envVar] ? `${envVar} names it.` : undefined;
  try {
    return await readTextBounded(path, { maxBytes: MAX_CONFIG_BYTES, openTimeoutMs: 2000 });
  } catch (e) {
    if (!(e instanceof Unreadable)) throw e;
    if (/permission denied/i.test(e.why)) {
      throw new StshError(`Cannot read the AWS ${what} file ${path}: permission denied.`, hint);
    }
    throw new StshError(`The AWS ${what} file ${e.message}.`, hint);
  }
}

/**
 * Section headers the SDK's parser cannot take: `[__proto__]` makes it throw, which it then
 * swallows into "this whole file is empty" — one odd section would hide every profile; a bare
 * section named like an Object.prototype member (`[constructor]`) writes its keys onto that
 * member instead of a profile. Such headers are renamed to a section the parser skips.
 */
const ODD_SECTION = new RegExp(
  `^([ \\t]*)\\[(?:profile __proto__|${
    ["__proto__", ...Object.getOwnPropertyNames(Object.prototype)].join("|")
  })\\]((?:[ \\t]+[#;][^\\n]*)?[ \\t\\r]*)$`,
  "gm",
);
const defuse = (text: string) => text.replace(ODD_SECTION, "$1[stsh-ignored x]$2");

function int(
  v: string | undefined,
  min: number,
  max: number,
): { ok: true; value?: number } | { ok: false; why: string } {
  if (v === undefined || v === "") return { ok: true };
  if (!/^\d+$/.test(v) || +v < min || +v > max) {
    return { ok: false, why: `must be a whole number of seconds from ${min} to ${max}` };
  }
  return { ok: true, value: +v };
}

/** A profile as the files say it; anything odd goes to `problems`, never thrown here. */
function toProfile(
  name: string,
  raw: Record<string, string | undefined>,
  fileOf: (key: string) => string,
): Profile {
  const s = (k: string) => (raw[k] === undefined || raw[k] === "" ? undefined : raw[k]);
  const problems: Problem[] = [];
  const bad = (key: string, value: string, shape: string) => {
    const v = value.length > 80 ? value.slice(0, 80) + "…" : value;
    problems.push({
      key,
      message: `${key} in profile '${name}' (${fileOf(key)}) is not ${shape}: '${v}'.`,
      short: `${key} is not ${shape}`,
    });
  };
  const seconds = (key: string, min: number, max: number) => {
    const r = int(raw[key], min, max);
    if (r.ok) return r.value;
    problems.push({
      key,
      message: `${key} in profile '${name}' (${fileOf(key)}) ${r.why}; it is '${raw[key]}'.`,
      short: `${key} ${r.why}`,
    });
    return undefined;
  };
  const p: Profile = {
    name,
    raw,
    region: s("region"),
    mfaSerial: s("mfa_serial"),
    roleArn: s("role_arn"),
    sourceProfile: s("source_profile"),
    credentialSource: s("credential_source"),
    roleSessionName: s("role_session_name"),
    externalId: s("external_id"),
    durationSeconds: seconds("duration_seconds", 900, 43200),
    mfaSessionDurationSeconds: seconds("mfa_session_duration_seconds", 900, 129600) ?? 43200,
    endpointUrl: s("endpoint_url"),
    mfaProcess: s("mfa_process"),
    problems,
  };
  if (p.region && !REGION.test(p.region)) {
    bad("region", p.region, "an AWS region name (like eu-west-1)");
  }
  if (p.roleArn && !ROLE_ARN.test(p.roleArn)) {
    bad("role_arn", p.roleArn, "a role ARN (arn:aws:iam::123456789012:role/NAME)");
  }
  if (p.mfaSerial && !SERIAL.test(p.mfaSerial)) {
    bad("mfa_serial", p.mfaSerial, "an MFA device ARN or serial number");
  }
  if (p.roleSessionName && !SESSION_NAME.test(p.roleSessionName)) {
    bad("role_session_name", p.roleSessionName, "2-64 characters of [A-Za-z0-9_+=,.@-]");
  }
  if (p.externalId && !EXTERNAL_ID.test(p.externalId)) {
    bad("external_id", p.externalId, "2-1224 characters of [A-Za-z0-9_+=,.@:/-]");
  }
  if (p.endpointUrl && !/^https?:\/\/[^\s]+$/.test(p.endpointUrl)) {
    bad("endpoint_url", p.endpointUrl, "an http(s) URL");
  }
  const id = s("aws_access_key_id"), secret = s("aws_secret_access_key");
  if (id || secret) {
    if (!id || !secret) {
      const has = id ? "aws_access_key_id" : "aws_secret_access_key";
      const lacks = id ? "aws_secret_access_key" : "aws_access_key_id";
      problems.push({
        key: lacks,
        message: `Profile '${name}' (${fileOf(has)}) has ${has} but not ${lacks}.`,
        short: `has ${has} but not ${lacks}`,
      });
    } else {
      p.keys = {
        accessKeyId: id,
        secretAccessKey: secret,
        sessionToken: s("aws_session_token") ?? s("aws_security_token"),
      };
    }
  }
  if (s("sso_start_url") || s("sso_session")) p.sdk = "sso";
  else if (s("credential_process")) {
    p.sdk = "credential_process";
    p.credentialProcess = s("credential_process");
  } else if (s("web_identity_token_file")) p.sdk = "web_identity";
  return p;
}

/**
 * Read both files the way the SDK does — its own parser, over bytes read here with a limit —
 * after checking that they are regular files that can be read at all. An odd profile does not
 * stop the others: its problems are kept and said when it is used (plan), or listed
 * (`profileProblems`).
 */
export async function loadConfig(
  env: Record<string, string> = Deno.env.toObject(),
): Promise<Config> {
  const configPath = configFile(env);
  const credentialsPath = credentialsFile(env);
  const configText = await readAwsFile(configPath, "config", env);
  const credsText = await readAwsFile(credentialsPath, "credentials", env);
  if (configText === null && credsText === null) {
    throw new StshError(
      `There is no AWS config: neither ${configPath} nor ${credentialsPath} exists.`,
      'Create ~/.aws/config (see README, "Five minutes"), or point AWS_CONFIG_FILE at yours.',
    );
  }
  // The parser reads through this record before it touches the disk, so it sees exactly the
  // bytes checked here (and so do the SDK's own providers later in this process).
  externalDataInterceptor.interceptFile(configPath, defuse(configText ?? ""));
  externalDataInterceptor.interceptFile(credentialsPath, defuse(credsText ?? ""));
  const { configFile: cfg, credentialsFile: creds } = await loadSharedConfigFiles({
    filepath: credentialsPath,
    configFilepath: configPath,
    ignoreCache: true,
  });
  const profiles = new Map<string, Profile>();
  const names = new Set<string>();
  for (const key of Object.keys(cfg)) if (!/^(sso-session|services)\./.test(key)) names.add(key);
  for (const key of Object.keys(creds)) names.add(key);
  // Keys in a secret store (the key index: ids and backends, no secrets) count where the
  // credentials file has none for the profile.
  const stored = await readKeyIndex(env);
  for (const key of Object.keys(stored)) names.add(key);
  for (const name of names) {
    const fromCreds = Object.hasOwn(creds, name) ? creds[name] : {};
    const merged = { ...(Object.hasOwn(cfg, name) ? cfg[name] : {}), ...fromCreds };
    const fileOf = (key: string) => Object.hasOwn(fromCreds, key) ? credentialsPath : configPath;
    const p = toProfile(name, merged, fileOf);
    const k = Object.hasOwn(stored, name) ? stored[name] : undefined;
    if (k && !p.keys) p.keys = { accessKeyId: k.keyId, secretAccessKey: "", keyring: k.backend };
    profiles.set(name, p);
  }
  if (profiles.size === 0 && (configText ?? "") + (credsText ?? "") !== "") {
    throw new StshError(
      `The AWS parser found no profiles in ${configPath}${
        credsText !== null ? ` or ${credentialsPath}` : ""
      }.`,
      "Sections must read [profile NAME] in config and [NAME] in credentials; names may hold letters, digits and - _ @ + . % : /.",
    );
  }
  return { profiles, configPath, credentialsPath };
}

export function getProfile(config: Config, name: string): Profile {
  const p = config.profiles.get(name);
  if (!p) {
    throw new StshError(
      `Profile '${name}' is not in ${config.configPath} or ${config.credentialsPath}.`,
      knownHint(config),
    );
  }
  return p;
}

/** The region and STS endpoint for the calls of a chain: the profiles, then the env. */
function regionAndEndpoint(
  chain: Profile[],
  env: Record<string, string>,
): { region: string; endpoint: string } | Failed {
  let region = chain.map((p) => p.region).find(Boolean);
  if (!region) {
    const from = env.AWS_REGION ? "AWS_REGION" : env.AWS_DEFAULT_REGION ? "AWS_DEFAULT_REGION" : "";
    region = from ? env[from] : "us-east-1";
    if (!REGION.test(region)) {
      const v = region.length > 80 ? region.slice(0, 80) + "…" : region;
      return failed(
        `${from} is '${v}', which is not an AWS region name (like eu-west-1).`,
        `${from} is not an AWS region name`,
        `Set region in profile '${chain[0].name}', or fix ${from}.`,
      );
    }
  }
  const endpoint = env.AWS_ENDPOINT_URL_STS || env.AWS_ENDPOINT_URL ||
    chain.map((p) => p.endpointUrl).find(Boolean) ||
    `https://sts.${region}.amazonaws.com${region.startsWith("cn-") ? ".cn" : ""}`;
  return { region, endpoint };
}

/** A config problem met while planning: returned, not thrown (200 000 of them are cheap). */
export interface Failed {
  failed: { message: string; short: string; hint?: string };
}
const failed = (message: string, short: string, hint?: string): Failed => ({
  failed: { message, short, hint },
});

/** How to get credentials for `name`: the base, the roles to assume, the MFA device. */
export function plan(
  config: Config,
  name: string,
  env: Record<string, string> = Deno.env.toObject(),
): Plan {
  const r = tryPlan(config, name, env);
  if ("failed" in r) throw new ConfigError(r.failed.message, r.failed.short, r.failed.hint);
  return r;
}

/** plan(), with a config problem returned instead of thrown. */
export function tryPlan(config: Config, name: string, env: Record<string, string>): Plan | Failed {
  const target = getProfile(config, name);
  const roles: Profile[] = [];
  const visited = new Set<string>();
  const path: string[] = [];
  const cfg = config.configPath;
  let p = target;
  let base: Base | undefined;
  while (!base) {
    if (visited.has(p.name)) {
      return failed(
        `Profile '${target.name}' has a source_profile cycle: ${
          [...path, p.name].join(" -> ")
        } (${cfg}).`,
        `source_profile cycle: ${[...path, p.name].join(" -> ")}`,
      );
    }
    visited.add(p.name);
    path.push(p.name);
    // A problem of any profile the chain goes through is this profile's problem too; one of
    // a profile it does not use is not.
    const problem = p.problems[0];
    if (problem) {
      return failed(
        problem.message,
        p === target ? problem.short : `source profile '${p.name}': ${problem.short}`,
      );
    }
    if (p.sdk === "web_identity" && p.roleArn) {
      // role_arn + web_identity_token_file: the SDK assumes the role with the token (the AWS
      // CLI's assume-role-with-web-identity), so it is the base, not a role to assume.
      base = { kind: "sdk", profile: p, via: p.sdk };
      break;
    }
    if (!p.roleArn) {
      if (p.keys) base = { kind: "keys", profile: p, keys: p.keys };
      else if (p.sdk === "credential_process") {
        base = { kind: "process", profile: p, command: p.credentialProcess! };
      } else if (p.sdk) base = { kind: "sdk", profile: p, via: p.sdk };
      else {
        return failed(
          p === target
            ? `Profile '${p.name}' has no credentials and no role_arn (${cfg}).`
            : `Source profile '${p.name}' (for '${target.name}') has no credentials.`,
          p === target
            ? "no credentials and no role_arn"
            : `source profile '${p.name}' has no credentials`,
          `Give '${p.name}' aws_access_key_id and aws_secret_access_key in ${config.credentialsPath}, or sso_session / credential_process.`,
        );
      }
      break;
    }
    roles.unshift(p);
    if (p.sourceProfile && p.credentialSource) {
      return failed(
        `Profile '${p.name}' has both source_profile and credential_source; keep one (${cfg}).`,
        `'${p.name}' has both source_profile and credential_source`,
      );
    }
    if (p.credentialSource) {
      const via = p.credentialSource;
      if (via === "Environment") base = { kind: "environment", profile: p };
      else if (via === "Ec2InstanceMetadata" || via === "EcsContainer") {
        base = { kind: "sdk", profile: p, via };
      } else {
        return failed(
          `credential_source '${via}' in profile '${p.name}' is not one of Environment, Ec2InstanceMetadata, EcsContainer (${cfg}).`,
          `credential_source '${via}' is not Environment, Ec2InstanceMetadata or EcsContainer`,
        );
      }
      break;
    }
    if (!p.sourceProfile) {
      return failed(
        `Profile '${p.name}' has role_arn but neither source_profile nor credential_source (${cfg}).`,
        `'${p.name}' has role_arn but neither source_profile nor credential_source`,
      );
    }
    if (p.sourceProfile === p.name && p.keys) {
      // The AWS CLI's rule: a profile may be its own source when it holds keys.
      base = { kind: "keys", profile: p, keys: p.keys };
      break;
    }
    const next = config.profiles.get(p.sourceProfile);
    if (!next) {
      return failed(
        `Profile '${p.name}' names source_profile '${p.sourceProfile}', which is not in ${cfg} or ${config.credentialsPath}.`,
        `source_profile '${p.sourceProfile}' does not exist`,
        knownHint(config),
      );
    }
    p = next;
  }
  const chain = [target, ...[...roles].reverse().filter((r) => r !== target), base.profile];
  const mfaProfile = chain.find((x) => x.mfaSerial);
  const where = regionAndEndpoint(chain, env);
  if ("failed" in where) return where;
  return {
    target,
    base,
    roles,
    mfaSerial: mfaProfile?.mfaSerial,
    mfaProcess: chain.map((x) => x.mfaProcess).find(Boolean),
    // As the AWS CLI: the profile's own region, never its source's (issue 9.3).
    exportRegion: target.region,
    ...where,
  };
}

/** A short description of what a profile is, for `stsh profiles`. */
export function describe(config: Config, name: string, env: Record<string, string>): {
  kind: string;
  mfa?: string;
  role?: string;
} {
  const pl = tryPlan(config, name, env);
  if ("failed" in pl) {
    return { kind: `broken: ${pl.failed.short}`, role: config.profiles.get(name)?.roleArn };
  }
  const role = pl.target.roleArn;
  const via = (b: Base) =>
    b.kind === "sdk" ? b.via : b.kind === "process" ? "credential_process" : b.kind;
  const kind = role
    ? (pl.roles.length > 1 ? "role chain" : "role") +
      (pl.base.kind === "keys" ? "" : ` (${via(pl.base)})`)
    : pl.base.kind === "keys"
    ? (pl.base.keys.sessionToken ? "session keys" : pl.mfaSerial ? "MFA user" : "keys")
    : via(pl.base);
  return { kind, mfa: pl.mfaSerial, role };
}

/**
 * Every profile that cannot be used, and why (for `stsh doctor`): its own problems and those
 * of the chain it needs, one entry per profile, in name order.
 */
export function profileProblems(
  config: Config,
  env: Record<string, string> = Deno.env.toObject(),
): { profile: string; message: string; short: string }[] {
  const out = [];
  for (const name of sortedNames(config)) {
    const r = tryPlan(config, name, env);
    if ("failed" in r) {
      out.push({ profile: name, message: r.failed.message, short: r.failed.short });
    }
  }
  return out;
}
