/** `stsh doctor`, through the real program: healthy, and with each kind of problem. */
import assert from "node:assert/strict";
import { world } from "./support/world.ts";

const HOOK_OK = "shell=bash version=5.2.15 mode=keys hook=first";

Deno.test("doctor: a healthy setup exits 0 and shows versions, profiles, state, keyring, hook", async () => {
  const w = await world();
  try {
    await w.primeCode();
    assert.equal((await w.run(["env", "a"])).code, 0); // makes the state directory
    const r = await w.run(["doctor"], { env: { STSH_HOOK_STATE: HOOK_OK } });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^ok {4}stsh \d+\.\d+\.\d+ on Deno \d/m);
    assert.match(
      r.stdout,
      /^ok {4}profile 'a': role, arn:aws:iam::\d{12}:role\/a, MFA arn:aws:iam::\d{12}:mfa\/alice, keys: plaintext$/m,
    );
    assert.match(r.stdout, /^ok {4}.*\/\.aws\/stsh: private \(0700\) and yours$/m);
    assert.match(r.stdout, /^ok {4}hook: bash 5\.2\.15, keys mode, first among prompt hooks$/m);
    assert.match(r.stdout, /\nAll good\.\n$/);
    // A plain substring test: a random secret can hold `+` or `/`, which a RegExp would read.
    assert.ok(!r.stdout.includes(w.alice.secretAccessKey.slice(0, 12)), "the secret was printed");
  } finally {
    await w.close();
  }
});

Deno.test("doctor: a broken profile, a wide state dir and a replaced hook are each a FAIL with a fix", async () => {
  const w = await world();
  try {
    await w.primeCode();
    assert.equal((await w.run(["env", "a"])).code, 0);
    await Deno.writeTextFile(
      w.env.AWS_CONFIG_FILE,
      "\n[profile odd]\nrole_arn = not-an-arn\nsource_profile = me\n",
      { append: true },
    );
    await Deno.chmod(w.env.STSH_HOME, 0o755);
    await Deno.chmod(w.env.AWS_SHARED_CREDENTIALS_FILE, 0o644);
    const r = await w.run(["doctor"], {
      env: { STSH_HOOK_STATE: "shell=zsh version=5.9 mode=serve hook=missing" },
    });
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, /^FAIL {2}profile 'odd': .*role_arn/m);
    // The other profiles still read fine.
    assert.match(r.stdout, /^ok {4}profile 'a': role/m);
    assert.match(
      r.stdout,
      /^FAIL {2}.*stsh can be entered by others \(mode 755\)\n {6}→ chmod 700 /m,
    );
    assert.match(
      r.stdout,
      /^FAIL {2}hook: zsh 5\.9, endpoint \(--serve\) mode, but something replaced it/m,
    );
    // Long-term keys others can read: a warning with the fix (not one of the problems).
    assert.match(
      r.stdout,
      /^warn {2}AWS credentials file .* can be read by other users \(mode 0644\); it holds secrets\n {6}→ chmod 600 .*stsh keys import PROFILE/m,
    );
    assert.match(r.stdout, /\n3 problems found\.\n$/);
    // Without the shell function, it says how to load the hook (information, not a failure).
    await Deno.chmod(w.env.STSH_HOME, 0o700);
    const plain = await w.run(["doctor"]);
    assert.match(plain.stdout, /^info {2}no shell hook reported/m);
    assert.match(plain.stdout, /eval "\$\(stsh init bash\)"/);
  } finally {
    await w.close();
  }
});

Deno.test("doctor: a config that is a FIFO is refused at once, in one line", async () => {
  const w = await world();
  try {
    const fifo = w.sb.path("fifo-config");
    assert.ok((await new Deno.Command("mkfifo", { args: [fifo] }).output()).success);
    const t0 = performance.now();
    const r = await w.run(["doctor"], { env: { AWS_CONFIG_FILE: fifo } });
    assert.ok(performance.now() - t0 < 10_000, "doctor hung on a FIFO");
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^FAIL {2}AWS config file: .*fifo-config is not a regular file$/m);
  } finally {
    await w.close();
  }
});
