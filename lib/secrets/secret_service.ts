/**
 * The freedesktop Secret Service (gnome-keyring, KeePassXC, KWallet 5.97+: one D-Bus API)
 * through libsecret's `secret-tool`. No secret is ever in an argv: `store` reads it on
 * stdin, `lookup` prints it on stdout. Every call runs under lib/proc.ts's deadline, so a
 * missing bus, a locked keyring or a hung daemon ends in one sentence, never a hang.
 * Items carry the attributes `service = stsh` and `account = ITEM`.
 */
import { HelperFailed, runHelperOutput } from "../proc.ts";
import { keyringTimeoutMs, onPath, type SecretStore, shArg, StoreError } from "../secrets.ts";
import type { StoreOptions } from "../secrets.ts";
import { oneLine } from "../text.ts";

const WHERE = "the Secret Service";
const UNLOCK_HINT =
  "Unlock it (log in to the desktop, or open Seahorse / KeePassXC), or set STSH_KEYRING=file.";

export class SecretService implements SecretStore {
  readonly name = "secret-service" as const;
  readonly where = WHERE;

  constructor(private readonly opts: StoreOptions) {}

  /** Run secret-tool; its stdout, or its stderr with `stderrOnly` (its stdout then unread). */
  private async tool(args: string[], input?: string, stderrOnly = false): Promise<string> {
    const env = this.opts.env;
    if (!onPath("secret-tool", env)) {
      throw new StoreError(
        "unavailable",
        "secret-tool is not installed, and stsh talks to the Secret Service through it.",
        "Install it (Debian/Ubuntu: libsecret-tools; Fedora/Arch: libsecret), or set STSH_KEYRING=file.",
      );
    }
    const ms = keyringTimeoutMs(env);
    try {
      const out = await runHelperOutput(
        `exec secret-tool ${args.map(shArg).join(" ")}${stderrOnly ? " >/dev/null" : ""}`,
        {
          what: "secret-tool",
          timeoutMs: ms,
          maxOutputBytes: 256 * 1024,
          childEnv: env,
          input,
          captureStderr: true,
        },
      );
      return stderrOnly ? out.stderr : out.stdout;
    } catch (e) {
      if (!(e instanceof HelperFailed)) throw e;
      if (e.reason === "timeout") {
        throw new StoreError(
          "timeout",
          `${WHERE} did not answer within ${
            ms / 1000
          } s (a hung keyring daemon, or an unlock prompt nobody answered).`,
          "Check the keyring daemon, or raise STSH_KEYRING_TIMEOUT (seconds).",
        );
      }
      throw classify(e);
    }
  }

  async get(item: string): Promise<string | null> {
    try {
      return await this.tool(["lookup", "service", "stsh", "account", item]);
    } catch (e) {
      // `lookup` says nothing and exits 1 both for "no such item" and for a locked item
      // whose unlock prompt failed or was dismissed; `search` (no secret needed) tells.
      if (!(e instanceof StoreError) || e.problem !== "failed" || e.detail) throw e;
      if (await this.exists(item)) {
        throw new StoreError(
          "locked",
          `${WHERE} is locked; stsh cannot read its item.`,
          UNLOCK_HINT,
        );
      }
      return null;
    }
  }

  private async exists(item: string): Promise<boolean> {
    return (await this.accounts(["account", item])).includes(item);
  }

  /**
   * Accounts of stsh's items. `search` prints each item's attributes on stderr and its
   * secret on stdout, which goes to /dev/null: the secrets never reach stsh.
   */
  private async accounts(extra: string[] = []): Promise<string[]> {
    let out: string;
    try {
      out = await this.tool(["search", "--all", "service", "stsh", ...extra], undefined, true);
    } catch (e) {
      if (e instanceof StoreError && e.problem === "failed" && !e.detail) return [];
      throw e;
    }
    const names: string[] = [];
    for (const line of out.split("\n")) {
      const m = line.match(/^attribute\.account = (.*)$/);
      if (m) names.push(m[1]);
    }
    return names;
  }

  async set(item: string, secret: string, label: string): Promise<void> {
    await this.tool(["store", `--label=${label}`, "service", "stsh", "account", item], secret);
  }

  async delete(item: string): Promise<boolean> {
    try {
      await this.tool(["clear", "service", "stsh", "account", item]);
      return true;
    } catch (e) {
      if (e instanceof StoreError && e.problem === "failed" && !e.detail) return false;
      throw e;
    }
  }

  async list(): Promise<string[]> {
    return await this.accounts();
  }

  /** One `search`: is the service there and answering? (Unlocking waits for a real item.) */
  async ready(): Promise<void> {
    await this.accounts(["account", "-"]);
  }
}

/** What secret-tool's stderr means, in one sentence with a hint. */
function classify(e: HelperFailed): StoreError {
  const said = oneLine(
    e.stderr.split("\n").map((l) => l.replace(/^secret-tool: /, "").trim())
      .filter((l) => l && !/^\(secret-tool:\d+\)|^\*\*|CRITICAL|WARNING/.test(l)).join(" "),
  ).slice(0, 300);
  const err = (
    problem: ConstructorParameters<typeof StoreError>[0],
    msg: string,
    hint?: string,
  ) => {
    const s = new StoreError(problem, msg, hint);
    s.detail = said;
    return s;
  };
  if (e.code === 127 || e.reason === "start") {
    return err("unavailable", "secret-tool could not be started.", "Install libsecret-tools.");
  }
  if (/was not provided by any \.service files|ServiceUnknown|NameHasNoOwner/i.test(said)) {
    return err(
      "unavailable",
      `${WHERE} is not on the D-Bus session bus (no gnome-keyring, KeePassXC or KWallet running).`,
      "Start one, or set STSH_KEYRING=file.",
    );
  }
  if (
    /autolaunch|Could not connect|Failed to connect|connection refused|No such file/i.test(said)
  ) {
    return err(
      "unavailable",
      `${WHERE} cannot be reached: the D-Bus session bus does not answer (${said}).`,
      "Run stsh inside your desktop session, or set STSH_KEYRING=file.",
    );
  }
  if (/locked|prompt|dismissed|cancel/i.test(said)) {
    return err("locked", `${WHERE} is locked (${said}).`, UNLOCK_HINT);
  }
  const s = new StoreError(
    "failed",
    said ? `${WHERE} refused: ${said}` : `${WHERE}: secret-tool failed (exit code ${e.code}).`,
  );
  s.detail = said;
  return s;
}
