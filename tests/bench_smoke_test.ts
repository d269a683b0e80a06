/**
 * `deno task bench --quick` runs end to end and reports every row with its ratio or
 * difference, and a row that misses its target says by how much. (The benchmark itself is not
 * part of `deno task test`; this is a smoke test with tiny counts, writing its JSON to a
 * temporary file rather than bench/results.json, which git ignores.)
 */
import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

function exists(name: string, extra: string[] = []): boolean {
  for (const dir of [...(Deno.env.get("PATH") ?? "").split(":"), ...extra]) {
    if (!dir) continue;
    try {
      if (Deno.statSync(`${dir}/${name}`).isFile) return true;
    } catch {
      // not here
    }
  }
  return false;
}

interface Side {
  label: string;
  unit: string;
  values: number[];
  min: number;
  median: number;
}

interface Row {
  id: string;
  name: string;
  compared: string;
  a: Side;
  b?: Side;
  /** A number, or "Infinity" (JSON has none) when B's median is 0 or less. */
  ratio: number | string;
  ratioMin: number | string;
  ratioOf: string;
  target?: { text: string };
  pass?: boolean;
  miss?: string;
  method: string;
}

async function ok(cmd: string[]): Promise<boolean> {
  try {
    return (await new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      stdout: "null",
      stderr: "null",
    }).output()).success;
  } catch {
    return false;
  }
}

/** The rows this machine can produce (a missing shell or tool drops its rows, with a note). */
async function expectedRows(): Promise<string[]> {
  const ids = [
    "2-cd-warm",
    "3-env-warm",
    "3-cp-warm",
    "3-exec-warm",
    "3-current",
    "3-env-cold",
    "4-rss",
    "5-mfa-day",
  ];
  const direnv = exists("direnv");
  if (exists("tmux")) {
    for (const shell of ["zsh", "bash"]) {
      if (!exists(shell)) continue;
      ids.push(`1-${shell}`, `2-cd-shell-${shell}`);
      if (direnv) ids.push(`1-${shell}-direnv`);
    }
    if (exists("pwsh", [`${Deno.env.get("HOME") ?? "/root"}/.dotnet/tools`])) {
      ids.push("1-pwsh-enter", "1-pwsh-cmd", "2-cd-shell-pwsh");
    }
    const fishHook = await Deno.stat(`${ROOT}/shell/stsh.fish`).then(() => true, () => false);
    if (exists("fish") && fishHook) {
      ids.push("1-fish", "2-cd-shell-fish");
      if (direnv) ids.push("1-fish-direnv");
    }
  }
  try {
    if (Deno.statSync("/usr/bin/aws").isFile) ids.push("3-aws-warm");
  } catch {
    // no AWS CLI v2 from Debian: the row is skipped
  }
  if (await ok(["python3", "-c", "import boto3"])) ids.push("6-long-job");
  return ids;
}

Deno.test("deno task bench --quick: every row, each with min, median and a numeric ratio", async () => {
  const out = await Deno.makeTempFile({ prefix: "stsh-bench-", suffix: ".json" });
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", `${ROOT}/bench/bench.ts`, "--quick", "--out", out],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), 240_000);
    const res = await child.output().finally(() => clearTimeout(timer));
    const stdout = new TextDecoder().decode(res.stdout);
    const stderr = new TextDecoder().decode(res.stderr);
    assert.equal(res.code, 0, `bench --quick failed:\n${stderr.slice(-4000)}`);

    const report = JSON.parse(await Deno.readTextFile(out)) as {
      quick: boolean;
      rows: Row[];
      machine: Record<string, unknown>;
    };
    assert.equal(report.quick, true);
    const byId = new Map(report.rows.map((r) => [r.id, r]));
    for (const id of await expectedRows()) {
      const r = byId.get(id);
      assert.ok(r, `row ${id} is missing; rows: ${[...byId.keys()].join(", ")}\n${stderr}`);
      // A difference (A−B) can be pushed below zero by noise; a ratio whose B is such a
      // difference is then unbounded ("Infinity").
      const delta = r.ratioOf === "A−B" || r.ratioOf === "(A−B)/target";
      const finite = typeof r.ratio === "number" && Number.isFinite(r.ratio);
      assert.ok(
        (finite && (delta || (r.ratio as number) >= 0)) || r.ratio === "Infinity",
        `row ${id}: ratio ${r.ratio}`,
      );
      for (const s of [r.a, r.b].filter((x): x is Side => x !== undefined)) {
        assert.ok(s.values.length > 0, `row ${id}: ${s.label} has no values`);
        assert.ok(Number.isFinite(s.min) && Number.isFinite(s.median), `row ${id}: ${s.label}`);
        assert.ok(s.min <= s.median, `row ${id}: ${s.label} min above median`);
      }
      if (r.target) assert.equal(typeof r.pass, "boolean", `row ${id}: a target but no verdict`);
      assert.ok(["measured", "modelled"].includes(r.method), `row ${id}: method ${r.method}`);
      // The printed table has the row; a modelled number says so; a miss says by how much.
      const line = stdout.split("\n").find((l) => l.startsWith(`| ${id} `));
      assert.ok(line, `row ${id} is not in the printed table`);
      if (r.method === "modelled") assert.match(line, /MODELLED, not measured/);
      if (r.pass === false) {
        assert.ok(r.miss && r.miss.length > 0, `row ${id}: a miss without its size`);
        assert.ok(line.includes(`FAIL: ${r.miss}`), `row ${id}: ${line}`);
      }
    }
    // Every run's results stay out of the tracked tree.
    if (await ok(["git", "-C", ROOT, "rev-parse"])) {
      assert.ok(
        await ok(["git", "-C", ROOT, "check-ignore", "-q", "bench/results.json"]),
        "bench/results.json is not ignored by git",
      );
      const tracked = new TextDecoder().decode(
        (await new Deno.Command("git", {
          args: ["-C", ROOT, "ls-files", "bench/results.json"],
          stdout: "piped",
        }).output()).stdout,
      );
      assert.equal(tracked.trim(), "", "bench/results.json is tracked");
    }
  } finally {
    await Deno.remove(out).catch(() => undefined);
  }
});
