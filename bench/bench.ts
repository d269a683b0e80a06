/**
 * `deno task bench`: issue 11's targets measured in one run on this machine, each as the ratio
 * or difference the issue names, each side with its min and median over repeated runs,
 * printed as a table on stdout and written to bench/results.json (ignored by git).
 *
 *   deno task bench                 # the full run (about 4 minutes on 2 cores)
 *   deno task bench --quick         # tiny counts, for a smoke test (about a minute)
 *   deno task bench --out FILE      # write the JSON elsewhere
 *   deno task bench --only shells,procs,day,job
 *
 * Rows (see the module comments of shells.ts, procs.ts, day.ts and longjob.ts):
 *  1. an unchanged prompt in zsh, bash, pwsh and fish: what the stsh hook adds over no hook
 *     (bash, zsh ≤ 30 µs; pwsh ≤ 200 µs after a command), and direnv's hook vs stsh's
 *     (≥ 150× less for bash and zsh);
 *  2. `cd` into a tagged tree with a warm cache (the process the hook starts) vs a bare
 *     `deno run` (≤ 1.5×), and `cd` inside it (same tag: the shell-only path);
 *  3. warm `stsh env`, `credential-process`, `exec` and `current` vs a bare `deno run`
 *     (≤ 1.5×); `stsh env` cold; `aws configure export-credentials` from the CLI's cache;
 *  4. peak RSS of a warm `stsh env` vs a bare `deno run` (≤ 1.5×);
 *  5. MFA prompts in a simulated working day: stsh vs the AWS CLI's mfa_serial + role_arn;
 *  6. failed calls of a long boto3 job: the endpoint (`stsh exec`) vs static keys (`--env`).
 *
 * Only 127.0.0.1 is used (local STS emulators). Every loop is bounded in count and time.
 * Progress goes to stderr. The exit status is 0 whatever the targets say (`--strict`: 1 when
 * a target is missed). A row that misses says by how much.
 */
import { benchWorld, versionOf } from "./setup.ts";
import { pwshPath, shellRows } from "./shells.ts";
import { processRows } from "./procs.ts";
import { dayRow } from "./day.ts";
import { longJobRow } from "./longjob.ts";
import { cliV2, endpointCli } from "./aws_cli.ts";
import { fmt, type Row, table } from "./stats.ts";

const SECTIONS = ["shells", "procs", "day", "job"] as const;
type Section = typeof SECTIONS[number];

interface Args {
  quick: boolean;
  strict: boolean;
  out: string;
  only: Set<Section>;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    quick: false,
    strict: false,
    out: new URL("./results.json", import.meta.url).pathname,
    only: new Set(SECTIONS),
  };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i];
    if (x === "--quick") a.quick = true;
    else if (x === "--strict") a.strict = true;
    else if (x === "--out" && i + 1 < argv.length) a.out = argv[++i];
    else if (x === "--only" && i + 1 < argv.length) {
      const names = argv[++i].split(",");
      for (const n of names) {
        if (!SECTIONS.includes(n as Section)) throw new Error(`--only: unknown section ${n}`);
      }
      a.only = new Set(names as Section[]);
    } else if (x === "--help" || x === "-h") {
      console.log(
        "usage: deno task bench [--quick] [--strict] [--out FILE] [--only shells,procs,day,job]",
      );
      Deno.exit(0);
    } else throw new Error(`unknown argument ${x} (try --help)`);
  }
  return a;
}

const SETTINGS = {
  full: {
    shells: { reps: 9, prompts: 400, slowPrompts: 80, cds: 100 },
    procs: { runs: 25, coldRuns: 7, awsRuns: 7, rssRuns: 5 },
    day: { hours: 8, switchMinutes: 20 },
    job: { roleSeconds: 20, jobSeconds: 60 },
  },
  quick: {
    shells: { reps: 2, prompts: 60, slowPrompts: 15, cds: 20 },
    procs: { runs: 3, coldRuns: 2, awsRuns: 2, rssRuns: 2 },
    day: { hours: 1, switchMinutes: 20 },
    job: { roleSeconds: 6, jobSeconds: 14 },
  },
};

async function machine(): Promise<Record<string, string | number>> {
  let cpu = "?";
  let mem = "?";
  try {
    cpu = (await Deno.readTextFile("/proc/cpuinfo")).match(/^model name\s*:\s*(.+)$/m)?.[1] ??
      "?";
    const kb = Number((await Deno.readTextFile("/proc/meminfo")).match(/MemTotal:\s+(\d+)/)?.[1]);
    if (kb) mem = `${Math.round(kb / 1024 / 1024)} GiB`;
  } catch {
    // not Linux
  }
  const pwsh = await pwshPath();
  const v2 = await cliV2();
  const v1 = await endpointCli();
  return {
    cpu,
    cores: navigator.hardwareConcurrency,
    memory: mem,
    os: `${Deno.build.os} ${Deno.osRelease()}`,
    loadavgAtStart: Deno.loadavg().map((x) => x.toFixed(2)).join(" "),
    deno: Deno.version.deno,
    bash: (await versionOf(["bash", "--version"])).replace(/^GNU bash, version /, ""),
    zsh: await versionOf(["zsh", "--version"]),
    pwsh: pwsh
      ? await versionOf([
        pwsh,
        "-NoLogo",
        "-NoProfile",
        "-Command",
        "$PSVersionTable.PSVersion.ToString()",
      ])
      : "-",
    direnv: await versionOf(["direnv", "version"]) || "-",
    awsCliV2: v2 ? `${v2.version.split(" ")[0]} (${v2.path})` : "-",
    awsCliWithEndpoint: v1 ? `${v1.version.split(" ")[0]} (${v1.path})` : "-",
  };
}

export function render(rows: Row[], notes: string[], m: Record<string, string | number>): string {
  const lines = [table(rows), ""];
  lines.push(
    "A, B: min / median over the runs; result: the ratio of the medians, or for A−B the median of paired differences (the min ratio is in results.json); pass/fail judged on medians.",
  );
  for (const r of rows) {
    const extra = r.ratioOf === "A/B" ? ` (min ratio ${fmt(r.ratioMin)})` : "";
    lines.push(`- ${r.id}: ${r.compared}${extra}. ${r.notes.filter(Boolean).join("; ")}.`);
  }
  for (const n of notes) lines.push(`- ${n}`);
  lines.push(
    "",
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memory}, ${m.os}; deno ${m.deno}; load average ${m.loadavgAtStart} at the start, ${m.loadavgAtEnd} at the end.`,
  );
  return lines.join("\n");
}

async function main(): Promise<number> {
  const args = parseArgs(Deno.args);
  const s = args.quick ? SETTINGS.quick : SETTINGS.full;
  const started = performance.now();
  const log = (msg: string) =>
    console.error(`bench [${((performance.now() - started) / 1000).toFixed(0)} s] ${msg}`);
  const notes: string[] = [];
  const m = await machine();
  log(`machine: ${m.cpu}, ${m.cores} cores; load ${m.loadavgAtStart}`);
  const rows: Row[] = [];
  if (args.only.has("shells") || args.only.has("procs")) {
    log("setting up: STS emulator, sandbox HOME, tagged directory, warm cache");
    const w = await benchWorld();
    try {
      if (args.only.has("shells")) {
        rows.push(...await shellRows(w, { ...s.shells, log, note: (n) => notes.push(n) }));
      }
      if (args.only.has("procs")) rows.push(...await processRows(w, { ...s.procs, log }));
    } finally {
      await w.close();
    }
  }
  if (args.only.has("day")) {
    log(`a simulated ${s.day.hours}-hour day`);
    rows.push(await dayRow({ ...s.day, log }));
  }
  if (args.only.has("job")) {
    const row = await longJobRow({ ...s.job, log });
    if (row) rows.push(row);
    else notes.push("python3 with boto3 is missing: no long-job row");
  }
  rows.sort((x, y) => order(x.id) - order(y.id));
  m.loadavgAtEnd = Deno.loadavg().map((x) => x.toFixed(2)).join(" ");
  const seconds = (performance.now() - started) / 1000;
  const text = render(rows, notes, m);
  console.log(text);
  const result = {
    generated: new Date().toISOString(),
    quick: args.quick,
    seconds: Math.round(seconds),
    machine: m,
    settings: s,
    notes,
    rows,
    table: text,
  };
  // JSON has no Infinity: an unbounded ratio is written as the string "Infinity".
  const json = JSON.stringify(
    result,
    (_, v) => typeof v === "number" && !Number.isFinite(v) ? String(v) : v,
    2,
  );
  await Deno.writeTextFile(args.out, json + "\n");
  log(`done in ${seconds.toFixed(0)} s; wrote ${args.out}`);
  const missed = rows.filter((r) => r.pass === false);
  if (missed.length) log(`targets missed: ${missed.map((r) => r.id).join(", ")}`);
  return args.strict && missed.length ? 1 : 0;
}

/** Table order: by row number, then zsh, bash, pwsh, fish as the issue lists them. */
function order(id: string): number {
  const n = Number(id.split("-")[0]) * 100;
  const shell = id.includes("zsh")
    ? 1
    : id.includes("bash")
    ? 2
    : id.includes("pwsh")
    ? 3
    : id.includes("fish")
    ? 4
    : 0;
  const sub = id.includes("direnv") ? 0.5 : id.includes("-cmd") ? 0.2 : 0;
  const kinds = ["env-warm", "cp-warm", "exec-warm", "current", "env-cold", "aws"];
  const k = kinds.findIndex((x) => id.includes(x));
  const kind = /cd-shell/.test(id) ? 10 : k >= 0 ? k : 0;
  return n + kind + shell + sub;
}

if (import.meta.main) Deno.exit(await main());
