/**
 * `stsh keys`: an IAM user's long-term keys in a secret store instead of
 * ~/.aws/credentials. add (asked on the terminal, or --env), import (moved out of the
 * credentials file: stored, read back, then only those two lines removed), list, rm, and
 * export (the way back). Nothing secret is printed, and a failure never loses the keys: the
 * file is changed only once the store has them, and the store is emptied only once the file
 * has them again.
 */
import { type Config, loadConfig, plan } from "./config.ts";
import { EXIT, StshError } from "./errors.ts";
import { readTextBounded, Unreadable, writeAtomic } from "./fsafe.ts";
import { credentialsFile } from "./paths.ts";
import {
  type BackendName,
  checkKeyShapes,
  chooseBackend,
  keysItem,
  maskKeyId,
  openStore,
  readKeyIndex,
  type SecretStore,
  storedKeys,
  storeForWriting,
  updateKeyIndex,
  whyNoKeyring,
} from "./secrets.ts";
import { notice, openTerminal } from "./tty.ts";
import { visible } from "./text.ts";

type Env = Record<string, string>;

/** Lines of a credentials file with their own line ends, so unchanged bytes stay unchanged. */
function lines(text: string): string[] {
  return text.split(/(?<=\n)/);
}

/** What the SDK's ini parser sees on a line: comment stripped, trimmed. */
const meaning = (line: string) => line.replace(/\r?\n$/, "").split(/(?:^|\s)[;#]/)[0].trim();

interface Section {
  /** Index of the `[profile]` line. */
  header: number;
  /** Index of each key's line within the file, and its value. */
  keys: Map<string, { at: number; value: string }[]>;
}

/** The `[profile]` sections of a credentials file (the SDK's reading, simplified). */
function sections(ls: string[], profile: string): Section[] {
  const out: Section[] = [];
  let cur: Section | undefined;
  ls.forEach((line, i) => {
    const m = meaning(line);
    if (m.startsWith("[") && m.endsWith("]")) {
      cur = m.slice(1, -1) === profile ? { header: i, keys: new Map() } : undefined;
      if (cur) out.push(cur);
      return;
    }
    const eq = m.indexOf("=");
    if (!cur || eq <= 0) return;
    const name = m.slice(0, eq).trim(), value = m.slice(eq + 1).trim();
    cur.keys.set(name, [...(cur.keys.get(name) ?? []), { at: i, value }]);
  });
  return out;
}

async function readCredentials(path: string): Promise<string | null> {
  try {
    return await readTextBounded(path, { maxBytes: 1 << 20, ownedByMe: true, noLinks: true });
  } catch (e) {
    if (e instanceof Unreadable && e.why === "does not exist") return null;
    if (e instanceof Unreadable && e.why === "is a symbolic link") {
      throw new StshError(
        `${visible(path)} is a symbolic link (a dotfiles manager?); stsh does not rewrite it.`,
        "Use `stsh keys add PROFILE` and remove the two lines from the file yourself.",
      );
    }
    throw new StshError(`The AWS credentials file ${(e as Error).message}.`);
  }
}

async function configOrNull(env: Env): Promise<Config | null> {
  try {
    return await loadConfig(env);
  } catch {
    return null;
  }
}

/** Store `keys` for `profile`, read them back, and record them in the key index. */
async function store(
  profile: string,
  keys: { accessKeyId: string; secretAccessKey: string },
  env: Env,
): Promise<SecretStore> {
  checkKeyShapes(keys.accessKeyId, keys.secretAccessKey);
  const s = await storeForWriting({ env, interactive: true });
  const secret = JSON.stringify(keys);
  await s.set(keysItem(profile), secret, `stsh: AWS keys of profile '${profile}'`);
  if ((await s.get(keysItem(profile))) !== secret) {
    throw new StshError(`${s.where} did not give the keys of '${profile}' back; nothing changed.`);
  }
  const before = (await readKeyIndex(env))[profile];
  await updateKeyIndex(env, (index) => {
    index[profile] = {
      keyId: keys.accessKeyId,
      backend: s.name,
      added: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
    };
  });
  if (before && before.backend !== s.name) {
    await (await openStore(before.backend, { env, interactive: true })).delete(keysItem(profile))
      .catch(() => {});
  }
  return s;
}

/** `stsh keys add PROFILE [--env]` */
export async function keysAdd(profile: string, fromEnv: boolean, env: Env): Promise<void> {
  const config = await configOrNull(env);
  const existing = config?.profiles.get(profile)?.keys;
  if (existing && !existing.keyring) {
    throw new StshError(
      `Profile '${profile}' has keys in ${config!.credentialsPath}, and those would win.`,
      `Move them with \`stsh keys import ${profile}\`, or remove them there first.`,
      EXIT.refused,
    );
  }
  let accessKeyId: string, secretAccessKey: string;
  if (fromEnv) {
    accessKeyId = env.AWS_ACCESS_KEY_ID ?? "";
    secretAccessKey = env.AWS_SECRET_ACCESS_KEY ?? "";
    if (!accessKeyId || !secretAccessKey) {
      throw new StshError(
        "--env takes the keys from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and they are not both set.",
        undefined,
        EXIT.refused,
      );
    }
  } else {
    const t = openTerminal();
    if (!t) {
      throw new StshError(
        "There is no terminal to ask for the keys on.",
        "Run it in a terminal, or pass --env with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY set.",
        EXIT.refused,
      );
    }
    try {
      // The key id is shown as typed (it is not secret: CloudTrail logs it); the secret is not.
      accessKeyId = (await t.readLine(`stsh: access key id for '${profile}': `)).trim();
      secretAccessKey = (await t.readSecret(`stsh: secret access key (not shown): `)).trim();
    } finally {
      t.close();
    }
  }
  const s = await store(profile, { accessKeyId, secretAccessKey }, env);
  notice(`the keys of '${profile}' (${maskKeyId(accessKeyId)}) are in ${s.where}.`);
}

/** `stsh keys import PROFILE`: out of the credentials file, into the store. */
export async function keysImport(profile: string, env: Env): Promise<void> {
  const path = credentialsFile(env);
  const text = await readCredentials(path);
  const found = text === null ? [] : sections(lines(text), profile);
  const id = found.flatMap((s) => s.keys.get("aws_access_key_id") ?? []);
  const secret = found.flatMap((s) => s.keys.get("aws_secret_access_key") ?? []);
  if (!id.length && !secret.length) {
    const stored = (await readKeyIndex(env))[profile];
    throw new StshError(
      stored
        ? `The keys of '${profile}' are already in a keyring (${stored.backend}).`
        : `${path} has no keys for profile '${profile}'.`,
      stored ? undefined : "`stsh keys add PROFILE` stores keys typed on the terminal.",
      EXIT.refused,
    );
  }
  if (id.length !== 1 || secret.length !== 1) {
    throw new StshError(
      `${path} has ${id.length} aws_access_key_id and ${secret.length} aws_secret_access_key lines for '${profile}'; stsh moves exactly one of each.`,
      "Tidy the file, then run it again.",
      EXIT.refused,
    );
  }
  if (found.some((s) => s.keys.has("aws_session_token") || s.keys.has("aws_security_token"))) {
    throw new StshError(
      `Profile '${profile}' in ${path} has a session token: those are temporary keys, not an IAM user's.`,
      undefined,
      EXIT.refused,
    );
  }
  const keys = { accessKeyId: id[0].value, secretAccessKey: secret[0].value };
  // The lines found must be the keys the AWS SDK reads for the profile, or stsh would move
  // something else than what is used.
  const sdk = (await configOrNull(env))?.profiles.get(profile)?.keys;
  if (
    sdk && (sdk.accessKeyId !== keys.accessKeyId || sdk.secretAccessKey !== keys.secretAccessKey)
  ) {
    throw new StshError(
      `The lines stsh found for '${profile}' in ${path} are not the keys the AWS SDK reads for it (keys in the config file too?).`,
      "Move them by hand: `stsh keys add PROFILE`, then remove the lines.",
      EXIT.refused,
    );
  }
  const s = await store(profile, keys, env);
  // Only now, with the keys safe in the store, is the file changed: the two lines go, every
  // other byte stays, the mode is kept, and the file is replaced in one rename.
  const now = await readCredentials(path);
  if (now !== text) {
    throw new StshError(
      `${path} changed while stsh was working; the keys are in ${s.where}, and the file was left as it is.`,
      `Run \`stsh keys import ${profile}\` again to remove the lines.`,
    );
  }
  const drop = new Set([id[0].at, secret[0].at]);
  const rest = lines(text!).filter((_, i) => !drop.has(i)).join("");
  await writeAtomic(path, rest, { keepMode: true });
  notice(
    `moved the keys of '${profile}' (${
      maskKeyId(keys.accessKeyId)
    }) into ${s.where} and removed their two lines from ${path}.`,
  );
}

/** `stsh keys export PROFILE`: the way back, into the credentials file. */
export async function keysExport(profile: string, env: Env): Promise<void> {
  const rec = (await readKeyIndex(env))[profile];
  if (!rec) {
    throw new StshError(`No keys of '${profile}' are in a keyring.`, undefined, EXIT.refused);
  }
  const keys = await storedKeys(profile, { accessKeyId: rec.keyId, stored: rec.backend }, {
    env,
    interactive: true,
  });
  const path = credentialsFile(env);
  const text = (await readCredentials(path)) ?? "";
  const ls = lines(text);
  const found = sections(ls, profile);
  if (found.some((s) => s.keys.has("aws_access_key_id") || s.keys.has("aws_secret_access_key"))) {
    throw new StshError(
      `${path} already has keys for '${profile}'; nothing changed.`,
      `Remove them there, or \`stsh keys rm ${profile}\` to drop the stored ones.`,
      EXIT.refused,
    );
  }
  const add = [
    `aws_access_key_id = ${keys.accessKeyId}\n`,
    `aws_secret_access_key = ${keys.secretAccessKey}\n`,
  ];
  if (found.length) {
    const h = found[0].header;
    if (!ls[h].endsWith("\n")) ls[h] += "\n";
    ls.splice(h + 1, 0, ...add);
  } else {
    if (ls.length && !ls[ls.length - 1].endsWith("\n")) ls[ls.length - 1] += "\n";
    ls.push(...(ls.length ? ["\n"] : []), `[${profile}]\n`, ...add);
  }
  await writeAtomic(path, ls.join(""), { keepMode: true, mode: 0o600 });
  const back = (await configOrNull(env))?.profiles.get(profile)?.keys;
  if (!back || back.keyring || back.secretAccessKey !== keys.secretAccessKey) {
    throw new StshError(
      `The AWS SDK does not read the keys stsh wrote back to ${path}; they stay in the keyring too.`,
    );
  }
  await updateKeyIndex(env, (index) => {
    delete index[profile];
  });
  await (await openStore(rec.backend, { env, interactive: true })).delete(keysItem(profile));
  notice(`the keys of '${profile}' are back in ${path}, and no longer in a keyring.`);
}

/** `stsh keys rm PROFILE` */
export async function keysRm(profile: string, env: Env): Promise<void> {
  const rec = (await readKeyIndex(env))[profile];
  if (!rec) {
    throw new StshError(`No keys of '${profile}' are in a keyring.`, undefined, EXIT.refused);
  }
  const s = await openStore(rec.backend, { env, interactive: true });
  const had = await s.delete(keysItem(profile));
  await updateKeyIndex(env, (index) => {
    delete index[profile];
  });
  notice(
    `${had ? "removed" : "forgot"} the keys of '${profile}' (${maskKeyId(rec.keyId)})${
      had ? ` from ${s.where}` : ` (${s.where} no longer had them)`
    }. MFA sessions made with them last until they end (\`stsh clear ${profile}\` ends them now).`,
  );
}

/** `stsh keys list [--verify]`: profile, masked key id, where; never a secret. */
export async function keysList(verify: boolean, env: Env): Promise<string> {
  const index = await readKeyIndex(env);
  const rows: string[][] = [];
  const present = new Map<BackendName, Set<string> | string>();
  if (verify) {
    for (const b of new Set(Object.values(index).map((r) => r.backend))) {
      try {
        present.set(b, new Set(await (await openStore(b, { env, interactive: true })).list()));
      } catch (e) {
        present.set(b, (e as Error).message);
      }
    }
  }
  for (const [profile, r] of Object.entries(index).sort(([a], [b]) => a.localeCompare(b))) {
    const row = [profile, maskKeyId(r.keyId), r.backend, r.added.slice(0, 10) || "-"];
    if (verify) {
      const p = present.get(r.backend);
      row.push(typeof p === "string" ? "unknown" : p?.has(keysItem(profile)) ? "ok" : "MISSING");
    }
    rows.push(row);
  }
  const config = await configOrNull(env);
  for (const [name, p] of [...(config?.profiles ?? [])].sort(([a], [b]) => a.localeCompare(b))) {
    if (p.keys && !p.keys.keyring && !p.keys.sessionToken) {
      rows.push([name, maskKeyId(p.keys.accessKeyId), "plaintext", "-", ...(verify ? ["-"] : [])]);
    }
  }
  const { name } = chooseBackend(env);
  const foot = name
    ? `New keys and MFA sessions go to: ${name} (STSH_KEYRING=${env.STSH_KEYRING || "auto"}).\n`
    : `${whyNoKeyring(env)} MFA sessions stay in 0600 files.\n`;
  if (!rows.length) {
    return "No keys yet. `stsh keys import PROFILE` moves a profile's keys out of ~/.aws/credentials.\n" +
      foot;
  }
  const head = ["PROFILE", "KEY ID", "STORE", "ADDED", ...(verify ? ["CHECK"] : [])];
  const all = [head, ...rows];
  const w = head.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]))).join("  "))
    .join("\n") + "\n" + foot;
}

/** Where a profile's long-term keys live, for `stsh profiles`. */
export function keysWhere(config: Config, name: string, env: Env): string {
  try {
    const b = plan(config, name, env).base;
    if (b.kind !== "keys") return "-";
    return b.keys.keyring ?? (b.keys.sessionToken ? "session keys" : "plaintext");
  } catch {
    return "-";
  }
}
