/**
 * An encrypted file, for machines without a keyring: `~/.aws/stsh/keyring.json`, 0600.
 * The items (names, labels, secrets) are one AES-256-GCM ciphertext under a key derived
 * from a passphrase with scrypt (N = 2^17, r = 8, p = 1: 128 MiB and about a second, the
 * OWASP minimum; the parameters are stored in the file, which authenticates them). The
 * passphrase is asked on the terminal, or taken from STSH_KEYRING_PASSPHRASE (weaker: any
 * process that can read the environment has it). A new IV on every write; the file is
 * replaced atomically under a lock, so two stsh processes never lose each other's items.
 */
import { Cancelled, StshError } from "../errors.ts";
import { readTextBounded, Unreadable, writeAtomic } from "../fsafe.ts";
import { join, privateDir, stateDir } from "../paths.ts";
import {
  keyringTimeoutMs,
  PassphraseNeeded,
  type SecretStore,
  StoreError,
  type StoreOptions,
  withFileLock,
} from "../secrets.ts";
import { openTerminal, type Terminal } from "../tty.ts";

const FORMAT = "stsh-keyring";
const KDF = { name: "scrypt", N: 2 ** 17, r: 8, p: 1 } as const;
const enc = new TextEncoder();
const dec = new TextDecoder();

interface Kdf {
  name: "scrypt";
  N: number;
  r: number;
  p: number;
  salt: string;
}

interface Sealed {
  format: typeof FORMAT;
  version: 1;
  kdf: Kdf;
  cipher: "AES-256-GCM";
  iv: string;
  data: string;
}

type Items = Record<string, { secret: string; label: string }>;

const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
const unb64 = (s: string): Uint8Array<ArrayBuffer> =>
  Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

/** The header the ciphertext is bound to (additional data): parameters cannot be swapped. */
const aad = (s: Pick<Sealed, "format" | "version" | "kdf" | "cipher">) =>
  enc.encode(JSON.stringify([s.format, s.version, s.kdf, s.cipher]));

async function deriveKey(passphrase: string, kdf: Kdf): Promise<CryptoKey> {
  if (kdf.name !== "scrypt" || kdf.N > 2 ** 20 || kdf.r > 32 || kdf.p > 16) {
    throw new StshError("The encrypted keyring names a key derivation stsh does not use.");
  }
  const { scrypt } = await import("node:crypto");
  const raw: Uint8Array<ArrayBuffer> = await new Promise((resolve, reject) =>
    scrypt(
      passphrase.normalize("NFC"),
      unb64(kdf.salt),
      32,
      { N: kdf.N, r: kdf.r, p: kdf.p, maxmem: 256 * kdf.N * kdf.r + (1 << 20) },
      (e, key) => e ? reject(e) : resolve(new Uint8Array(key)),
    )
  );
  return await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
}

export class FileStore implements SecretStore {
  readonly name = "file" as const;
  readonly path: string;
  readonly where: string;
  /** The key, for the salt it was derived with: derived once per process. */
  private key?: { salt: string; key: CryptoKey };
  private terminal: Terminal | null | undefined;

  constructor(private readonly opts: StoreOptions) {
    this.path = join(stateDir(opts.env), "keyring.json");
    this.where = `the encrypted file ${this.path}`;
  }

  private async readSealed(): Promise<Sealed | null> {
    let text: string;
    try {
      text = await readTextBounded(this.path, {
        maxBytes: 4 << 20,
        ownedByMe: true,
        noLinks: true,
      });
    } catch (e) {
      if (e instanceof Unreadable && e.why === "does not exist") return null;
      throw new StoreError("failed", `The encrypted keyring ${(e as Error).message}.`);
    }
    try {
      const s = JSON.parse(text) as Sealed;
      if (
        s.format === FORMAT && s.version === 1 && s.cipher === "AES-256-GCM" &&
        [s.iv, s.data, s.kdf?.salt].every((x) => typeof x === "string" && unb64(x).length > 0)
      ) return s;
    } catch { /* below */ }
    throw new StoreError(
      "failed",
      `${this.path} is not an stsh encrypted keyring (damaged, or from a newer stsh).`,
    );
  }

  private ask(prompt: string): Promise<string> {
    this.terminal ??= openTerminal();
    // No terminal: exit 3, as for an MFA code that cannot be asked.
    if (!this.terminal) throw new PassphraseNeeded(this.path);
    return this.terminal.readSecret(prompt);
  }

  /** Where the passphrase comes from: the environment, else the terminal (when allowed). */
  private source(): "env" | "terminal" {
    if (this.opts.env.STSH_KEYRING_PASSPHRASE) return "env";
    if (!this.opts.interactive) throw new PassphraseNeeded(this.path);
    return "terminal";
  }

  private async open(s: Sealed, key: CryptoKey): Promise<Items | null> {
    try {
      const plain = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: unb64(s.iv), additionalData: aad(s) },
        key,
        unb64(s.data),
      );
      const o = JSON.parse(dec.decode(plain));
      return o && typeof o.items === "object" ? o.items as Items : {};
    } catch {
      return null;
    }
  }

  /** The items of an existing file, deriving (and remembering) the key as needed. */
  private async unseal(s: Sealed): Promise<Items> {
    if (this.key?.salt === s.kdf.salt) {
      const items = await this.open(s, this.key.key);
      if (items) return items;
    }
    const from = this.source();
    for (let tries = 1;; tries++) {
      const pass = from === "env" ? this.opts.env.STSH_KEYRING_PASSPHRASE : await this.ask(
        `stsh: passphrase of the encrypted keyring ${this.path}${tries > 1 ? " (again)" : ""}: `,
      );
      if (pass === "") throw new Cancelled();
      const key = await deriveKey(pass, s.kdf);
      const items = await this.open(s, key);
      if (items) {
        this.key = { salt: s.kdf.salt, key };
        return items;
      }
      if (from === "env") {
        throw new StoreError(
          "passphrase",
          `STSH_KEYRING_PASSPHRASE does not open the encrypted keyring ${this.path} (wrong passphrase, or the file was changed).`,
          "Set the passphrase the keyring was made with.",
        );
      }
      if (tries >= 3) {
        throw new StoreError(
          "passphrase",
          `Wrong passphrase for the encrypted keyring ${this.path} (three tries).`,
          "Nothing was changed. If it is lost, move the file away and `stsh keys add` again.",
        );
      }
      this.terminal?.write("That passphrase does not open it.\n");
    }
  }

  /** A new keyring's key: the passphrase asked twice (or taken from the environment). */
  private async newKey(): Promise<{ salt: string; key: CryptoKey }> {
    const salt = b64(crypto.getRandomValues(new Uint8Array(16)));
    let pass: string;
    if (this.source() === "env") pass = this.opts.env.STSH_KEYRING_PASSPHRASE;
    else {
      while (true) {
        pass = await this.ask(`stsh: a passphrase for a new encrypted keyring ${this.path}: `);
        if (pass === "") throw new Cancelled();
        if ([...pass].length < 8) {
          this.terminal!.write("At least 8 characters, please.\n");
          continue;
        }
        if ((await this.ask("stsh: the same passphrase again: ")) === pass) break;
        this.terminal!.write("The two differ; once more.\n");
      }
    }
    return { salt, key: await deriveKey(pass, { ...KDF, salt }) };
  }

  private async seal(items: Items, k: { salt: string; key: CryptoKey }): Promise<void> {
    const head = {
      format: FORMAT,
      version: 1,
      kdf: { ...KDF, salt: k.salt },
      cipher: "AES-256-GCM",
    } as const;
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const data = new Uint8Array(
      await crypto.subtle.encrypt(
        { name: "AES-GCM", iv, additionalData: aad(head) },
        k.key,
        enc.encode(JSON.stringify({ items })),
      ),
    );
    const sealed: Sealed = { ...head, iv: b64(iv), data: b64(data) };
    await privateDir(stateDir(this.opts.env));
    await writeAtomic(this.path, JSON.stringify(sealed) + "\n", { mode: 0o600 });
  }

  /** Read, change and write back the items under the keyring's lock. */
  private async change<T>(fn: (items: Items) => T): Promise<T> {
    await privateDir(stateDir(this.opts.env));
    return await withFileLock(`${this.path}.lock`, keyringTimeoutMs(this.opts.env), async () => {
      const s = await this.readSealed();
      let items: Items = {};
      if (s) items = await this.unseal(s);
      else this.key = await this.newKey();
      const out = fn(items);
      await this.seal(items, this.key!);
      return out;
    });
  }

  async get(item: string): Promise<string | null> {
    const s = await this.readSealed();
    if (!s) return null;
    return (await this.unseal(s))[item]?.secret ?? null;
  }

  async set(item: string, secret: string, label: string): Promise<void> {
    await this.change((items) => {
      items[item] = { secret, label };
    });
  }

  async delete(item: string): Promise<boolean> {
    if (!(await this.readSealed())) return false;
    return await this.change((items) => {
      const had = item in items;
      delete items[item];
      return had;
    });
  }

  async list(): Promise<string[]> {
    const s = await this.readSealed();
    return s ? Object.keys(await this.unseal(s)).sort() : [];
  }

  /** Ask the passphrase now (and make the file, when there is none): before a code is spent. */
  async ready(): Promise<void> {
    const s = await this.readSealed();
    if (s) await this.unseal(s);
    else await this.change(() => {});
  }
}
