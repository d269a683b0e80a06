/**
 * The commands as a person uses them: the real AWS CLI reading what stsh exported and
 * calling stsh as credential_process, the MFA question on a real terminal, exec, and the
 * listing commands — against the STS emulator.
 */
import assert from "node:assert/strict";
import { STSH } from "./support/fixture.ts";
import { assertNoSecrets, type World, world } from "./support/world.ts";

const AWS = "/usr/bin/aws";
const haveAws = await Deno.stat(AWS).then(() => true, () => false);

async function sh(w: World, script: string, stdin?: string) {
  const child = new Deno.Command("setsid", {
    args: ["-w", "bash", "-c", script],
    env: { ...w.env, STSH, URL: w.emu.url },
    clearEnv: true,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const wr = child.stdin.getWriter();
    await wr.write(new TextEncoder().encode(stdin));
    await wr.close();
  }
  const o = await child.output();
  const d = new TextDecoder();
  return { code: o.code, stdout: d.decode(o.stdout), stderr: d.decode(o.stderr) };
}

Deno.test({
  name: 'the real AWS CLI signs with what `eval "$(stsh env a)"` exported',
  ignore: !haveAws,
  async fn() {
    const w = await world();
    try {
      await w.primeCode();
      // An AWS_PROFILE left in the environment must not win over the exported keys.
      const r = await sh(
        w,
        `export AWS_PROFILE=me; eval "$("$STSH" env a)" && ${AWS} --endpoint-url "$URL" sts get-caller-identity --output text --query Arn`,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout.trim(), /^arn:aws:sts::123456789012:assumed-role\/a\/stsh-\d+$/);
      assert.ok(w.emu.counts.GetCallerIdentity >= 1);
    } finally {
      await w.close();
    }
  },
});

Deno.test({
  name: "the real AWS CLI uses `credential_process = stsh credential-process a`",
  ignore: !haveAws,
  async fn() {
    const w = await world();
    try {
      await Deno.writeTextFile(
        w.env.AWS_CONFIG_FILE,
        `\n[profile viastsh]\ncredential_process = ${STSH} credential-process a\nregion = us-east-1\n`,
        { append: true },
      );
      await w.primeCode();
      const r = await sh(
        w,
        `${AWS} --profile viastsh --endpoint-url "$URL" sts get-caller-identity --output text --query Arn`,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout.trim(), /assumed-role\/a\//);
      const cp = await w.run(["credential-process", "a"]);
      const j = JSON.parse(cp.stdout);
      assert.equal(j.Version, 1);
      assert.match(j.AccessKeyId, /^ASIA/);
      assert.ok(Date.parse(j.Expiration) > Date.now());
    } finally {
      await w.close();
    }
  },
});

Deno.test("the MFA question is asked on the terminal itself, never on stdout or stderr; Ctrl-C exits 130", async () => {
  const w = await world({ mfaProcess: false });
  try {
    const code = await w.emu.code(w.alice);
    // script(1) gives stsh a real pseudo-terminal as its controlling terminal; stdin, stdout
    // and stderr all go elsewhere, as when an SDK runs `stsh credential-process`.
    const r = await sh(
      w,
      `script -qec '"$STSH" env a > "$HOME/out.txt"' /dev/null; echo "rc=$?"`,
      undefined,
    );
    assert.match(r.stdout, /rc=130|rc=3|rc=1/); // no input at all: it must end, not hang
    const typed = await sh(
      w,
      `(sleep 1; printf '${code}\\r') | script -qec '"$STSH" env a < /dev/null 2> "$HOME/err.txt" > "$HOME/out.txt"' /dev/null; echo "rc=$?"`,
    );
    assert.match(typed.stdout, /stsh: MFA code for a \(arn:aws:iam::123456789012:mfa\/alice\): /);
    assert.match(typed.stdout, /rc=0/);
    const out = await Deno.readTextFile(w.sb.path("out.txt"));
    assert.match(out, /^export AWS_ACCESS_KEY_ID='ASIA/m);
    assert.doesNotMatch(out, /MFA code/);
    assert.doesNotMatch(await Deno.readTextFile(w.sb.path("err.txt")), /MFA code/);
    assertNoSecrets(typed.stdout, w.alice.secretAccessKey);

    await w.run(["clear", "--all"]);
    const ctrlc = await sh(
      w,
      `(sleep 1; printf '\\003') | script -qec '"$STSH" env a < /dev/null 2>/dev/null > "$HOME/out2.txt"' /dev/null; echo "rc=$?"`,
    );
    assert.match(ctrlc.stdout, /rc=130/);
    assert.equal(await Deno.readTextFile(w.sb.path("out2.txt")), "");
  } finally {
    await w.close();
  }
});

Deno.test("exec runs the command with the credentials and returns its exit code", async () => {
  const w = await world();
  try {
    await w.primeCode();
    const show =
      'echo "${AWS_ACCESS_KEY_ID-nokeys} ${AWS_PROFILE-unset} ${AWS_CONTAINER_CREDENTIALS_FULL_URI-none}"; exit 7';
    // Default: the credential endpoint (tests/serve_test.ts has the rest).
    const r = await w.run(["exec", "a", "--", "sh", "-c", show], { env: { AWS_PROFILE: "me" } });
    assert.equal(r.code, 7);
    assert.match(r.stdout, /^nokeys unset http:\/\/127\.0\.0\.1:\d+\/creds\/a$/m);
    // --env: static keys, as before.
    const k = await w.run(["exec", "--env", "a", "--", "sh", "-c", show], {
      env: { AWS_PROFILE: "me" },
    });
    assert.equal(k.code, 7);
    assert.match(k.stdout, /^ASIA\w+ unset none$/m);
    const missing = await w.run(["exec", "a", "--", "no-such-command-xyz"]);
    assert.equal(missing.code, 127);
    assert.match(missing.stderr, /Cannot run no-such-command-xyz/);
  } finally {
    await w.close();
  }
});

Deno.test("profiles, status and clear show sessions and time left, never secrets", async () => {
  const w = await world();
  try {
    await w.primeCode();
    const a = await w.run(["env", "a", "--format", "json"]);
    const secret = JSON.parse(a.stdout).SecretAccessKey;
    const p = await w.run(["profiles"]);
    assert.equal(p.code, 0, p.stderr);
    assert.match(
      p.stdout,
      /^a\s+role\s+yes\s+arn:aws:iam::123456789012:role\/a\s+plaintext\s+\d\d:\d\d \((59|60)m\)$/m,
    );
    assert.match(p.stdout, /^me\s+MFA user\s+yes\s+-\s+plaintext\s+\d\d:\d\d \(1[12]h\d\dm\)$/m);
    assert.equal((await w.run(["profiles", "--names"])).stdout.split("\n")[0], "a");
    const s = await w.run(["status"]);
    assert.match(
      s.stdout,
      /^a\s+role\s+\d\d:\d\d\s+(59|60)m\s+arn:aws:sts::123456789012:assumed-role\/a\//m,
    );
    assert.match(s.stdout, /^me\s+mfa-session/m);
    assertNoSecrets(p.stdout + s.stdout, secret, w.alice.secretAccessKey);
    const c = await w.run(["clear", "a"]);
    assert.match(c.stderr, /forgot 1 cached session\./);
    assert.doesNotMatch((await w.run(["status"])).stdout, /^a\s/m);
    assert.equal((await w.run(["clear"])).code, 2);
    // A name that is no profile (a typo): said, with the names there are.
    const typo = await w.run(["clear", "nosuch"]);
    assert.equal(typo.code, 0);
    assert.match(
      typo.stderr,
      /forgot 0 cached sessions\. There is no profile 'nosuch' in your AWS config\. Known profiles: /,
    );
  } finally {
    await w.close();
  }
});

Deno.test("--help has examples and exit codes; bad usage exits 2", async () => {
  const w = await world();
  try {
    const h = await w.run(["--help"]);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /Examples:[\s\S]*eval "\$\(stsh env prod\)"/);
    assert.match(h.stdout, /Exit codes: 0 ok, 1 error, 2 bad usage/);
    assert.match((await w.run(["--version"])).stdout, /^\d+\.\d+\.\d+\n$/);
    assert.equal((await w.run(["env", "a", "--format", "yaml"])).code, 2);
    assert.equal((await w.run(["frobnicate"])).code, 2);
    assert.equal((await w.run(["env", "$(touch x)"])).code, 2);
  } finally {
    await w.close();
  }
});

Deno.test("help fits 80 columns, never breaks a word, and has examples per command", async () => {
  const w = await world();
  try {
    for (const args of [["--help"], ["env", "--help"], ["init", "--help"], ["exec", "--help"]]) {
      const h = await w.run(args, { env: { COLUMNS: "80" } });
      assert.equal(h.code, 0, args.join(" "));
      for (const line of h.stdout.split("\n")) {
        assert.ok(line.length <= 80, `${args.join(" ")}: ${line.length} columns: ${line}`);
      }
      assert.match(h.stdout, /Examples:\n {2}\S/, args.join(" "));
      // Every word of the main description is whole on some line.
      assert.doesNotMatch(h.stdout, /\w-\n|\bprofil\n/);
    }
    const init = await w.run(["init"]);
    assert.equal(init.code, 2);
    assert.equal(init.stdout, "");
    assert.match(init.stderr, /^stsh: Say which shell: stsh init bash\|zsh\|pwsh\|fish\./);
    // Parser errors speak with the same voice as stsh's own.
    const bad = await w.run(["env", "--bogus"]);
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /^stsh: unknown option '--bogus'\n {2}run `stsh env --help` for usage\n$/,
    );
  } finally {
    await w.close();
  }
});

Deno.test("AWS CLI habits: --profile anywhere, --debug after the command, exec takes $AWS_PROFILE", async () => {
  const w = await world();
  try {
    await w.primeCode();
    const byName = await w.run(["env", "--profile", "a", "--format", "json"]);
    assert.equal(byName.code, 0, byName.stderr);
    assert.match(JSON.parse(byName.stdout).Arn, /assumed-role\/a\//);
    const eq = await w.run(["env", "--format", "json", "--profile=b"]);
    assert.match(JSON.parse(eq.stdout).Arn, /assumed-role\/b\//);
    const dbg = await w.run(["env", "a", "--debug"]);
    assert.equal(dbg.code, 0, dbg.stderr);
    // What a person debugging needs: files read, the plan, endpoint, cache file, timings.
    assert.match(
      dbg.stderr,
      /^stsh: debug: config: \S+\/\.aws\/config, credentials: \S+ \(\d+ profiles/m,
    );
    assert.match(
      dbg.stderr,
      /^stsh: debug: plan for 'a': keys of 'me' \(AKIA…\w{4}\) -> a \(arn:aws:iam::\d{12}:role\/a\); MFA arn:\S+ via mfa_process; STS http:\/\/127\.0\.0\.1:\d+ in us-east-1/m,
    );
    assert.match(
      dbg.stderr,
      /^stsh: debug: cache hit: role 'a' until \S+ \(\S+\/cache\/[0-9a-f]{40}\.json\)$/m,
    );
    assert.match(dbg.stderr, /^stsh: debug: resolved 'a' in \d+ ms$/m);
    assertNoSecrets(dbg.stderr, w.alice.secretAccessKey, w.alice.accessKeyId);
    assertNoSecrets(dbg.stderr, JSON.parse(byName.stdout).SecretAccessKey);
    const two = await w.run(["env", "a", "--profile", "b"]);
    assert.equal(two.code, 2);
    assert.match(two.stderr, /^stsh: Two profiles given: 'a' and --profile 'b'\./);
    // exec without a profile: $AWS_PROFILE, as every AWS tool does; `true` is the command.
    const ex = await w.run([
      "exec",
      "--",
      "sh",
      "-c",
      'echo "$STSH_PROFILE_SEEN${AWS_ACCESS_KEY_ID:+keys}${AWS_CONTAINER_CREDENTIALS_FULL_URI:+endpoint}"',
    ], {
      env: { AWS_PROFILE: "b" },
    });
    assert.equal(ex.code, 0, ex.stderr);
    assert.match(ex.stdout, /^(keys|endpoint)\n$/);
    const exp = await w.run(["exec", "--profile", "a", "--", "true"]);
    assert.equal(exp.code, 0, exp.stderr);
    // exec's options may come after the profile, or with the profile from $AWS_PROFILE.
    const keysOf =
      'echo "${AWS_ACCESS_KEY_ID:+keys}${AWS_CONTAINER_CREDENTIALS_FULL_URI:+endpoint}"';
    for (
      const [args, env] of [
        [["exec", "a", "--env", "--", "sh", "-c", keysOf], {}],
        [["exec", "--env", "--", "sh", "-c", keysOf], { AWS_PROFILE: "a" }],
        [["exec", "--profile", "a", "--env", "--", "sh", "-c", keysOf], {}],
      ] as [string[], Record<string, string>][]
    ) {
      const r = await w.run(args, { env });
      assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
      assert.equal(r.stdout, "keys\n", args.join(" "));
    }
    assert.equal((await w.run(["exec", "--", "true"], { env: { AWS_PROFILE: "nope" } })).code, 1);
  } finally {
    await w.close();
  }
});

Deno.test("stsh complete: subcommands, flags, --format values, shells and profile names", async () => {
  const w = await world();
  try {
    const c = async (...words: string[]) =>
      (await w.run(["complete", "--", ...words])).stdout.split("\n").filter(Boolean);
    assert.deepEqual(await c("stsh", "cre"), ["credential-process"]);
    assert.ok((await c("stsh", "")).includes("env"));
    assert.ok(!(await c("stsh", "")).includes("hook"), "internal commands stay hidden");
    assert.deepEqual(await c("stsh", "env", ""), [
      "a",
      "b",
      "chain",
      "demands",
      "long",
      "me",
      "robot",
      "toolong",
    ]);
    assert.deepEqual(await c("stsh", "env", "l"), ["long"]);
    assert.deepEqual(await c("stsh", "env", "--format", "p"), ["powershell", "process"]);
    assert.deepEqual(await c("stsh", "env", "--f"), ["--force", "--format"]);
    assert.deepEqual(await c("stsh", "exec", "--profile", "r"), ["robot"]);
    assert.deepEqual(await c("stsh", "init", ""), ["bash", "fish", "pwsh", "zsh"]);
    assert.deepEqual(await c("assume", ""), [
      "--clear",
      "a",
      "b",
      "chain",
      "demands",
      "long",
      "me",
      "robot",
      "toolong",
    ]);
    assert.deepEqual(await c("assume", "a", ""), []);
    assert.deepEqual(await c("stsh", "exec", "a", "--", ""), []);
  } finally {
    await w.close();
  }
});

Deno.test("exec: a Ctrl-C meant for the command is not sent to it a second time", async () => {
  const w = await world();
  try {
    await w.primeCode();
    assert.equal((await w.run(["env", "a"])).code, 0);
    // Only stsh gets SIGINT here (as if forwarded by nobody): it must neither die nor pass
    // it on, so the command finishes on its own terms.
    const child = new Deno.Command(STSH, {
      args: ["exec", "a", "--", "sh", "-c", 'touch "$HOME/started"; sleep 1.5; exit 5'],
      env: w.env,
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const started = w.sb.path("started");
    for (let i = 0; i < 400 && !(await Deno.stat(started).catch(() => null)); i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    child.kill("SIGINT");
    const out = await child.output();
    assert.equal(out.code, 5, new TextDecoder().decode(out.stderr));
  } finally {
    await w.close();
  }
});

Deno.test("a refused code is asked again with AWS's reason; a wrong device is not", async () => {
  const w = await world({ mfaProcess: false });
  try {
    const code = await w.emu.code(w.alice);
    const wrong = code === "000000" ? "111111" : "000000";
    const r = await sh(
      w,
      `(sleep 1; printf '${wrong}\\r'; sleep 3; printf '${code}\\r') | script -qec '"$STSH" env a < /dev/null 2>/dev/null > "$HOME/out.txt"' /dev/null; echo "rc=$?"`,
    );
    assert.match(r.stdout, /rc=0/);
    assert.equal(r.stdout.match(/MFA code for a /g)?.length, 2);
    // Between tries: the stsh prefix, AWS's own reason, and which try this is.
    assert.match(
      r.stdout,
      /stsh: GetSessionToken for 'me': AWS refused the MFA code \(wrong, expired or already used\): "MultiFactorAuthentication failed with invalid MFA one time pass code\.?" Try 2 of 3\./,
    );
    assert.match(await Deno.readTextFile(w.sb.path("out.txt")), /^export AWS_ACCESS_KEY_ID='ASIA/m);

    await Deno.writeTextFile(
      w.env.AWS_CONFIG_FILE,
      `\n[profile ghost]\nrole_arn = ${w.roles.a.arn}\nsource_profile = me\nmfa_serial = arn:aws:iam::123456789012:mfa/ghost\n`,
      { append: true },
    );
    const next = await w.emu.code(w.alice, 1);
    const g = await sh(
      w,
      `(sleep 1; printf '${next}\\r'; sleep 3; printf '${next}\\r') | script -qec '"$STSH" env ghost < /dev/null > /dev/null' /dev/null; echo "rc=$?"`,
    );
    assert.match(g.stdout, /rc=1/);
    assert.equal(g.stdout.match(/MFA code for ghost /g)?.length, 1, g.stdout);
    assert.match(g.stdout, /does not know this MFA device/);
  } finally {
    await w.close();
  }
});

Deno.test("a state directory under /dev: one line that names the path, no Deno advice", async () => {
  const w = await world();
  try {
    const r = await w.run(["status"], { env: { STSH_HOME: "/dev/null" } });
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^stsh: cannot use '\/dev\/null\/cache': stsh does not read or write special files/,
    );
    assert.doesNotMatch(r.stderr, /allow-all|unexpected/);
    assert.equal(r.stderr.trim().split("\n").length, 1);
  } finally {
    await w.close();
  }
});

Deno.test("an empty profile name is refused, not read as 'default'; keys add points to its own help", async () => {
  const w = await world();
  try {
    for (const args of [["env", ""], ["credential-process", ""]]) {
      const r = await w.run(args);
      assert.equal(r.code, 2, args.join(" "));
      assert.match(r.stderr, /empty profile name/);
      assert.equal(r.stdout, "");
    }
    const k = await w.run(["keys", "add"]);
    assert.equal(k.code, 2);
    assert.match(k.stderr, /run `stsh keys add --help` for usage/);
  } finally {
    await w.close();
  }
});
