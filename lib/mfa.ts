/**
 * Where an MFA code comes from: --token-code, then the profile's mfa_process, then the
 * terminal. Codes are checked for shape before any call, and a code that was used in the
 * last 90 s for the same device is refused here, because AWS refuses a reused code and the
 * person would lose a try.
 */
import { Cancelled, MfaNeeded, StshError } from "./errors.ts";
import { readTextBounded, writeAtomic } from "./fsafe.ts";
import { join, mfaDir, privateDir } from "./paths.ts";
import { sha256Hex } from "./sha256.ts";
import { runHelper } from "./proc.ts";
import { notice, openTerminal, type Terminal } from "./tty.ts";

export const REPLAY_WINDOW_MS = 90_000;
/** How many codes a person may type for one resolve (a refused code costs a try). */
const MAX_TRIES = 3;
const SIX_DIGITS = /^\d{6}$/;

export interface CodeRequest {
  serial: string;
  profile: string;
  /** From --token-code: used once, never re-asked. */
  tokenCode?: string;
  mfaProcess?: string;
  /** May we ask on the terminal? (false in a hook without --prompt) */
  interactive: boolean;
  env?: Record<string, string>;
  /** Told when a person starts (true) and stops (false) being asked, for lock waiters. */
  onAsk?: (asking: boolean) => Promise<void> | void;
}

/** Remembers the last code per device (hashed), so a repeat can be refused locally. */
export class ReplayGuard {
  constructor(private readonly env?: Record<string, string>, private readonly now = Date.now) {}

  private file(serial: string) {
    return join(mfaDir(this.env), `${sha256Hex(serial).slice(0, 32)}.json`);
  }

  async isReplay(serial: string, code: string): Promise<boolean> {
    try {
      const text = await readTextBounded(this.file(serial), {
        maxBytes: 4096,
        ownedByMe: true,
        noLinks: true,
      });
      const last = JSON.parse(text);
      return last.hash === sha256Hex(`${serial}\n${code}`) &&
        this.now() - last.at < REPLAY_WINDOW_MS;
    } catch {
      return false;
    }
  }

  /** Throws StshError with the reason when it cannot be saved (the caller warns). */
  async remember(serial: string, code: string): Promise<void> {
    await privateDir(mfaDir(this.env));
    await writeAtomic(
      this.file(serial),
      JSON.stringify({ hash: sha256Hex(`${serial}\n${code}`), at: this.now() }),
      { mode: 0o600 },
    );
  }
}

async function runMfaProcess(
  command: string,
  profile: string,
  env?: Record<string, string>,
): Promise<string> {
  const out = await runHelper(command, {
    what: `mfa_process of profile '${profile}'`,
    env,
    childEnv: env,
    maxOutputBytes: 4096,
  });
  return out.trim();
}

function checkShape(code: string, from: string) {
  if (!SIX_DIGITS.test(code)) {
    throw new StshError(
      `The MFA code from ${from} is not six digits.`,
      "Use the 6-digit code your authenticator shows now.",
      2,
    );
  }
}

/**
 * A source of codes for one resolve. `next(reason)` returns a fresh code or throws:
 * MfaNeeded when no source may be asked, Cancelled when the person gives up.
 */
export class CodeSource {
  private tries = 0;
  private terminal: Terminal | null = null;
  readonly guard: ReplayGuard;

  constructor(readonly req: CodeRequest) {
    this.guard = new ReplayGuard(req.env);
  }

  /** How many times may a wrong code be corrected? Only a person can correct one. */
  get canRetry(): boolean {
    return !this.req.tokenCode && !this.req.mfaProcess && this.tries < MAX_TRIES;
  }

  async next(reason?: string): Promise<string> {
    this.tries++;
    const { serial, profile } = this.req;
    if (this.req.tokenCode !== undefined) {
      if (this.tries > 1) throw new StshError(reason ?? "The MFA code was refused.");
      checkShape(this.req.tokenCode, "--token-code");
      if (await this.guard.isReplay(serial, this.req.tokenCode)) {
        throw new StshError(
          "That MFA code was used in the last 90 seconds; AWS accepts a code only once.",
          "Wait for the next code and run it again.",
        );
      }
      return this.req.tokenCode;
    }
    if (this.req.mfaProcess) {
      if (this.tries > 1) throw new StshError(reason ?? "The MFA code was refused.");
      // A code just used (by another role a moment ago) is waited out, not sent again.
      for (let waited = 0;; waited += 5) {
        const code = await runMfaProcess(this.req.mfaProcess, profile, this.req.env);
        checkShape(code, `mfa_process of profile '${profile}'`);
        if (!(await this.guard.isReplay(serial, code))) return code;
        if (waited >= 35) {
          throw new StshError(`mfa_process of profile '${profile}' keeps giving a used code.`);
        }
        if (waited === 0) notice("waiting for the next MFA code (the last one was just used)…");
        await new Promise((r) => setTimeout(r, 5000));
      }
    }
    if (!this.req.interactive) throw new MfaNeeded(serial, profile);
    this.terminal ??= openTerminal();
    if (!this.terminal) throw new MfaNeeded(serial, profile);
    const t = this.terminal;
    // Between tries: AWS's reason, and how many tries this is (only refused codes count).
    if (reason) t.write(`stsh: ${reason} Try ${this.tries} of ${MAX_TRIES}.\n`);
    await this.req.onAsk?.(true);
    try {
      return await this.ask(t);
    } finally {
      await this.req.onAsk?.(false);
    }
  }

  private async ask(t: Terminal): Promise<string> {
    const { serial, profile } = this.req;
    while (true) {
      const code = (await t.readLine(`stsh: MFA code for ${profile} (${serial}): `)).trim();
      if (code === "") throw new Cancelled();
      if (!SIX_DIGITS.test(code)) {
        t.write("stsh: that is not six digits; type the code your authenticator shows.\n");
        continue;
      }
      if (await this.guard.isReplay(serial, code)) {
        t.write(
          "stsh: that code was just used, and AWS accepts a code only once: wait for the next one.\n",
        );
        continue;
      }
      return code;
    }
  }

  close() {
    this.terminal?.close();
    this.terminal = null;
  }
}
