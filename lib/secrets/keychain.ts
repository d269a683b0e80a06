/**
 * The macOS Keychain through `/usr/bin/security`, generic passwords with service `stsh` and
 * account ITEM. No secret in any argv: writes go through `security -i`, which reads its
 * commands on stdin; `find-generic-password -w` prints the secret on stdout. The secret is
 * stored base64-encoded, so it needs no quoting in `security -i` and always prints as text.
 * UNTESTED HERE (the project's machines are Linux): written from Apple's `security(1)`.
 */
import { HelperFailed, runHelper } from "../proc.ts";
import { keyringTimeoutMs, type SecretStore, StoreError, type StoreOptions } from "../secrets.ts";
import { oneLine } from "../text.ts";

const SECURITY = "/usr/bin/security";
const WHERE = "the macOS Keychain";
/** errSecItemNotFound, as security(1) exits with it. */
const NOT_FOUND = 44;

const quote = (s: string) => `"${s.replace(/["\\\n]/g, "")}"`;
const toB64 = (s: string) => btoa(String.fromCharCode(...new TextEncoder().encode(s)));
const fromB64 = (s: string) =>
  new TextDecoder().decode(Uint8Array.from(atob(s.trim()), (c) => c.charCodeAt(0)));

export class Keychain implements SecretStore {
  readonly name = "keychain" as const;
  readonly where = WHERE;

  constructor(private readonly opts: StoreOptions) {}

  private async security(args: string, input?: string): Promise<string> {
    const ms = keyringTimeoutMs(this.opts.env);
    try {
      return await runHelper(`exec ${SECURITY} ${args}`, {
        what: "security",
        timeoutMs: ms,
        maxOutputBytes: 4 << 20,
        childEnv: this.opts.env,
        input,
        captureStderr: true,
      });
    } catch (e) {
      if (!(e instanceof HelperFailed)) throw e;
      const said = oneLine(e.stderr.trim()).slice(0, 300);
      let err: StoreError;
      if (e.reason === "timeout") {
        err = new StoreError(
          "timeout",
          `${WHERE} did not answer within ${ms / 1000} s.`,
          "Raise STSH_KEYRING_TIMEOUT (seconds), or set STSH_KEYRING=file.",
        );
      } else if (e.reason === "start" || e.code === 127) {
        err = new StoreError("unavailable", `${SECURITY} could not be started.`);
      } else if (e.code === NOT_FOUND) {
        err = new StoreError("failed", `${WHERE}: no such item.`);
        err.detail = "not found";
      } else if (/interaction is not allowed|locked|-25308/i.test(said)) {
        err = new StoreError(
          "locked",
          `${WHERE} is locked (${said}).`,
          "Unlock it: security unlock-keychain, or log in at the Mac itself.",
        );
      } else {
        err = new StoreError("failed", `${WHERE} refused: ${said || `exit code ${e.code}`}`);
      }
      err.detail ||= said;
      throw err;
    }
  }

  private static missing(e: unknown): boolean {
    return e instanceof StoreError && e.detail === "not found";
  }

  async get(item: string): Promise<string | null> {
    try {
      return fromB64(
        await this.security(`find-generic-password -s stsh -a ${quote(item)} -w`),
      );
    } catch (e) {
      if (Keychain.missing(e)) return null;
      throw e;
    }
  }

  async set(item: string, secret: string, label: string): Promise<void> {
    await this.security(
      "-i",
      `add-generic-password -U -s stsh -a ${quote(item)} -l ${quote(label)} -w ${toB64(secret)}\n`,
    );
    // `security -i` goes on after a failed command: read it back to be sure it is there.
    if ((await this.get(item)) !== secret) {
      throw new StoreError("failed", `${WHERE} did not keep the item '${item}'.`);
    }
  }

  async delete(item: string): Promise<boolean> {
    try {
      await this.security(`delete-generic-password -s stsh -a ${quote(item)}`);
      return true;
    } catch (e) {
      if (Keychain.missing(e)) return false;
      throw e;
    }
  }

  /** Attributes only: `dump-keychain` without -d prints no secrets. */
  async list(): Promise<string[]> {
    const out = await this.security("dump-keychain");
    const names: string[] = [];
    for (const block of out.split(/^keychain: /m)) {
      if (!/"svce"<blob>="stsh"/.test(block)) continue;
      const m = block.match(/"acct"<blob>="([^"]*)"/);
      if (m) names.push(m[1]);
    }
    return names;
  }
}
