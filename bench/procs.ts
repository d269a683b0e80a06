/**
 * Rows 2a, 3 and 4: whole processes, timed from spawn to exit (wall clock, from this Deno
 * process; the spawn itself, well under 1 ms, is in every number alike), each against a bare
 * `deno run` of an empty script measured in the same rounds.
 *
 * - 2a: `stsh hook bash` (through bin/stsh, the `deno run` launcher) in the tagged, trusted
 *   directory, from a shell that has nothing applied yet, with the role session cached — what
 *   a `cd` into a tagged tree starts.
 * - 3: warm `stsh env a`, `stsh credential-process a`, `stsh exec a -- true` (the endpoint,
 *   and the command itself) and `stsh current` — the quick path (lib/quick.ts), checked: the
 *   cache index is not rewritten during these runs, as it would be by the full CLI; `stsh
 *   env a` cold (cache emptied, a fresh MFA code from mfa_process, one GetSessionToken + one
 *   AssumeRole at the emulator per run); and the AWS CLI's `aws configure export-credentials
 *   --profile a` reading a valid entry of its own cache.
 * - 4: peak RSS (GNU time's "maximum resident set size") of `stsh env a` warm.
 */
import { type BenchWorld, ROOT, STSH, which } from "./setup.ts";
import { cliCacheEntry, cliCacheKey, cliV2, endpointCli } from "./aws_cli.ts";
import { compareRow, type Row, type Sample, sample, timeOnce, timeRuns } from "./stats.ts";

export interface ProcOptions {
  runs: number;
  coldRuns: number;
  awsRuns: number;
  rssRuns: number;
  log: (m: string) => void;
}

/** The launcher's own flags, for running main.ts without it. */
const DENO_FLAGS = [
  "run",
  "--quiet",
  "--no-prompt",
  "--allow-env",
  "--allow-read",
  "--allow-write",
  "--allow-net",
  "--allow-run",
  "--allow-sys",
];

/** Issue 11: warm commands and the hook's warm cd within 1.5× a bare `deno run`. */
const WARM_TARGET = { kind: "ratio-max", max: 1.5, text: "≤ 1.5× bare deno run" } as const;

async function emptyScript(w: BenchWorld): Promise<string> {
  const p = w.sb.path("empty.ts");
  await Deno.writeTextFile(p, "");
  return p;
}

function mustInclude(what: string) {
  return (o: { stdout: string }) => {
    if (!o.stdout.includes(what)) throw new Error(`expected ${what} in:\n${o.stdout}`);
  };
}

/** Identity of the cache index: the full CLI rewrites it (a new inode) on every resolve. */
async function indexId(w: BenchWorld): Promise<string> {
  const st = await Deno.stat(`${w.env.STSH_HOME}/cache/index.json`);
  return `${st.ino}:${st.mtime?.getTime()}`;
}

interface Warm {
  id: string;
  name: string;
  label: string;
  cmd: string[];
  cwd?: string;
  env?: Record<string, string>;
  check: (o: { stdout: string }) => void;
  notes?: string[];
}

export async function processRows(w: BenchWorld, o: ProcOptions): Promise<Row[]> {
  const rows: Row[] = [];
  const empty = await emptyScript(w);
  const env = w.env;

  // ---- 2a and 3 (warm): every warm command and the bare baseline, interleaved ----
  o.log("warm: stsh hook bash, env, credential-process, exec, current vs a bare deno run");
  // The hook's modules loaded but not run: what module loading costs on top of deno's start.
  const importOnly = w.sb.path("import-hook.ts");
  await Deno.writeTextFile(
    importOnly,
    `import "${new URL("../lib/hook.ts", import.meta.url).href}";\n`,
  );
  // Deno's own floor for running a command: a script that only spawns `true` and waits. Deno
  // loads its process module (and with it the web streams) on the first use of Deno.Command,
  // which a bare `deno run` never pays; `stsh exec` cannot run a command without it.
  const spawnOnly = w.sb.path("spawn-true.ts");
  await Deno.writeTextFile(
    spawnOnly,
    'await new Deno.Command("true", { stdin: "null" }).spawn().status;\n',
  );
  const until = String(Math.floor(Date.now() / 1000) + 3000);
  const warm: Warm[] = [
    {
      id: "2-cd-warm",
      name: "cd into a tagged tree, warm cache (`stsh hook bash`) vs a bare `deno run`",
      label: "stsh hook bash",
      cmd: [STSH, "hook", "bash"],
      cwd: w.proj,
      check: mustInclude(`export STSH_PROFILE='a'`),
    },
    {
      id: "3-env-warm",
      name: "`stsh env a`, warm, vs a bare `deno run`",
      label: "stsh env a",
      cmd: [STSH, "env", "a"],
      check: mustInclude("export AWS_ACCESS_KEY_ID="),
    },
    {
      id: "3-cp-warm",
      name: "`stsh credential-process a`, warm, vs a bare `deno run`",
      label: "stsh credential-process a",
      cmd: [STSH, "credential-process", "a"],
      check: mustInclude('"AccessKeyId": "ASIA'),
    },
    {
      id: "3-exec-warm",
      name: "`stsh exec a -- true`, warm (endpoint + command), vs a bare `deno run`",
      label: "stsh exec a -- true",
      cmd: [STSH, "exec", "a", "--", "true"],
      check: () => {},
      notes: ["includes starting the endpoint and running `true` (about 1 ms by itself)"],
    },
    {
      id: "3-current",
      name: "`stsh current` vs a bare `deno run`",
      label: "stsh current",
      cmd: [STSH, "current"],
      env: { STSH_PROFILE: "a", STSH_ROOT: w.proj, STSH_EXPIRES: until },
      check: mustInclude("a (from "),
    },
  ];
  const times: Record<string, number[]> = {};
  const add = (k: string, v: number) => (times[k] ??= []).push(v);
  const bareCmd = ["deno", "run", "--quiet", "--no-prompt", empty];
  const direct = ["deno", ...DENO_FLAGS, `${ROOT}/main.ts`, "hook", "bash"];
  let indexBefore = "";
  for (let i = 0; i < o.runs + 2; i++) {
    // After the warm-up: the first exec records its [default] answer, as a person's would.
    if (i === 2) indexBefore = await indexId(w);
    const round: [string, { ms: number; code: number; stdout: string; stderr: string }][] = [];
    round.push(["bare", await timeOnce(bareCmd, { env })]);
    for (const c of warm) {
      const r = await timeOnce(c.cmd, { env: { ...env, ...c.env }, cwd: c.cwd });
      if (r.code !== 0) throw new Error(`${c.label}: exit ${r.code}: ${r.stderr}`);
      c.check(r);
      round.push([c.id, r]);
    }
    round.push(["hook-direct", await timeOnce(direct, { env, cwd: w.proj })]);
    round.push(["import-hook", await timeOnce(["deno", ...DENO_FLAGS, importOnly], { env })]);
    round.push(["spawn-only", await timeOnce(["deno", ...DENO_FLAGS, spawnOnly], { env })]);
    for (const [k, r] of round) {
      if (r.code !== 0) throw new Error(`${k}: exit ${r.code}: ${r.stderr}`);
      if (i >= 2) add(k, r.ms);
    }
  }
  const quickHeld = (await indexId(w)) === indexBefore;
  const bare = sample("deno run (empty script)", "ms", times.bare);
  for (const c of warm) {
    const a = sample(c.label, "ms", times[c.id]);
    const notes = [`${o.runs} runs each, interleaved with the others, after 2 warm-up runs`];
    if (c.id === "2-cd-warm") {
      notes.push(
        `without the sh launcher (deno run main.ts hook bash): ${
          fmtS(sample("direct", "ms", times["hook-direct"]))
        }`,
        `deno run of a script that only imports lib/hook.ts: ${
          fmtS(sample("import", "ms", times["import-hook"]))
        }`,
      );
    } else {
      if (c.id === "3-exec-warm") {
        const floor = sample("spawn", "ms", times["spawn-only"]);
        notes.push(
          `deno run of a script that only runs \`true\` through Deno.Command (Deno's floor for running a command): ${
            fmtS(floor)
          }; exec vs that floor: ${(a.median / floor.median).toFixed(2)}×`,
        );
      }
      notes.push(
        quickHeld
          ? "answered by the quick path (the cache index was never rewritten)"
          : "NOT all answered by the quick path: the cache index was rewritten during the runs",
      );
    }
    rows.push(compareRow({
      id: c.id,
      name: c.name,
      compared: `${c.label} through bin/stsh (the \`deno run\` launcher), spawn to exit`,
      a,
      b: bare,
      target: WARM_TARGET,
      method: "measured",
      notes: [...notes, ...(c.notes ?? [])],
    }));
  }
  const warmEnv = sample("stsh env a, warm", "ms", times["3-env-warm"]);

  // ---- 3: stsh env cold, aws configure export-credentials warm ----
  o.log("stsh env a: cold");
  const envCheck = mustInclude("export AWS_ACCESS_KEY_ID=");
  const cache = `${env.STSH_HOME}/cache`;
  let before = { ...w.emu.counts };
  let codes = await w.codeRequests();
  const coldCheck = (out: { stdout: string }) => {
    envCheck(out);
    const gst = (w.emu.counts.GetSessionToken ?? 0) - (before.GetSessionToken ?? 0);
    const ar = (w.emu.counts.AssumeRole ?? 0) - (before.AssumeRole ?? 0);
    if (gst !== 1 || ar !== 1) {
      throw new Error(`a cold run made ${gst} GetSessionToken and ${ar} AssumeRole calls`);
    }
  };
  const cold = await timeRuns("stsh env a, cold", [STSH, "env", "a"], {
    env,
    runs: o.coldRuns,
    async before() {
      await Deno.remove(cache, { recursive: true }).catch(() => undefined);
      // A new TOTP step, so every run has an unused code (the emulator refuses reuse).
      w.emu.advance(30);
      await w.primeCode();
      before = { ...w.emu.counts };
    },
    check: coldCheck,
  });
  codes = (await w.codeRequests()) - codes;
  if (codes !== o.coldRuns) throw new Error(`mfa_process ran ${codes} times in ${o.coldRuns} runs`);
  rows.push(compareRow({
    id: "3-env-cold",
    name: "`stsh env a` cold (GetSessionToken + AssumeRole) vs warm",
    compared:
      "cold: no cache, code from mfa_process, GetSessionToken + AssumeRole at the local emulator; warm: both sessions cached",
    a: cold,
    b: warmEnv,
    method: "measured",
    notes: [
      `${o.coldRuns} cold runs (each checked: 1 GetSessionToken, 1 AssumeRole, 1 mfa_process), ${o.runs} warm runs`,
      `cold vs a bare deno run: ${(cold.median / bare.median).toFixed(2)}×`,
    ],
  }));

  const aws = await cliV2();
  if (!aws) {
    o.log("no AWS CLI v2: the export-credentials row is skipped");
  } else {
    o.log(`aws configure export-credentials (${aws.version.split(" ")[0]}): warm`);
    const how = await primeCliCache(w, o);
    const args = [aws.path, "configure", "export-credentials", "--profile", "a", "--format", "env"];
    // Once under setsid with no stdin: a cache miss would have to ask for a code and fail.
    const check = await timeOnce(["setsid", "-w", ...args], { env, timeoutMs: 60_000 });
    if (check.code !== 0 || !check.stdout.includes(`AWS_ACCESS_KEY_ID=${how.accessKeyId}`)) {
      throw new Error(`the AWS CLI did not use its cache entry:\n${check.stdout}\n${check.stderr}`);
    }
    const cliWarm = await timeRuns("aws export-credentials, warm", args, {
      env,
      runs: o.awsRuns,
      warmup: 1,
      check: mustInclude(`AWS_ACCESS_KEY_ID=${how.accessKeyId}`),
    });
    rows.push(compareRow({
      id: "3-aws-warm",
      name: "`aws configure export-credentials --profile a` (warm CLI cache) vs `stsh env a` warm",
      compared:
        "the same role profile, both answering from their own cache, both printing `export` lines",
      a: cliWarm,
      b: warmEnv,
      method: "measured",
      notes: [
        `${
          aws.version.split(" ")[0]
        } (${aws.path}), ${o.awsRuns} runs; its entry ~/.aws/cli/cache/${how.key}.json ${how.made}`,
        "each run checked: the keys printed are the cached ones (a miss would need an MFA code and fail)",
      ],
    }));
  }

  // ---- 4: peak RSS ----
  const meter = await rssMeter();
  if (!meter) {
    o.log("neither GNU time nor python3: the memory row is skipped");
  } else {
    o.log(`peak RSS (${meter.how})`);
    const rss = async (label: string, cmd: string[]): Promise<Sample> => {
      const kb: number[] = [];
      for (let i = 0; i < o.rssRuns; i++) {
        const r = await timeOnce([...meter.cmd, ...cmd], { env });
        const m = r.stderr.match(/__maxrss_kb=(\d+)/);
        if (r.code !== 0 || !m) throw new Error(`${label}: ${r.stderr}`);
        kb.push(Number(m[1]) / 1024);
      }
      return sample(label, "MiB", kb);
    };
    const a = await rss("stsh env a, warm", [STSH, "env", "a"]);
    const b = await rss("deno run (empty script)", [
      "deno",
      "run",
      "--quiet",
      "--no-prompt",
      empty,
    ]);
    rows.push(compareRow({
      id: "4-rss",
      name: "peak RSS of `stsh env a` (warm) vs a bare `deno run`",
      compared: `maximum resident set size of the whole run (${meter.how})`,
      a,
      b,
      target: { kind: "ratio-max", max: 1.5, text: "≤ 1.5× bare deno run" },
      method: "measured",
      notes: [`${o.rssRuns} runs each`],
    }));
  }
  return rows;
}

/**
 * How to read a command's peak RSS: GNU time's %M, else python3's getrusage(RUSAGE_CHILDREN)
 * (both the kernel's ru_maxrss of the waited-for child). Prints `__maxrss_kb=N` on stderr.
 */
async function rssMeter(): Promise<{ cmd: string[]; how: string } | undefined> {
  const time = await which("time", ["/usr/bin"]);
  if (time && (await timeOnce([time, "-f", "%M", "true"], { env: {} })).code === 0) {
    return { cmd: [time, "-f", "__maxrss_kb=%M"], how: "GNU time %M" };
  }
  const py = await which("python3");
  if (!py) return undefined;
  const script = "import resource, subprocess, sys\n" +
    "c = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)\n" +
    "sys.stderr.write('__maxrss_kb=%d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n" +
    "sys.exit(c)";
  return { cmd: [py, "-c", script], how: "python3 getrusage ru_maxrss" };
}

function fmtS(s: Sample): string {
  return `min ${s.min.toFixed(1)} / median ${s.median.toFixed(1)} ${s.unit}`;
}

/**
 * Puts a valid entry for profile `a` into the AWS CLI's own cache (~/.aws/cli/cache). When an
 * installed CLI can be pointed at the emulator (AWS_ENDPOINT_URL_STS), that CLI makes it with
 * a real AssumeRole + MFA code, and the file name is checked against sts.md §6.1's rule;
 * otherwise the entry is written by that rule, with role credentials the emulator issued.
 */
async function primeCliCache(
  w: BenchWorld,
  o: ProcOptions,
): Promise<{ key: string; accessKeyId: string; made: string }> {
  const key = await cliCacheKey({ RoleArn: w.roles.a.arn, SerialNumber: w.alice.mfaSerial });
  const dir = w.sb.path(".aws", "cli", "cache");
  const file = `${dir}/${key}.json`;
  await Deno.remove(dir, { recursive: true }).catch(() => undefined);
  const modern = await endpointCli();
  if (modern) {
    w.emu.advance(30);
    const code = await w.emu.code(w.alice);
    const before = w.emu.counts.AssumeRole ?? 0;
    const r = await timeOnce(
      ["setsid", "-w", modern.path, "sts", "get-caller-identity", "--profile", "a"],
      { env: w.env, stdin: code + "\n", timeoutMs: 60_000 },
    );
    if (r.code === 0 && (w.emu.counts.AssumeRole ?? 0) === before + 1) {
      try {
        const entry = JSON.parse(await Deno.readTextFile(file));
        return {
          key,
          accessKeyId: entry.Credentials.AccessKeyId,
          made: `was made by ${
            modern.version.split(" ")[0]
          } (AssumeRole with an MFA code at the emulator; its file name matches sts.md §6.1's key)`,
        };
      } catch {
        o.log(`${modern.path} did not write ${file}; writing it by sts.md §6.1 instead`);
      }
    } else {
      o.log(`${modern.path} could not assume the role at the emulator: ${r.stderr.slice(-300)}`);
    }
  }
  // By the rule: role credentials for `a` from the emulator (through stsh's own session).
  const out = await w.run(["env", "a", "--format", "json"]);
  if (out.code !== 0) throw new Error(`stsh env a --format json: ${out.stderr}`);
  const c = JSON.parse(out.stdout) as Record<string, string>;
  for (const k of ["AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"]) {
    if (typeof c[k] !== "string") throw new Error(`stsh env a --format json has no ${k}`);
  }
  const accessKeyId = c.AccessKeyId;
  const entry = cliCacheEntry({
    accessKeyId,
    secretAccessKey: c.SecretAccessKey,
    sessionToken: c.SessionToken,
    expiration: new Date(c.Expiration),
    roleArn: w.roles.a.arn,
    sessionName: "botocore-session-bench",
  });
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  await Deno.writeTextFile(file, entry, { mode: 0o600 });
  return {
    key,
    accessKeyId,
    made:
      "was written by sts.md §6.1's rule (no installed CLI honours AWS_ENDPOINT_URL_STS) with role credentials the emulator issued",
  };
}
