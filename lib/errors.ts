/** Exit codes, documented in README ("Exit codes"). */
export const EXIT = {
  ok: 0,
  error: 1,
  /** Bad usage, or a directory tag that cannot be used. */
  refused: 2,
  /** An MFA code is needed and there is no terminal (and no other source) to get it from. */
  mfaNoTerminal: 3,
  /** `stsh hook` only: an MFA code is needed; run again with `--prompt`. */
  mfaNeeded: 4,
  /** The person cancelled the MFA question. */
  cancelled: 130,
} as const;

/** An error meant for the person: one sentence, an optional hint, an exit code. */
export class StshError extends Error {
  /** The STS error code behind it, when STS said no (ExpiredToken, AccessDenied, …). */
  stsCode?: string;
  /**
   * The request never left this machine or never reached a server (the connection was
   * refused, the host is unknown or unreachable): an MFA code in it was not spent.
   */
  notSent?: boolean;

  constructor(
    message: string,
    readonly hint?: string,
    readonly exitCode: number = EXIT.error,
  ) {
    super(message);
    this.name = "StshError";
  }
}

/**
 * A problem in the AWS config, found when a profile is used: `message` names the file, the
 * profile and the key; `short` is the same for a table row that already names the profile.
 */
export class ConfigError extends StshError {
  constructor(message: string, readonly short: string, hint?: string) {
    super(message, hint);
    this.name = "ConfigError";
  }
}

/** An MFA code is needed but may not be asked for here (`stsh hook` maps it to 3 or 4). */
export class MfaNeeded extends StshError {
  constructor(
    readonly serial: string,
    readonly profile: string,
    message = `MFA code needed for profile '${profile}' (${serial}).`,
    hint = "Run it in a terminal, pass --token-code, or set mfa_process in the profile.",
  ) {
    super(message, hint, EXIT.mfaNoTerminal);
    this.name = "MfaNeeded";
  }
}

/** STS refused the code itself (wrong, expired or reused): a person may type another. */
export class MfaRefused extends StshError {
  constructor(message: string, hint?: string) {
    super(message, hint);
    this.name = "MfaRefused";
  }
}

export class Cancelled extends StshError {
  constructor() {
    super("Cancelled.", undefined, EXIT.cancelled);
    this.name = "Cancelled";
  }
}

/**
 * Deno's refusal of a special path (under /dev, /proc or /sys, which need every permission)
 * as one sentence for the person, or null for any other error.
 */
export function specialPathRefusal(e: unknown): string | null {
  if (!(e instanceof Deno.errors.NotCapable)) return null;
  const path = String(e.message).match(/access to "([^"]*)"/)?.[1];
  return `cannot use ${
    path ? `'${path}'` : "a path"
  }: stsh does not read or write special files (/dev, /proc, /sys). Check STSH_HOME, HOME and the AWS_*_FILE variables.`;
}
