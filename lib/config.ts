/**
 * ~/.aws/config + ~/.aws/credentials -> resolved profiles and the plan to get credentials
 * for one of them. Parsing is the AWS SDK's own (`@smithy/shared-ini-file-loader`), so a
 * profile means here what it means to the SDK; everything the parser forgives silently
 * (unreadable files, unknown shapes) is checked here and said in one sentence.
 */
import { loadSharedConfigFiles } from "@smithy/shared-ini-file-loader";
import { StshError } from "./errors.ts";
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
  /** Credentials only the SDK's own providers can produce. */
  sdk?: "sso" | "credential_process" | "web_identity";
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
  | { kind: "sdk"; profile: Profile; via: string };

export interface Plan {
  target: Profile;
  base: Base;
  /** Roles to assume in order: the first with the base credentials, each next with the last. */
  roles: Profile[];
  /** The MFA device: the target's `mfa_serial`, else the nearest one down its source chain. */
  mfaSerial?: string;
  mfaProcess?: string;
  region: string;
  endpoint: string;
}

export { PROFILE_NAME } from "./paths.ts";
const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@\/-]{1,512}$/;
const SERIAL = /^[\w+=\/:,.@-]{9,256}$/;
const SESSION_NAME = /^[\w+=,.@-]{2,64}$/;
const EXTERNAL_ID = /^[\w+=,.@:\/-]{2,1224}$/;

async function checkReadable(path: string, what: string, required: boolean): Promise<boolean> {
  try {
    const st = await Deno.stat(path);
    if (!st.isFile) throw new StshError(`The AWS ${what} file ${path} is not a regular file.`);
    const f = await Deno.open(path, { read: true });
    f.close();
    return true;
  } catch (e) {
    if (e instanceof StshError) throw e;
    if (e instanceof Deno.errors.NotFound) {
      if (required) {
        throw new StshError(
          `There is no AWS ${what} file at ${path}.`,
          what === "config"
            ? 'Create it (see README, "Five minutes"), or point AWS_CONFIG_FILE at yours.'
            : undefined,
        );
      }
      return false;
    }
    if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) {
      throw new StshError(`Cannot read the AWS ${what} file ${path}: permission denied.`);
    }
    throw new StshError(`Cannot read the AWS ${what} file ${path}: ${(e as Error).message}`);
  }
}

function int(
  p: Record<string, string | undefined>,
  key: string,
  name: string,
  file: string,
  min: number,
  max: number,
): number | undefined {
  const v = p[key];
  if (v === undefined || v === "") return undefined;
  if (!/^\d+$/.test(v) || +v < min || +v > max) {
    throw new StshError(
      `${key} in profile '${name}' (${file}) must be a whole number of seconds from ${min} to ${max}; it is '${v}'.`,
    );
  }
  return +v;
}

function toProfile(
  name: string,
  raw: Record<string, string | undefined>,
  file: string,
): Profile {
  const s = (k: string) => (raw[k] === undefined || raw[k] === "" ? undefined : raw[k]);
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
    durationSeconds: int(raw, "duration_seconds", name, file, 900, 43200),
    mfaSessionDurationSeconds: int(raw, "mfa_session_duration_seconds", name, file, 900, 129600) ??
      43200,
    endpointUrl: s("endpoint_url"),
    mfaProcess: s("mfa_process"),
  };
  const bad = (key: string, value: string, shape: string) =>
    new StshError(`${key} in profile '${name}' (${file}) is not ${shape}: '${value}'.`);
  if (p.roleArn && !ROLE_ARN.test(p.roleArn)) {
    throw bad("role_arn", p.roleArn, "a role ARN (arn:aws:iam::123456789012:role/NAME)");
  }
  if (p.mfaSerial && !SERIAL.test(p.mfaSerial)) {
    throw bad("mfa_serial", p.mfaSerial, "an MFA device ARN or serial number");
  }
  if (p.roleSessionName && !SESSION_NAME.test(p.roleSessionName)) {
    throw bad("role_session_name", p.roleSessionName, "2-64 characters of [A-Za-z0-9_+=,.@-]");
  }
  if (p.externalId && !EXTERNAL_ID.test(p.externalId)) {
    throw bad("external_id", p.externalId, "2-1224 characters of [A-Za-z0-9_+=,.@:/-]");
  }
  if (p.endpointUrl && !/^https?:\/\/[^\s]+$/.test(p.endpointUrl)) {
    throw bad("endpoint_url", p.endpointUrl, "an http(s) URL");
  }
  const id = s("aws_access_key_id"), secret = s("aws_secret_access_key");
  if (id || secret) {
    if (!id || !secret) {
      throw new StshError(
        `Profile '${name}' (${file}) has ${
          id ? "aws_access_key_id" : "aws_secret_access_key"
        } but not ${id ? "aws_secret_access_key" : "aws_access_key_id"}.`,
      );
    }
    p.keys = {
      accessKeyId: id,
      secretAccessKey: secret,
      sessionToken: s("aws_session_token") ?? s("aws_security_token"),
    };
  }
  if (s("sso_start_url") || s("sso_session")) p.sdk = "sso";
  else if (s("credential_process")) p.sdk = "credential_process";
  else if (s("web_identity_token_file")) p.sdk = "web_identity";
  return p;
}

/** Read both files the way the SDK does, after checking that they can be read at all. */
export async function loadConfig(
  env: Record<string, string> = Deno.env.toObject(),
): Promise<Config> {
  const configPath = configFile(env);
  const credentialsPath = credentialsFile(env);
  const hasConfig = await checkReadable(configPath, "config", false);
  const hasCreds = await checkReadable(credentialsPath, "credentials", false);
  if (!hasConfig && !hasCreds) {
    throw new StshError(
      `There is no AWS config: neither ${configPath} nor ${credentialsPath} exists.`,
      'Create ~/.aws/config (see README, "Five minutes"), or point AWS_CONFIG_FILE at yours.',
    );
  }
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
    const fromCreds = creds[name] ?? {};
    const merged = { ...(cfg[name] ?? {}), ...fromCreds };
    const file = Object.keys(fromCreds).length ? credentialsPath : configPath;
    const p = toProfile(name, merged, file);
    const k = stored[name];
    if (k && !p.keys) p.keys = { accessKeyId: k.keyId, secretAccessKey: "", keyring: k.backend };
    profiles.set(name, p);
  }
  if (profiles.size === 0) {
    const size = async (p: string) => (await Deno.stat(p).catch(() => null))?.size ?? 0;
    if ((await size(configPath)) + (await size(credentialsPath)) > 0) {
      throw new StshError(
        `The AWS parser found no profiles in ${configPath}${
          hasCreds ? ` or ${credentialsPath}` : ""
        }.`,
        "Sections must read [profile NAME] in config and [NAME] in credentials; names may hold letters, digits and - _ @ + . % : /.",
      );
    }
  }
  return { profiles, configPath, credentialsPath };
}

export function getProfile(config: Config, name: string): Profile {
  const p = config.profiles.get(name);
  if (!p) {
    const known = [...config.profiles.keys()].sort();
    throw new StshError(
      `Profile '${name}' is not in ${config.configPath} or ${config.credentialsPath}.`,
      known.length ? `Known profiles: ${known.join(", ")}.` : "No profiles are defined yet.",
    );
  }
  return p;
}

/** The region and STS endpoint for a chain: env first, then the profiles. */
function regionAndEndpoint(chain: Profile[], env: Record<string, string>) {
  const region = chain.map((p) => p.region).find(Boolean) || env.AWS_REGION ||
    env.AWS_DEFAULT_REGION || "us-east-1";
  const endpoint = env.AWS_ENDPOINT_URL_STS || env.AWS_ENDPOINT_URL ||
    chain.map((p) => p.endpointUrl).find(Boolean) ||
    `https://sts.${region}.amazonaws.com${region.startsWith("cn-") ? ".cn" : ""}`;
  return { region, endpoint };
}

/** How to get credentials for `name`: the base, the roles to assume, the MFA device. */
export function plan(
  config: Config,
  name: string,
  env: Record<string, string> = Deno.env.toObject(),
): Plan {
  const target = getProfile(config, name);
  const roles: Profile[] = [];
  const visited: string[] = [];
  let p = target;
  let base: Base | undefined;
  while (!base) {
    if (visited.includes(p.name)) {
      throw new StshError(
        `Profile '${target.name}' has a source_profile cycle: ${
          [...visited, p.name].join(" -> ")
        } (${config.configPath}).`,
      );
    }
    visited.push(p.name);
    if (!p.roleArn) {
      if (p.keys) base = { kind: "keys", profile: p, keys: p.keys };
      else if (p.sdk) base = { kind: "sdk", profile: p, via: p.sdk };
      else {
        throw new StshError(
          p === target
            ? `Profile '${p.name}' has no credentials and no role_arn (${config.configPath}).`
            : `Source profile '${p.name}' (for '${target.name}') has no credentials.`,
          `Give '${p.name}' aws_access_key_id and aws_secret_access_key in ${config.credentialsPath}, or sso_session / credential_process.`,
        );
      }
      break;
    }
    roles.unshift(p);
    if (p.sourceProfile && p.credentialSource) {
      throw new StshError(
        `Profile '${p.name}' has both source_profile and credential_source; keep one (${config.configPath}).`,
      );
    }
    if (p.credentialSource) {
      const via = p.credentialSource;
      if (via === "Environment") base = { kind: "environment", profile: p };
      else if (via === "Ec2InstanceMetadata" || via === "EcsContainer") {
        base = { kind: "sdk", profile: p, via };
      } else {
        throw new StshError(
          `credential_source '${via}' in profile '${p.name}' is not one of Environment, Ec2InstanceMetadata, EcsContainer (${config.configPath}).`,
        );
      }
      break;
    }
    if (!p.sourceProfile) {
      throw new StshError(
        `Profile '${p.name}' has role_arn but neither source_profile nor credential_source (${config.configPath}).`,
      );
    }
    if (p.sourceProfile === p.name && p.keys) {
      // The AWS CLI's rule: a profile may be its own source when it holds keys.
      base = { kind: "keys", profile: p, keys: p.keys };
      break;
    }
    const next = config.profiles.get(p.sourceProfile);
    if (!next) {
      throw new StshError(
        `Profile '${p.name}' names source_profile '${p.sourceProfile}', which is not in ${config.configPath} or ${config.credentialsPath}.`,
        `Known profiles: ${[...config.profiles.keys()].sort().join(", ")}.`,
      );
    }
    p = next;
  }
  const chain = [target, ...[...roles].reverse().filter((r) => r !== target), base.profile];
  const mfaProfile = chain.find((x) => x.mfaSerial);
  return {
    target,
    base,
    roles,
    mfaSerial: mfaProfile?.mfaSerial,
    mfaProcess: chain.map((x) => x.mfaProcess).find(Boolean),
    ...regionAndEndpoint(chain, env),
  };
}

/** A short description of what a profile is, for `stsh profiles`. */
export function describe(config: Config, name: string, env?: Record<string, string>): {
  kind: string;
  mfa?: string;
  role?: string;
} {
  try {
    const pl = plan(config, name, env);
    const role = pl.target.roleArn;
    const kind = role
      ? (pl.roles.length > 1 ? "role chain" : "role") +
        (pl.base.kind === "keys"
          ? ""
          : ` (${pl.base.kind === "sdk" ? pl.base.via : "environment"})`)
      : pl.base.kind === "keys"
      ? (pl.base.keys.sessionToken ? "session keys" : pl.mfaSerial ? "MFA user" : "keys")
      : pl.base.kind === "sdk"
      ? pl.base.via
      : "environment";
    return { kind, mfa: pl.mfaSerial, role };
  } catch (e) {
    return { kind: `broken: ${(e as Error).message}` };
  }
}
