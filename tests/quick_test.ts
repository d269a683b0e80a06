/**
 * The quick path (lib/quick.ts) against the full CLI: the same command lines run through both
 * (STSH_NO_QUICK=1 turns the quick path off) must give the same stdout, stderr and exit code;
 * the forms the quick path takes must really be answered by it (the full path rewrites the
 * cache index on every resolve, the quick path never writes), and everything else — unknown
 * flags, broken forms, misses, stale stamps, damaged or foreign cache files — must reach the
 * full CLI untouched.
 */
import assert from "node:assert/strict";
import { configStamp } from "../lib/paths.ts";
import { parseQuick, quickCredentials } from "../lib/quick.ts";
import { TAG_FILE } from "../lib/trust.ts";
import { sandbox, stsh } from "./support/fixture.ts";
import { type World, world } from "./support/world.ts";

// ---------------------------------------------------------------------------------------
// Arguments

Deno.test("parseQuick: the forms it takes, read as the CLI reads them", () => {
  const env = { AWS_PROFILE: "fromenv" };
  const cases: [string[], unknown][] = [
    [["current"], { command: "current" }],
    [["env"], { command: "env", profile: "fromenv", format: "env" }],
    [["env", "a"], { command: "env", profile: "a", format: "env" }],
    [["env", "--profile", "a"], { command: "env", profile: "a", format: "env" }],
    [["env", "--profile=a", "a"], { command: "env", profile: "a", format: "env" }],
    [["env", "a", "--profile", "a", "--profile=a"], {
      command: "env",
      profile: "a",
      format: "env",
    }],
    [["env", "-f", "json", "a"], { command: "env", profile: "a", format: "json" }],
    [["env", "a", "--format", "process"], { command: "env", profile: "a", format: "process" }],
    [["env", "--format=fish", "--profile", "a"], { command: "env", profile: "a", format: "fish" }],
    [["credential-process", "a"], { command: "credential-process", profile: "a" }],
    [["credential-process"], { command: "credential-process", profile: "fromenv" }],
    [["credential-process", "--profile", "b"], { command: "credential-process", profile: "b" }],
    [["exec", "a", "--", "x", "-y"], {
      command: "exec",
      profile: "a",
      staticKeys: false,
      argv: ["x", "-y"],
    }],
    [["exec", "--env", "a", "--", "x", "--", "z"], {
      command: "exec",
      profile: "a",
      staticKeys: true,
      argv: ["x", "--", "z"],
    }],
    [["exec", "--profile", "a", "--", "x"], {
      command: "exec",
      profile: "a",
      staticKeys: false,
      argv: ["x"],
    }],
    [["exec", "--", "x"], { command: "exec", profile: "fromenv", staticKeys: false, argv: ["x"] }],
  ];
  for (const [argv, want] of cases) assert.deepEqual(parseQuick(argv, env), want, argv.join(" "));
  assert.deepEqual(parseQuick(["env"], {}), { command: "env", profile: "default", format: "env" });
  assert.deepEqual(parseQuick(["env"], { AWS_PROFILE: "" }), {
    command: "env",
    profile: "default",
    format: "env",
  });

  const refused = [
    ["current", "x"],
    ["current", "--debug"],
    ["status"],
    ["hook", "bash"],
    ["--debug", "env", "a"],
    ["env", "a", "--debug"],
    ["env", "a", "-t", "123456"],
    ["env", "a", "--token-code=123456"],
    ["env", "a", "--no-session"],
    ["env", "a", "--help"],
    ["env", "a", "b"],
    ["env", "a", "--profile", "b"],
    ["env", "--profile", "a", "--profile", "b"],
    ["env", "--profile"],
    ["env", "--profile", "-f"],
    ["env", "--profile="],
    ["env", "a", "--format", "nope"],
    ["env", "a", "--format"],
    ["env", "a", "-fjson"],
    ["env", "a", "-f", "json", "-f", "env"],
    ["env", "a", "--", "x"],
    ["env", ""],
    ["env", "bad name"],
    ["credential-process", "a", "--format", "json"],
    ["credential-process", "a", "-t", "123456"],
    ["credential-process", "a", "--", "x"],
    ["exec", "a"],
    ["exec", "a", "x"],
    ["exec", "a", "--"],
    ["exec", "a", "--env", "--", "x"],
    ["exec", "--env", "--", "x"],
    ["exec", "--profile", "a", "--env", "--", "x"],
    ["exec", "--env", "--env", "a", "--", "x"],
    ["exec", "a", "-t", "1", "--", "x"],
    ["exec", "a", "--debug", "--", "x"],
    ["exec", "a", "b", "--", "x"],
  ];
  for (const argv of refused) assert.equal(parseQuick(argv, env), undefined, argv.join(" "));
  // $AWS_PROFILE must itself be a profile name for the quick path to use it.
  assert.equal(parseQuick(["env"], { AWS_PROFILE: "bad name" }), undefined);
});

// ---------------------------------------------------------------------------------------
// Both paths on the same inputs

type Out = { code: number; stdout: string; stderr: string };

async function indexId(w: World): Promise<string> {
  const st = await Deno.stat(`${w.env.STSH_HOME}/cache/index.json`);
  return `${st.ino}:${st.mtime?.getTime()}`;
}

/** Runs `args` through the quick path, then through the full CLI; returns both. */
async function both(
  w: World,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ quick: Out; full: Out; quickWrote: boolean; fullWrote: boolean }> {
  const i0 = await indexId(w);
  const quick = await stsh(args, { env: { ...w.env, ...env } });
  const i1 = await indexId(w);
  const full = await stsh(args, { env: { ...w.env, ...env, STSH_NO_QUICK: "1" } });
  const i2 = await indexId(w);
  return { quick, full, quickWrote: i0 !== i1, fullWrote: i1 !== i2 };
}

function same(r: { quick: Out; full: Out }, what: string, mask = (s: string) => s) {
  assert.equal(
    r.quick.code,
    r.full.code,
    `${what}: exit codes\n${r.quick.stderr}\n${r.full.stderr}`,
  );
  assert.equal(mask(r.quick.stderr), mask(r.full.stderr), `${what}: stderr`);
  assert.equal(mask(r.quick.stdout), mask(r.full.stdout), `${what}: stdout`);
}

/** A world with warm sessions for `a` (a role) and `me` (the user's MFA session). */
async function warmWorld(): Promise<World> {
  const w = await world();
  try {
    await w.primeCode();
    for (const p of ["a", "me"]) {
      const r = await w.run(["env", p]);
      assert.equal(r.code, 0, r.stderr);
    }
    // One full exec records the [default] answer under the stamp (cache/exec.json).
    const r = await w.run(["exec", "a", "--", "true"], { env: { STSH_NO_QUICK: "1" } });
    assert.equal(r.code, 0, r.stderr);
    return w;
  } catch (e) {
    await w.close();
    throw e;
  }
}

/**
 * The child of the exec tests: its arguments, the AWS names it got (the endpoint's port and
 * token masked: each run has its own), and the AccessKeyId it fetched from the endpoint.
 */
const CHILD = [
  "python3",
  "-c",
  `import json, os, sys, urllib.request
print("argv", sys.argv[1:])
for k in sorted(os.environ):
    if (k.startswith("AWS_") or k.startswith("STSH_")) and k != "STSH_NO_QUICK":
        v = os.environ[k]
        if k == "AWS_CONTAINER_CREDENTIALS_FULL_URI":
            v = v.split(":")[0] + ":PORT/" + v.split("/", 3)[3]
        if k == "AWS_CONTAINER_AUTHORIZATION_TOKEN":
            v = "TOKEN(%d)" % len(v)
        print(k, v)
uri = os.environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
if uri and os.environ.get("CHILD_FETCH") != "0":
    req = urllib.request.Request(uri, headers={"Authorization": os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]})
    print("endpoint", json.load(urllib.request.urlopen(req, timeout=10))["AccessKeyId"])
sys.exit(int(os.environ.get("CHILD_EXIT", "0")))
`,
  "one",
  "--two",
];

Deno.test("quick path: the forms it answers print what the full CLI prints, byte for byte", async () => {
  const w = await warmWorld();
  try {
    const answered: [string[], Record<string, string>?][] = [
      [["env", "a"]],
      [["env"], { AWS_PROFILE: "a" }],
      [["env", "--profile", "a"]],
      [["env", "--profile=a", "a", "--format", "json"]],
      [["env", "-f", "process", "a"]],
      [["env", "a", "--format=powershell"]],
      [["env", "a", "-f", "fish"]],
      [["env", "a", "-f", "dotenv"]],
      [["env", "a", "-f", "windows-cmd"]],
      [["env", "a", "-f", "env-no-export"]],
      [["env", "me", "-f", "json"]],
      [["env", "me"], { AWS_ACCESS_KEY_ID: "AKIAOLDOLDOLDOLD", AWS_PROFILE: "x" }],
      [["credential-process", "a"]],
      [["credential-process", "--profile", "me"]],
      [["credential-process"], { AWS_PROFILE: "a" }],
      [["exec", "a", "--", ...CHILD]],
      [["exec", "--env", "a", "--", ...CHILD]],
      [["exec", "--profile", "a", "--", ...CHILD]],
      [["exec", "--", ...CHILD], { AWS_PROFILE: "a", AWS_ACCESS_KEY_ID: "AKIAOLDOLDOLDOLD" }],
      [["exec", "a", "--", ...CHILD], { CHILD_EXIT: "7" }],
      [["exec", "--env", "a", "--", ...CHILD], { CHILD_EXIT: "3" }],
    ];
    for (const [args, env] of answered) {
      const what = `stsh ${args.slice(0, 4).join(" ")} ${JSON.stringify(env ?? {})}`;
      const endpoint = args[0] === "exec" && !args.includes("--env");
      // The endpoint's own requests resolve through the engine (which writes the index):
      // which path answered is checked in a run whose child asks it nothing.
      const r = await both(w, args, endpoint ? { ...env, CHILD_FETCH: "0" } : env);
      same(r, what);
      assert.ok(!r.quickWrote, `${what}: the full CLI answered instead of the quick path`);
      assert.ok(r.fullWrote, `${what}: STSH_NO_QUICK=1 did not reach the full CLI`);
      if (endpoint) {
        const f = await both(w, args, env);
        same(f, `${what}, asking the endpoint`);
        assert.match(f.quick.stdout, /^endpoint ASIA/m, `${what}: the endpoint answered`);
      }
    }

    // `current` reads only the environment.
    const until = String(Math.floor(Date.now() / 1000) + 9030);
    const currents: Record<string, string>[] = [
      {},
      { STSH_PROFILE: "a", STSH_EXPIRES: until, STSH_ROOT: "/work/x" },
      { STSH_PROFILE: "a", STSH_EXPIRES: until, STSH_PINNED: "1" },
      { STSH_PROFILE: "a\x1b[2Jb" },
      { STSH_PROFILE: "a", STSH_EXPIRES: "12" },
    ];
    for (const env of currents) {
      same(await both(w, ["current"], env), `current ${JSON.stringify(env)}`);
    }
    const r = await stsh(["current"], {
      env: { ...w.env, STSH_PROFILE: "a", STSH_ROOT: "/work/x" },
    });
    assert.equal(r.stdout, `a (from /work/x/${TAG_FILE}): no expiry\n`);
  } finally {
    await w.close();
  }
});

Deno.test("quick path: everything else reaches the full CLI, which says the same", async () => {
  const w = await warmWorld();
  try {
    const declined: [string[], Record<string, string>?][] = [
      [["env", "a", "--debug"]],
      [["--debug", "env", "a"]],
      [["env", "a", "-t", "123456"]],
      [["env", "a", "b"]],
      [["env", "a", "--format", "nope"]],
      [["env", "--profile", "a", "b"]],
      [["env", "--profile"]],
      [["env", "a", "--", "x"]],
      [["env", "nosuch"]],
      [["env", "bad name"]],
      [["env"], { AWS_PROFILE: "bad name" }],
      [["credential-process", "a", "-f", "json"]],
      [["current", "x"]],
      [["exec", "a", "--"]],
      [["exec", "a", "--env", "--", "true"]],
      [["exec", "--profile", "a", "--env", "--", "true"]],
      [["exec", "a", "--", "/nonexistent/stsh-test-command"]],
      [["exec", "--env", "a", "--", "/nonexistent/stsh-test-command"]],
    ];
    // --debug says how long things took: the numbers differ from run to run, nothing else.
    const timings = (s: string) => s.replace(/\d+(\.\d+)? ms\b/g, "N ms");
    for (const [args, env] of declined) {
      const what = `stsh ${args.join(" ")} ${JSON.stringify(env ?? {})}`;
      const r = await both(w, args, env);
      same(r, what, timings);
    }
  } finally {
    await w.close();
  }
});

/** Session keys and times change when a session is minted again: compare the rest. */
function maskMinted(s: string): string {
  return s.replace(/ASIA[A-Z0-9]{12,}/g, "ASIA…")
    .replace(/(AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN)='[^']*'/g, "$1='…'")
    .replace(/(SecretAccessKey|SessionToken)": "[^"]*"/g, '$1": "…"')
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/g, "TIME")
    .replace(/STSH_EXPIRES='\d+'/g, "STSH_EXPIRES='…'");
}

Deno.test("quick path: a stale stamp, a damaged, foreign or ending session: the full CLI's answer, files untouched", async () => {
  const w = await warmWorld();
  try {
    const cache = `${w.env.STSH_HOME}/cache`;
    const index = JSON.parse(await Deno.readTextFile(`${cache}/index.json`));
    const roleFile = `${cache}/${index.a.key}.json`;
    const good = await Deno.readTextFile(roleFile);

    /** Puts `setup` in place before each of the two runs, then compares them. */
    const compare = async (what: string, setup: () => Promise<void>, args = ["env", "a"]) => {
      await setup();
      const quick = await stsh(args, { env: w.env });
      await setup();
      const full = await stsh(args, { env: { ...w.env, STSH_NO_QUICK: "1" } });
      same({ quick, full }, what, maskMinted);
      assert.equal(quick.code, 0, `${what}: ${quick.stderr}`);
      await Deno.writeTextFile(roleFile, good, { mode: 0o600 });
      await Deno.chmod(roleFile, 0o600);
    };

    await compare("the config was edited (a new stamp)", async () => {
      const t = new Date(Date.now() + Math.floor(Math.random() * 1e6) * 1000);
      await Deno.utime(w.env.AWS_CONFIG_FILE, t, t);
    });
    // The full path discards these and says so; the quick path must leave that to it.
    await compare("a damaged role session", () => Deno.writeTextFile(roleFile, "{not json"));
    await compare("a role session others can read", async () => {
      await Deno.writeTextFile(roleFile, good);
      await Deno.chmod(roleFile, 0o640);
    });
    await compare("a role session about to end", async () => {
      const s = JSON.parse(good);
      s.expiration = new Date(Date.now() + 60_000).toISOString().replace(/\.\d{3}Z$/, "Z");
      await Deno.writeTextFile(roleFile, JSON.stringify(s), { mode: 0o600 });
    });
    await compare("a role session about to end, for exec --env", async () => {
      const s = JSON.parse(good);
      s.expiration = new Date(Date.now() + 60_000).toISOString().replace(/\.\d{3}Z$/, "Z");
      await Deno.writeTextFile(roleFile, JSON.stringify(s), { mode: 0o600 });
    }, ["exec", "--env", "a", "--", "sh", "-c", "echo $AWS_ACCESS_KEY_ID"]);

    // The quick path changes nothing on its own: a damaged file is still there after it.
    await Deno.writeTextFile(roleFile, "{not json");
    assert.equal(quickCredentials("a", w.env, configStamp(w.env)), null);
    assert.equal(await Deno.readTextFile(roleFile), "{not json");
    await Deno.writeTextFile(roleFile, good);
    assert.ok(quickCredentials("a", w.env, configStamp(w.env)));
  } finally {
    await w.close();
  }
});

Deno.test("quick exec: a [default] with keys of its own outranks the endpoint: the full CLI's warning and static keys", async () => {
  const w = await warmWorld();
  try {
    const creds = await Deno.readTextFile(w.env.AWS_SHARED_CREDENTIALS_FILE);
    await Deno.writeTextFile(
      w.env.AWS_SHARED_CREDENTIALS_FILE,
      `${creds}\n[default]\naws_access_key_id = AKIADEFAULTDEFAULT1\naws_secret_access_key = x\n`,
    );
    // The first run after the edit parses the config and records the answer; then both paths.
    const first = await w.run(["exec", "a", "--", "true"]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /profile 'default' has credentials of its own \(keys\)/);
    const r = await both(w, ["exec", "a", "--", ...CHILD]);
    same(r, "exec with a shadowing [default]");
    assert.match(r.quick.stdout, /^AWS_ACCESS_KEY_ID ASIA/m);
    assert.doesNotMatch(r.quick.stdout, /endpoint/);
    // Back to no [default]: the endpoint again, from the quick path once the answer is known.
    await Deno.writeTextFile(w.env.AWS_SHARED_CREDENTIALS_FILE, creds);
    assert.equal((await w.run(["exec", "a", "--", "true"])).code, 0);
    const back = await both(w, ["exec", "a", "--", ...CHILD], { CHILD_FETCH: "0" });
    same(back, "exec after [default] is gone");
    assert.ok(!back.quickWrote, "the full CLI answered instead of the quick path");
    assert.match(back.quick.stdout, /^AWS_CONTAINER_CREDENTIALS_FULL_URI /m);
  } finally {
    await w.close();
  }
});

Deno.test("configStamp: the key index counts once it appears, and its every change", async () => {
  const sb = await sandbox();
  try {
    await sb.write(".aws/config", "[profile me]\nregion = us-east-1\n");
    await Deno.mkdir(sb.path(".aws/stsh"), { recursive: true });
    const none = configStamp(sb.env);
    assert.equal(configStamp(sb.env), none, "stable while nothing changes");
    await sb.write(".aws/stsh/keys.json", "{}\n", 0o600);
    const some = configStamp(sb.env);
    assert.notEqual(some, none, "keys.json appeared");
    await sb.write(".aws/stsh/keys.json", '{"me": "secret-service"}\n', 0o600);
    assert.notEqual(configStamp(sb.env), some, "keys.json changed");
    await Deno.remove(sb.path(".aws/stsh/keys.json"));
    assert.equal(configStamp(sb.env), none, "keys.json gone");
  } finally {
    await sb.cleanup();
  }
});
