/**
 * Nothing paid for is lost, nothing refused is kept, nothing from outside drives the
 * terminal: state directories that cannot be written, STS answers that are too large or
 * hostile, names and messages with terminal escapes, a tag that is a link.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseExports } from "./support/fixture.ts";
import { tamper } from "./support/tamper.ts";
import { assertNoSecrets, scenario, world } from "./support/world.ts";

const warnings = (stderr: string) => stderr.split("\n").filter((l) => /warning/.test(l));

for (
  const [what, block, reason] of [
    ["the cache directory is a file", "cache", /stsh\/cache is not a directory/],
    ["the replay guard's directory is a file", "mfa", /the replay guard: .*stsh\/mfa is not a/],
    ["the whole state directory is a file", "", /stsh\/cache: a file is in the way/],
  ] as const
) {
  scenario(
    `${what}: the credentials a code paid for are still printed, with one warning`,
    async (w) => {
      const state = w.sb.path(".aws/stsh");
      await Deno.mkdir(state, { recursive: true });
      if (block) await Deno.writeTextFile(join(state, block), "in the way\n");
      else {
        await Deno.remove(state, { recursive: true });
        await Deno.writeTextFile(state, "in the way\n");
      }
      await w.primeCode();
      const r = await w.run(["env", "a"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(parseExports(r.stdout).AWS_SESSION_TOKEN!, /./);
      const lines = warnings(r.stderr);
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /^stsh: warning: the new credentials are used but not saved \(/);
      assert.match(lines[0], reason);
      assert.match(lines[0], /the next run may ask for an MFA code again\.$/);
      assert.equal(w.emu.counts.GetSessionToken, 1);
      assertNoSecrets(r.stderr, w.alice.secretAccessKey);
      // The hook's path too: credentials, not an error.
      await w.primeCode(1);
      const hook = await w.run(["hook", "bash", "--assume", "b"]);
      assert.equal(hook.code, 0, hook.stderr);
      assert.match(parseExports(hook.stdout).AWS_ACCESS_KEY_ID!, /^ASIA/);
    },
  );
}

scenario("a state directory that links to another user's directory is not used", async (w) => {
  const other = w.sb.path("someone-else");
  await Deno.mkdir(other, { mode: 0o755 });
  await Deno.chown(other, 65534, 65534);
  await Deno.remove(w.sb.path(".aws/stsh"), { recursive: true }).catch(() => {});
  await Deno.symlink(other, w.sb.path(".aws/stsh"));
  await w.primeCode();
  const r = await w.run(["env", "a"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    warnings(r.stderr).join("\n"),
    /stsh\/cache is inside \S*someone-else \(\S*stsh is a link to \S*someone-else\), which belongs to another user/,
  );
  assert.deepEqual([...Deno.readDirSync(other)], [], "nothing written there");
});

scenario("credentials STS gives that would be refused are never cached", async (w) => {
  const proxy = tamper(w.emu.url);
  try {
    const env = { AWS_ENDPOINT_URL_STS: proxy.url };
    const roleFiles = () =>
      [...Deno.readDirSync(w.sb.path(".aws/stsh/cache"))]
        .filter((e) => e.name.endsWith(".json") && e.name !== "index.json")
        .map((e) => JSON.parse(Deno.readTextFileSync(w.sb.path(".aws/stsh/cache", e.name))))
        .filter((s) => s.kind === "role");
    // A 300 KB session token: every later exec in a shell holding it would fail (E2BIG).
    proxy.rewrite = (a) =>
      a.action === "AssumeRole"
        ? { ...a, body: a.body.replace(/<SessionToken>/, `$&${"A".repeat(300_000)}`) }
        : a;
    await w.primeCode();
    const big = await w.run(["env", "a"], { env });
    assert.equal(big.code, 1);
    assert.equal(big.stdout, "");
    assert.match(
      big.stderr,
      /^stsh: The credentials STS gave for the role 'a': the session token is \d{6} bytes; stsh refuses values over 32768 bytes/,
    );
    assert.deepEqual(roleFiles(), []);
    // Characters no STS value has (a shell would run them if they were ever unquoted).
    proxy.rewrite = (a) =>
      a.action === "AssumeRole"
        ? { ...a, body: a.body.replace(/<SessionToken>/, "$&$(touch pwned)`id`") }
        : a;
    const odd = await w.run(["env", "a"], { env });
    assert.equal(odd.code, 1);
    assert.match(odd.stderr, /contain unexpected characters; refusing to export them/);
    assert.deepEqual(roleFiles(), []);
    // STS honest again: the cached MFA session still serves, no new code.
    proxy.rewrite = undefined;
    const ok = await w.run(["env", "a"], { env });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(roleFiles().length, 1);
    assert.equal(w.emu.counts.GetSessionToken, 1);
  } finally {
    await proxy.close();
  }
});

scenario("terminal escapes from STS, names and paths are shown, never obeyed", async (w) => {
  const ESC = "\x1b";
  const proxy = tamper(w.emu.url);
  try {
    // An STS error message carrying a title change and a line erase.
    proxy.rewrite = (_a) => ({
      status: 400,
      body:
        `<ErrorResponse><Error><Type>Sender</Type><Code>Weird</Code><Message>no${ESC}]0;pwned\x07${ESC}[2K</Message></Error><RequestId>x</RequestId></ErrorResponse>`,
    });
    await w.primeCode();
    const r = await w.run(["env", "a"], { env: { AWS_ENDPOINT_URL_STS: proxy.url } });
    assert.equal(r.code, 1);
    assert.ok(!r.stderr.includes(ESC), JSON.stringify(r.stderr));
    assert.match(r.stderr, /Weird: no\\x1b\]0;pwned\\x07\\x1b\[2K/);
  } finally {
    await proxy.close();
  }
  // A profile name and a role ARN from the files, in the tables and in an error.
  await Deno.writeTextFile(
    w.env.AWS_SHARED_CREDENTIALS_FILE,
    `\n[evil${ESC}]0;title\x07]\naws_access_key_id = AKIAEVILEVILEVIL0000\naws_secret_access_key = x\n`,
    { append: true },
  );
  await Deno.writeTextFile(
    w.env.AWS_CONFIG_FILE,
    `\n[profile odd]\nrole_arn = arn:aws:iam::123456789012:role/x${ESC}[2J\nsource_profile = me\n`,
    { append: true },
  );
  const list = await w.run(["profiles"]);
  assert.equal(list.code, 0, list.stderr);
  assert.ok(!list.stdout.includes(ESC));
  assert.match(list.stdout, /^evil\\x1b\]0;title\\x07 +keys/m);
  assert.match(list.stdout, /^odd +broken: role_arn is not a role ARN/m);
  const odd = await w.run(["env", "odd"]);
  assert.ok(!odd.stderr.includes(ESC));
  assert.match(odd.stderr, /role\/x\\x1b\[2J/);
  const nope = await w.run(["env", "nope"]);
  assert.ok(!nope.stderr.includes(ESC));
  assert.match(nope.stderr, /evil\\x1b\]0;title\\x07/);
  // A path: the state directory's name reaches a warning.
  const dir = w.sb.path(`state${ESC}[31m`);
  await Deno.writeTextFile(dir, "a file in the way\n");
  await w.primeCode(1); // the last code reached STS (only its answer was rewritten)
  const warn = await w.run(["env", "a"], { env: { STSH_HOME: dir } });
  assert.equal(warn.code, 0, warn.stderr);
  assert.ok(!warn.stderr.includes(ESC), JSON.stringify(warn.stderr));
  assert.match(warn.stderr, /state\\x1b\[31m/);
});

scenario("stsh tag never writes through a link: the target stays as it was", async (w) => {
  const repo = w.sb.path("repo");
  await Deno.mkdir(repo);
  const key = w.sb.path("id_ed25519");
  const secret = "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n-----END OPENSSH PRIVATE KEY-----\n";
  await Deno.writeTextFile(key, secret, { mode: 0o600 });
  await Deno.chmod(key, 0o600);
  await Deno.symlink(key, join(repo, ".aws-profile"));
  const r = await w.run(["tag", "a", repo]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /\.aws-profile is a symbolic link; stsh never writes through a link\./);
  assert.equal(await Deno.readTextFile(key), secret);
  assert.equal((await Deno.stat(key)).mode! & 0o777, 0o600);
  assert.ok((await Deno.lstat(join(repo, ".aws-profile"))).isSymlink);
  // A plain tag is written whole, 0644, and replaces an old one.
  const plain = w.sb.path("plain");
  await Deno.mkdir(plain);
  await Deno.writeTextFile(join(plain, ".aws-profile"), "old\n", { mode: 0o600 });
  const t = await w.run(["tag", "a", plain]);
  assert.equal(t.code, 0, t.stderr);
  assert.equal(await Deno.readTextFile(join(plain, ".aws-profile")), "a\n");
  assert.equal((await Deno.stat(join(plain, ".aws-profile"))).mode! & 0o777, 0o644);
  assert.deepEqual([...Deno.readDirSync(plain)].map((e) => e.name), [".aws-profile"]);
});

// A full disk needs a small file system: a tmpfs in a private mount namespace (root with
// CAP_SYS_ADMIN, as in this project's CI container); elsewhere the test is skipped.
const canMount = await new Deno.Command("unshare", {
  args: ["-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
  stdout: "null",
  stderr: "null",
}).output().then((o) => o.success, () => false);

Deno.test({
  name: "a full disk: the credentials a code paid for are still printed, with one warning",
  ignore: !canMount,
  async fn() {
    const w = await world();
    try {
      const full = w.sb.path("full");
      await Deno.mkdir(full, { mode: 0o700 });
      await w.primeCode();
      const { STSH } = await import("./support/fixture.ts");
      const out = await new Deno.Command("setsid", {
        args: [
          "-w",
          "unshare",
          "-m",
          "sh",
          "-c",
          'mount -t tmpfs -o size=64k,mode=0700 tmpfs "$STSH_HOME" || exit 99; ' +
          'head -c 1M /dev/zero > "$STSH_HOME/filler" 2>/dev/null; exec "$STSH" env a',
        ],
        env: { ...w.env, STSH_HOME: full, STSH },
        clearEnv: true,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, stderr);
      assert.match(parseExports(new TextDecoder().decode(out.stdout)).AWS_SESSION_TOKEN!, /./);
      const lines = warnings(stderr);
      assert.equal(lines.length, 1, stderr);
      assert.match(
        lines[0],
        /^stsh: warning: the new credentials are used but not saved \(the replay guard: Cannot write \S+\/full\/mfa: the disk is full; Cannot write \S+\/full\/cache: the disk is full\); the next run may ask for an MFA code again\.$/,
      );
    } finally {
      await w.close();
    }
  },
});

scenario("--debug stack traces show escapes too", async (w) => {
  await Deno.writeTextFile(
    w.env.AWS_CONFIG_FILE,
    `\n[profile odd]\nrole_arn = arn:aws:iam::123456789012:role/x\x1b]0;t\x07\nsource_profile = me\n`,
    { append: true },
  );
  const r = await w.run(["--debug", "env", "odd"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /ConfigError/);
  assert.ok(!r.stderr.includes("\x1b"), JSON.stringify(r.stderr));
});
