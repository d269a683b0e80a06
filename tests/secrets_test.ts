/**
 * lib/secrets.ts and its backends, for real: the Secret Service is a gnome-keyring-daemon in
 * a private D-Bus session (tests/support/keyring.ts); the encrypted file is a real file.
 */
import assert from "node:assert/strict";
import {
  checkKeyShapes,
  maskKeyId,
  openStore,
  PassphraseNeeded,
  type SecretStore,
  StoreError,
} from "../lib/secrets.ts";
import { startKeyring } from "./support/keyring.ts";

async function home(): Promise<string> {
  return await Deno.realPath(await Deno.makeTempDir({ prefix: "stsh-secrets-" }));
}

const SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

function baseEnv(h: string, extra: Record<string, string> = {}): Record<string, string> {
  return { HOME: h, STSH_HOME: `${h}/.aws/stsh`, PATH: Deno.env.get("PATH")!, ...extra };
}

async function roundTrip(store: SecretStore) {
  assert.equal(await store.get("keys:me"), null);
  const odd = `{"a":"${SECRET}"}\nline two 'quoted' "double" $HOME \`x\``;
  await store.set("keys:me", odd, "stsh: keys of 'me'");
  await store.set("mfa-session:0123", "token", "stsh: MFA session");
  assert.equal(await store.get("keys:me"), odd);
  await store.set("keys:me", "replaced", "stsh: keys of 'me'");
  assert.equal(await store.get("keys:me"), "replaced");
  assert.deepEqual((await store.list()).sort(), ["keys:me", "mfa-session:0123"]);
  assert.equal(await store.delete("keys:me"), true);
  assert.equal(await store.delete("keys:me"), false);
  assert.equal(await store.get("keys:me"), null);
  assert.deepEqual(await store.list(), ["mfa-session:0123"]);
}

/** Every file under `dir`, read as bytes (sockets and the like skipped). */
async function allFiles(dir: string): Promise<{ path: string; text: string }[]> {
  const out: { path: string; text: string }[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...await allFiles(p));
    else if (e.isFile) {
      out.push({ path: p, text: new TextDecoder().decode(await Deno.readFile(p)) });
    }
  }
  return out;
}

Deno.test("secret service: set, get, replace, list, delete against a real gnome-keyring", async () => {
  const h = await home();
  const kr = await startKeyring(h);
  try {
    const store = await openStore("secret-service", {
      env: baseEnv(h, kr.env),
      interactive: false,
    });
    await roundTrip(store);
    // gnome-keyring's own files hold no plaintext.
    const files = await allFiles(h);
    assert.ok(files.some((f) => f.path.endsWith("login.keyring")), "the keyring file exists");
    for (const f of files) assert.ok(!f.text.includes("token"), `${f.path} holds a secret`);
  } finally {
    await kr.close();
    await Deno.remove(h, { recursive: true });
  }
});

Deno.test("secret service: the secret goes on stdin, never in secret-tool's argv", async () => {
  const h = await home();
  const kr = await startKeyring(h);
  try {
    // A secret-tool first on PATH that logs its argv and stdin, then runs the real one.
    const bin = `${h}/bin`;
    await Deno.mkdir(bin);
    await Deno.writeTextFile(
      `${bin}/secret-tool`,
      `#!/bin/sh\nprintf '%s\\n' "$*" >> ${h}/argv.log\ntee -a ${h}/stdin.log | /usr/bin/secret-tool "$@"\n`,
      { mode: 0o755 },
    );
    const env = baseEnv(h, { ...kr.env, PATH: `${bin}:${Deno.env.get("PATH")}` });
    const store = await openStore("secret-service", { env, interactive: false });
    await store.set("keys:me", SECRET, "label");
    assert.equal(await store.get("keys:me"), SECRET);
    const argv = await Deno.readTextFile(`${h}/argv.log`);
    assert.match(argv, /^store --label=label service stsh account keys:me$/m);
    assert.ok(!argv.includes(SECRET), "no secret in argv");
    assert.ok((await Deno.readTextFile(`${h}/stdin.log`)).includes(SECRET), "fed on stdin");
  } finally {
    await kr.close();
    await Deno.remove(h, { recursive: true });
  }
});

Deno.test("secret service: locked, absent, unreachable and hung keyrings fail in one sentence", async () => {
  const h = await home();
  try {
    // Locked: the item is there, but its unlock prompt cannot be shown.
    const kr = await startKeyring(h);
    try {
      const env = baseEnv(h, kr.env);
      const store = await openStore("secret-service", { env, interactive: false });
      await store.set("keys:me", SECRET, "label");
      await kr.lock();
      await assert.rejects(
        store.get("keys:me"),
        (e) => e instanceof StoreError && e.problem === "locked" && /is locked/.test(e.message),
      );
      await assert.rejects(
        store.set("keys:you", SECRET, "label"),
        (e) => e instanceof StoreError && e.problem === "locked",
      );
    } finally {
      await kr.close();
    }

    // A bus without any Secret Service.
    const bare = await startKeyring(h, { provider: false });
    try {
      const store = await openStore("secret-service", {
        env: baseEnv(h, bare.env),
        interactive: false,
      });
      await assert.rejects(
        store.get("keys:me"),
        (e) =>
          e instanceof StoreError && e.problem === "unavailable" &&
          /not on the D-Bus session bus/.test(e.message) && /STSH_KEYRING=file/.test(e.hint!),
      );
    } finally {
      await bare.close();
    }

    // No bus at all.
    const gone = await openStore("secret-service", {
      env: baseEnv(h, { DBUS_SESSION_BUS_ADDRESS: `unix:path=${h}/no-such-bus` }),
      interactive: false,
    });
    await assert.rejects(
      gone.set("keys:me", SECRET, "label"),
      (e) =>
        e instanceof StoreError && e.problem === "unavailable" &&
        /cannot be reached/.test(e.message),
    );

    // A "daemon" that accepts the connection and never says a word: the deadline ends it.
    const path = `${h}/hung-bus`;
    const listener = Deno.listen({ transport: "unix", path });
    const held: Deno.Conn[] = [];
    (async () => {
      for await (const c of listener) held.push(c);
    })().catch(() => {});
    try {
      const hung = await openStore("secret-service", {
        env: baseEnv(h, {
          DBUS_SESSION_BUS_ADDRESS: `unix:path=${path}`,
          STSH_KEYRING_TIMEOUT: "2",
        }),
        interactive: false,
      });
      await assert.rejects(
        hung.get("keys:me"),
        (e) => e instanceof StoreError && e.problem === "timeout" && /within 2 s/.test(e.message),
      );
    } finally {
      listener.close();
      for (const c of held) c.close();
    }
  } finally {
    await Deno.remove(h, { recursive: true });
  }
});

Deno.test("encrypted file: round trip, 0600, no plaintext, wrong passphrase refused", async () => {
  const h = await home();
  try {
    const env = baseEnv(h, { STSH_KEYRING_PASSPHRASE: "correct horse battery" });
    const store = await openStore("file", { env, interactive: false });
    await roundTrip(store);
    await store.set("keys:me", SECRET, "stsh: keys of 'me'");
    const path = `${h}/.aws/stsh/keyring.json`;
    const text = await Deno.readTextFile(path);
    for (const s of [SECRET, "keys:me", "mfa-session", "token"]) {
      assert.ok(!text.includes(s), `the file shows ${s}`);
    }
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.equal(JSON.parse(text).kdf.name, "scrypt");

    // A second process (a new store) with the same passphrase reads it.
    const again = await openStore("file", { env: { ...env }, interactive: false });
    assert.equal(await again.get("keys:me"), SECRET);

    const wrong = await openStore("file", {
      env: { ...env, STSH_KEYRING_PASSPHRASE: "wrong" },
      interactive: false,
    });
    await assert.rejects(
      wrong.get("keys:me"),
      (e) =>
        e instanceof StoreError && e.problem === "passphrase" &&
        /does not open the encrypted keyring/.test(e.message),
    );
    // Refused writes leave the file as it was.
    await assert.rejects(wrong.set("keys:x", SECRET, "x"), StoreError);
    assert.equal(await Deno.readTextFile(path), text);

    // No passphrase and no question allowed: the hook's "ask again with --prompt".
    const hook = await openStore("file", {
      env: baseEnv(h),
      interactive: false,
    });
    await assert.rejects(hook.get("keys:me"), PassphraseNeeded);

    // A changed byte in the ciphertext is caught by AES-GCM, not decrypted into junk.
    const o = JSON.parse(text);
    const bytes = Uint8Array.from(atob(o.data), (c) => c.charCodeAt(0));
    bytes[5] ^= 1;
    o.data = btoa(String.fromCharCode(...bytes));
    await Deno.writeTextFile(path, JSON.stringify(o), { mode: 0o600 });
    await assert.rejects(
      (await openStore("file", { env, interactive: false })).get("keys:me"),
      (e) => e instanceof StoreError && e.problem === "passphrase",
    );
  } finally {
    await Deno.remove(h, { recursive: true });
  }
});

Deno.test("key shapes are checked before anything is stored", () => {
  checkKeyShapes("AKIAIOSFODNN7EXAMPLE", SECRET);
  assert.throws(() => checkKeyShapes("ASIAIOSFODNN7EXAMPLE", SECRET), /temporary credentials/);
  assert.throws(() => checkKeyShapes("AKIAshort", SECRET), /not an access key id/);
  assert.throws(() => checkKeyShapes("XKIAIOSFODNN7EXAMPLE", SECRET), /not starting with AKIA/);
  assert.throws(() => checkKeyShapes("AKIAIOSFODNN7EXAMPLE", SECRET.slice(1)), /got 39/);
  assert.throws(() => checkKeyShapes("AKIAIOSFODNN7EXAMPLE", SECRET.slice(1) + "!"), /other/);
  assert.equal(maskKeyId("AKIAIOSFODNN7EXAMPLE"), "AKIA…MPLE");
});
