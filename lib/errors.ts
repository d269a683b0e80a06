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
  constructor(
    message: string,
    readonly hint?: string,
    readonly exitCode: number = EXIT.error,
  ) {
    super(message);
    this.name = "StshError";
  }
}

/** An MFA code is needed but may not be asked for here. */
export class MfaNeeded extends StshError {
  constructor(readonly serial: string, readonly profile: string, interactiveAllowed: boolean) {
    super(
      `MFA code needed for profile '${profile}' (${serial}).`,
      interactiveAllowed
        ? undefined
        : "Run it in a terminal, pass --token-code, or set mfa_process in the profile.",
      interactiveAllowed ? EXIT.mfaNeeded : EXIT.mfaNoTerminal,
    );
    this.name = "MfaNeeded";
  }
}

export class Cancelled extends StshError {
  constructor() {
    super("Cancelled.", undefined, EXIT.cancelled);
    this.name = "Cancelled";
  }
}
