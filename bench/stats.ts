/**
 * Small helpers of `deno task bench`: samples and their min/median, timing a command, the
 * result rows and the printed table. Nothing here knows about stsh.
 */

/** Repeated measurements of one thing, in `unit`. */
export interface Sample {
  label: string;
  unit: string;
  /** Every measured value, in the order measured. */
  values: number[];
  min: number;
  median: number;
}

export function sample(label: string, unit: string, values: number[]): Sample {
  if (values.length === 0) throw new Error(`no values measured for ${label}`);
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { label, unit, values, min: sorted[0], median };
}

/**
 * A target: a ratio A/B at most `max` (or at least `min`); A's median below an absolute value;
 * or the cost A adds over B (the median of paired differences A−B) at most an absolute value.
 */
export type Target =
  | { kind: "ratio-max"; max: number; text: string }
  | { kind: "ratio-min"; min: number; text: string }
  | { kind: "abs-max"; max: number; unit: string; text: string }
  | { kind: "delta-max"; max: number; unit: string; text: string };

export interface Row {
  id: string;
  name: string;
  /** What is compared, in words. */
  compared: string;
  a: Sample;
  /** The other side, when there is one (a baseline or an alternative). */
  b?: Sample;
  /** For delta targets: A−B of each pair of runs measured back to back. */
  delta?: Sample;
  /**
   * The headline ratio: median(A)/median(B); median(A)/target for absolute targets;
   * median(A−B)/target for delta targets. Infinity when B's median is 0 or less (A/B rows
   * whose B is itself a difference lost in the noise).
   */
  ratio: number;
  /** What `ratio` divides. */
  ratioOf: string;
  /** min(A)/min(B) (or min(A)/target). */
  ratioMin: number;
  target?: Target;
  /** Judged on the medians; undefined when there is no target. */
  pass?: boolean;
  /** For a missed target: by how much, in words ("1.62× is 0.12× over 1.5×: A 3.1 ms slower"). */
  miss?: string;
  /** "measured", or "modelled" for a number computed from a documented rule. */
  method: "measured" | "modelled";
  notes: string[];
}

function unitOf(s: Sample): string {
  return s.unit === "count" ? "" : ` ${s.unit}`;
}

export function compareRow(
  r: Omit<Row, "ratio" | "ratioMin" | "ratioOf" | "pass" | "miss"> & { b: Sample },
): Row {
  const ratio = r.b.median > 0 ? r.a.median / r.b.median : Infinity;
  const ratioMin = r.b.min > 0 ? r.a.min / r.b.min : Infinity;
  let pass: boolean | undefined;
  let miss: string | undefined;
  const t = r.target;
  if (t?.kind === "ratio-max") {
    pass = ratio <= t.max;
    if (!pass) {
      const over = r.a.median - t.max * r.b.median;
      miss = `${fmt(ratio)}× is ${fmt(ratio - t.max)}× over ${t.max}× (A is ${fmt(over)}${
        unitOf(r.a)
      } above ${t.max}× B)`;
    }
  } else if (t?.kind === "ratio-min") {
    pass = ratio >= t.min;
    if (!pass) miss = `${fmt(ratio)}× is ${fmt(t.min - ratio)}× short of ${t.min}×`;
  }
  return { ...r, ratio, ratioMin, ratioOf: "A/B", pass, miss };
}

export function absoluteRow(
  r: Omit<Row, "ratio" | "ratioMin" | "ratioOf" | "pass" | "target" | "miss"> & {
    target: Extract<Target, { kind: "abs-max" }>;
  },
): Row {
  const pass = r.a.median < r.target.max;
  return {
    ...r,
    ratio: r.a.median / r.target.max,
    ratioMin: r.a.min / r.target.max,
    ratioOf: "A/target",
    pass,
    miss: pass ? undefined : `${fmt(r.a.median)}${unitOf(r.a)}, not below ${r.target.max}`,
  };
}

/** A row judged on what A adds over B, from pairs measured back to back. */
export function deltaRow(
  r: Omit<Row, "ratio" | "ratioMin" | "ratioOf" | "pass" | "target" | "delta" | "miss"> & {
    b: Sample;
    target?: Extract<Target, { kind: "delta-max" }>;
  },
): Row {
  const delta = differences(r.a, r.b, `${r.a.label} − ${r.b.label}`);
  const t = r.target;
  const pass = t ? delta.median <= t.max : undefined;
  return {
    ...r,
    delta,
    ratio: t ? delta.median / t.max : delta.median,
    ratioMin: t ? delta.min / t.max : delta.min,
    ratioOf: t ? "(A−B)/target" : "A−B",
    pass,
    miss: t && !pass
      ? `adds ${fmt(delta.median)} ${delta.unit}: ${
        fmt(delta.median - t.max)
      } ${delta.unit} over ${t.max} ${delta.unit}`
      : undefined,
  };
}

/** A−B for each pair of runs measured back to back (the i-th of each). */
export function differences(a: Sample, b: Sample, label: string): Sample {
  const n = Math.min(a.values.length, b.values.length);
  return sample(label, a.unit, Array.from({ length: n }, (_, i) => a.values[i] - b.values[i]));
}

/** Runs `cmd` once with exactly `env`; returns the wall time in ms and its output. */
export async function timeOnce(
  cmd: string[],
  opts: { env: Record<string, string>; cwd?: string; stdin?: string; timeoutMs?: number },
): Promise<{ ms: number; code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env: opts.env,
    clearEnv: true,
    cwd: opts.cwd,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
  const t0 = performance.now();
  const p = child.spawn();
  const timer = setTimeout(() => {
    try {
      p.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, opts.timeoutMs ?? 30_000);
  try {
    if (opts.stdin !== undefined) {
      const w = p.stdin.getWriter();
      await w.write(new TextEncoder().encode(opts.stdin));
      await w.close();
    }
    const out = await p.output();
    const ms = performance.now() - t0;
    const dec = new TextDecoder();
    return { ms, code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Times `runs` runs of `cmd` (after `warmup` untimed ones); `before` runs untimed before
 * each. Every run must exit 0 (and pass `check`), or the benchmark stops with the output.
 */
export async function timeRuns(
  label: string,
  cmd: string[],
  opts: {
    env: Record<string, string>;
    cwd?: string;
    runs: number;
    warmup?: number;
    stdin?: () => Promise<string | undefined> | string | undefined;
    before?: () => Promise<void>;
    check?: (out: { stdout: string; stderr: string }) => void;
  },
): Promise<Sample> {
  const values: number[] = [];
  for (let i = 0; i < (opts.warmup ?? 0) + opts.runs; i++) {
    await opts.before?.();
    const stdin = await opts.stdin?.();
    const r = await timeOnce(cmd, { env: opts.env, cwd: opts.cwd, stdin });
    if (r.code !== 0) {
      throw new Error(
        `${label}: \`${cmd.join(" ")}\` exited ${r.code}\n${r.stderr.slice(0, 2000)}`,
      );
    }
    opts.check?.(r);
    if (i >= (opts.warmup ?? 0)) values.push(r.ms);
  }
  return sample(label, "ms", values);
}

/** A number for the table: 3 significant digits, no exponent. */
export function fmt(n: number): string {
  if (n === Infinity) return "∞";
  if (!Number.isFinite(n)) return String(n);
  const a = Math.abs(n);
  if (a >= 100) return n.toFixed(0);
  if (a >= 10) return n.toFixed(1);
  if (a >= 1) return n.toFixed(2);
  return n.toFixed(3);
}

function side(s: Sample | undefined): string {
  if (!s) return "—";
  if (s.unit === "count") return `${s.label}: ${s.min} / ${s.median}`;
  return `${s.label}: ${fmt(s.min)} / ${fmt(s.median)} ${s.unit}`;
}

function verdict(r: Row): string {
  if (r.pass === undefined) return "—";
  return r.pass ? "pass" : `FAIL: ${r.miss ?? "missed"}`;
}

function targetText(r: Row): string {
  return r.target ? r.target.text : "—";
}

function ratioText(r: Row): string {
  if (r.delta) return `A−B ${fmt(r.delta.median)} ${r.delta.unit}`;
  return `${fmt(r.ratio)}× ${r.ratioOf}`;
}

/** The table as Markdown (it reads well in a terminal too). */
export function table(rows: Row[]): string {
  const head = ["#", "benchmark", "A: min / median", "B: min / median", "result", "target", ""];
  const body = rows.map((r) => [
    r.id,
    r.method === "modelled" ? `${r.name} (MODELLED, not measured)` : r.name,
    side(r.a),
    side(r.b),
    ratioText(r),
    targetText(r),
    verdict(r),
  ]);
  const all = [head, ...body];
  const width = head.map((_, i) => Math.max(...all.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    "| " + cells.map((c, i) => c.padEnd(width[i])).join(" | ") + " |";
  return [
    line(head),
    "| " + width.map((w) => "-".repeat(w)).join(" | ") + " |",
    ...body.map(line),
  ].join("\n");
}
