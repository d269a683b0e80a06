/**
 * A change set maps each variable name to a value, or to null (unset). Each shell or output
 * format is one small object that renders a change set; values are always data, never code.
 * Every shell-specific string outside shell/ lives here.
 */
import { StshError } from "./errors.ts";

export type ChangeSet = Record<string, string | null>;

/** The names stsh ever sets or unsets in a shell. */
export const CREDENTIAL_VARS = [
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_CREDENTIAL_EXPIRATION",
  "AWS_SESSION_EXPIRATION",
  "AWS_REGION",
  "AWS_DEFAULT_REGION",
] as const;
/** Unset while stsh credentials are active: the JS SDK prefers AWS_PROFILE over keys. */
export const SHADOWING_VARS = ["AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SECURITY_TOKEN"] as const;
/**
 * The container-credentials endpoint (`--serve`, `stsh exec`): set instead of the keys, which
 * would outrank it; the other two are unset while it is in use (the token file outranks the
 * token in botocore).
 */
export const CONTAINER_VARS = [
  "AWS_CONTAINER_CREDENTIALS_FULL_URI",
  "AWS_CONTAINER_AUTHORIZATION_TOKEN",
  "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
  "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
] as const;
export const AWS_VARS: readonly string[] = [
  ...CREDENTIAL_VARS,
  ...SHADOWING_VARS,
  ...CONTAINER_VARS,
];
/** The hook's state, exported so that prompts, `stsh current` and nested shells see it. */
export const STATE_VARS = ["STSH_PROFILE", "STSH_ROOT", "STSH_EXPIRES", "STSH_PINNED"] as const;
/**
 * The user's own values of every name stsh changed (JSON). Kept by each shell in a variable
 * that is NOT exported — it can hold the user's long-term secret key, which children must not
 * inherit — and handed to the binary in the environment of the one call that needs it.
 */
export const PREV_VAR = "STSH_PREV";
export const MANAGED: readonly string[] = [...AWS_VARS, ...STATE_VARS, PREV_VAR];

export interface Creds {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
  region?: string;
}

const KEY_ID = /^[A-Z0-9]{16,128}$/;
const SECRETISH = /^[A-Za-z0-9+/=]+$/;
/**
 * The longest value stsh exports. A real session token is a few KB; one of 300 KB in the
 * environment makes every later exec fail with E2BIG (Linux takes at most 128 KiB per
 * string), so such a value is refused before it is cached or reaches a shell.
 */
export const MAX_VALUE_BYTES = 32 * 1024;

/**
 * STS values have a known alphabet and a sane size; anything else is refused before it is
 * cached or reaches a shell. `what` says whose credentials they are.
 */
export function checkCredentials(c: Creds, what = "The credentials received"): void {
  for (
    const [name, v] of [
      ["access key id", c.accessKeyId],
      ["secret access key", c.secretAccessKey],
      ["session token", c.sessionToken],
    ] as const
  ) {
    if (typeof v === "string" && v.length > MAX_VALUE_BYTES) {
      throw new StshError(
        `${what}: the ${name} is ${v.length} bytes; stsh refuses values over ${MAX_VALUE_BYTES} bytes (a shell holding it could start no program: E2BIG).`,
      );
    }
  }
  const bad = typeof c.accessKeyId !== "string" || !KEY_ID.test(c.accessKeyId) ||
    typeof c.secretAccessKey !== "string" || !SECRETISH.test(c.secretAccessKey) ||
    (c.sessionToken !== undefined &&
      (typeof c.sessionToken !== "string" || !SECRETISH.test(c.sessionToken)));
  if (bad) {
    throw new StshError(
      `${what} contain unexpected characters; refusing to export them.`,
    );
  }
}

/**
 * `2026-05-01T12:00:00Z`: toISOString without the milliseconds. Spelled out for the years
 * STS gives (toISOString's first use in a process costs ~0.3 ms of every warm command);
 * anything else, an invalid date too, goes through toISOString as it is.
 */
export function iso(d: Date): string {
  const y = d.getUTCFullYear();
  if (!(y >= 1000 && y <= 9999)) return d.toISOString().replace(/\.\d{3}Z$/, "Z");
  return `${y}-${two(d.getUTCMonth() + 1)}-${two(d.getUTCDate())}T${two(d.getUTCHours())}:${
    two(d.getUTCMinutes())
  }:${two(d.getUTCSeconds())}Z`;
}

const two = (n: number) => (n < 10 ? "0" : "") + n;

/** The variables for a set of credentials: keys, expiry, region; profile selectors unset. */
export function credentialChanges(c: Creds): ChangeSet {
  checkCredentials(c);
  const exp = c.expiration ? iso(c.expiration) : null;
  return {
    AWS_ACCESS_KEY_ID: c.accessKeyId,
    AWS_SECRET_ACCESS_KEY: c.secretAccessKey,
    AWS_SESSION_TOKEN: c.sessionToken ?? null,
    AWS_CREDENTIAL_EXPIRATION: exp,
    AWS_SESSION_EXPIRATION: exp,
    ...(c.region ? { AWS_REGION: c.region, AWS_DEFAULT_REGION: c.region } : {}),
    AWS_PROFILE: null,
    AWS_DEFAULT_PROFILE: null,
    AWS_SECURITY_TOKEN: null,
  };
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
function lines(
  changes: ChangeSet,
  set: (k: string, v: string) => string,
  unset?: (k: string) => string,
) {
  const out: string[] = [];
  for (const [k, v] of Object.entries(changes)) {
    if (!NAME.test(k)) {
      throw new StshError(`Refusing to render the variable name ${JSON.stringify(k)}.`);
    }
    if (v !== null) out.push(set(k, v));
    else if (unset) out.push(unset(k));
  }
  return out.length ? out.join("\n") + "\n" : "";
}

/** POSIX single quotes: nothing inside is special but the quote itself. */
export const shQuote = (v: string) => `'${v.replaceAll("'", `'\\''`)}'`;
/** PowerShell single quotes: ' and the four typographic quotes that also end the string. */
export const psQuote = (v: string) => `'${v.replace(/['\u2018\u2019\u201A\u201B]/g, "$&$&")}'`;
/** fish single quotes: \ and ' are the only escapes. */
export const fishQuote = (v: string) => `'${v.replace(/[\\']/g, "\\$&")}'`;

/** For formats with no quoting at all, only values of a harmless alphabet pass. */
function plain(v: string, format: string): string {
  if (!/^[A-Za-z0-9+/=:._@,-]*$/.test(v)) {
    throw new StshError(`A value cannot be written safely in the ${format} format.`);
  }
  return v;
}

export interface Format {
  /** Render a change set as this format's text. */
  export(changes: ChangeSet): string;
}

const posix: Format = {
  export: (c) => lines(c, (k, v) => `export ${k}=${shQuote(v)}`, (k) => `unset ${k}`),
};

/** Formats a person can ask `stsh env --format` for (names as in `aws configure export-credentials`). */
export const FORMATS: Record<string, Format> = {
  env: posix,
  "env-no-export": { export: (c) => lines(c, (k, v) => `${k}=${shQuote(v)}`) },
  powershell: {
    export: (c) =>
      lines(
        c,
        (k, v) => `$env:${k} = ${psQuote(v)}`,
        (k) => `Remove-Item Env:${k} -ErrorAction SilentlyContinue`,
      ),
  },
  "windows-cmd": {
    export: (c) => lines(c, (k, v) => `set ${k}=${plain(v, "windows-cmd")}`, (k) => `set ${k}=`),
  },
  fish: { export: (c) => lines(c, (k, v) => `set -gx ${k} ${fishQuote(v)}`, (k) => `set -e ${k}`) },
  dotenv: { export: (c) => lines(c, (k, v) => `${k}=${plain(v, "dotenv")}`) },
};

/** For `stsh env`: who set the credentials and until when, for `stsh current` and prompts. */
export function stateChanges(profile: string, expiration?: Date): ChangeSet {
  return {
    STSH_PROFILE: profile,
    STSH_EXPIRES: expiration ? String(Math.floor(expiration.getTime() / 1000)) : null,
  };
}

/** bash/zsh hooks: `export`/`unset`, and the saved values into the shell-private variable. */
const posixHook: Format = {
  export: (c) =>
    lines(
      c,
      (k, v) => k === PREV_VAR ? `__stsh_prev=${shQuote(v)}` : `export ${k}=${shQuote(v)}`,
      (k) => k === PREV_VAR ? "__stsh_prev=" : `unset ${k}`,
    ),
};

/**
 * fish single quotes for the hook: as fishQuote, but a newline is written outside the quotes
 * as `\n` (`'a'\n'b'`), so every record of a change set is one line. Still plain fish.
 */
export const fishLineQuote = (v: string) => fishQuote(v).replaceAll("\n", "'\\n'");

/**
 * fish hook: `set -gx NAME '…'` / `set -e NAME`, and the saved values into the shell-private
 * variable. One record per line; the hook tokenizes each line with fish's own tokenizer
 * (`read --tokenize`: quotes and escapes undone, nothing expanded or run) and applies it name
 * by name from its allow list. It never evaluates this text.
 */
const fishHook: Format = {
  export: (c) =>
    lines(
      c,
      (k, v) =>
        k === PREV_VAR
          ? `set -g __stsh_prev ${fishLineQuote(v)}`
          : `set -gx ${k} ${fishLineQuote(v)}`,
      (k) => k === PREV_VAR ? "set -e __stsh_prev" : `set -e ${k}`,
    ),
};

/** What the shell hooks read: shell code for bash/zsh, fish records, one JSON line for pwsh. */
export const HOOK_FORMATS: Record<string, Format> = {
  bash: posixHook,
  zsh: posixHook,
  fish: fishHook,
  pwsh: {
    export: (c) => {
      for (const k of Object.keys(c)) {
        if (!MANAGED.includes(k)) throw new StshError(`Refusing to hand ${k} to the hook.`);
      }
      return Object.keys(c).length ? JSON.stringify(c) + "\n" : "";
    },
  },
};

/** credential_process output (Version 1), as `aws configure export-credentials --format process`. */
export function processJson(c: Creds): string {
  checkCredentials(c);
  const o: Record<string, string | number> = {
    Version: 1,
    AccessKeyId: c.accessKeyId,
    SecretAccessKey: c.secretAccessKey,
  };
  if (c.sessionToken) o.SessionToken = c.sessionToken;
  if (c.expiration) o.Expiration = iso(c.expiration);
  return JSON.stringify(o, null, 2) + "\n";
}

export function credentialsJson(c: Creds & { profile: string; arn?: string }): string {
  checkCredentials(c);
  return JSON.stringify(
    {
      Profile: c.profile,
      AccessKeyId: c.accessKeyId,
      SecretAccessKey: c.secretAccessKey,
      SessionToken: c.sessionToken,
      Expiration: c.expiration ? iso(c.expiration) : undefined,
      Region: c.region,
      Arn: c.arn,
    },
    null,
    2,
  ) + "\n";
}

export const FORMAT_NAMES = [...Object.keys(FORMATS), "process", "json"];
