/**
 * End to end: the REAL stsh (bin/stsh, the `deno run` launcher) behind its shell hooks, in
 * real interactive zsh, bash and PowerShell sessions in a pseudo-terminal
 * (tests/support/pty.ts), against the STS emulator (tests/support/world.ts), with the real
 * AWS CLI (`/usr/bin/aws --endpoint-url …`) signing calls with what the hook exported.
 *
 * Each session is set up the way a person sets it up: `stsh` on PATH, and the init line in
 * the rc file (`eval "$(stsh init bash)"`, pwsh `Invoke-Expression (& stsh init pwsh |
 * Out-String)`). The `stsh` on PATH is a small wrapper that appends its argv to a log and then
 * execs bin/stsh; `STSH_BIN` names the wrapper, so `stsh init` embeds it and every start of
 * the program by the hook is counted. The world has no `mfa_process`, so the MFA question
 * really appears on the terminal and the test types the code (or Ctrl-C).
 *
 * Roles `a` and `b` demand MFA and share the source profile `me`: one MFA session serves both.
 */
import assert from "node:assert/strict";
import {
  activeLine,
  ARN_A,
  ARN_B,
  e2e,
  STATE,
  until,
  UNTRUSTED,
  USER_VARS,
  walk,
} from "./support/session.ts";

// 1-3: one MFA question for a tagged tree, a second role from the same MFA session, and
// leaving puts back exactly what the user had.
e2e(
  "cd asks once for MFA, b reuses the session, leaving restores the user's variables",
  async (s) => {
    const { d, w, shell } = s;
    await s.run(d.setVars(USER_VARS));
    const before = await s.vars();
    for (const [k, v] of Object.entries(USER_VARS)) assert.equal(before[k], v, k);
    assert.equal(before.AWS_SESSION_TOKEN, undefined);
    for (const k of STATE) assert.equal(before[k], undefined, k);
    const n0 = (await s.starts()).length;

    // 1. Into the trusted tree tagged `a`: the question, a code, and the role's identity.
    await s.expectQuestion(d.cd(s.dirA), "a");
    await s.answer(await w.emu.code(w.alice));
    assert.deepEqual(await s.startsSince(n0), [`hook ${shell}`, `hook ${shell} --prompt`]);
    const inA = await s.vars();
    assert.equal(inA.STSH_PROFILE, "a");
    assert.match(inA.AWS_ACCESS_KEY_ID, /^ASIA/);
    assert.equal(inA.AWS_PROFILE, undefined, "AWS_PROFILE would override the keys");
    assert.match(await s.arn(), ARN_A);
    assert.equal(w.emu.counts.GetSessionToken, 1);
    // One line says what is active now.
    assert.match(await s.t.screen(), activeLine("a", s.dirA));
    // Children see the role's credentials, never the user's own saved secret.
    const child = await s.childEnv();
    assert.ok(!child.includes(USER_VARS.AWS_SECRET_ACCESS_KEY), "a child holds the saved secret");
    assert.ok(!child.includes("STSH_PREV"), "a child holds the saved values");

    // 2. Into the tree tagged `b`: no question, one start, b's identity, the same MFA session.
    const n1 = (await s.starts()).length;
    await s.run(d.cd(s.dirB));
    assert.deepEqual(await s.startsSince(n1), [`hook ${shell}`]);
    const inB = await s.vars();
    assert.equal(inB.STSH_PROFILE, "b");
    assert.notEqual(inB.AWS_ACCESS_KEY_ID, inA.AWS_ACCESS_KEY_ID);
    assert.match(await s.arn(), ARN_B);
    assert.equal(w.emu.counts.GetSessionToken, 1);
    assert.equal(w.emu.counts.AssumeRole, 2);
    assert.deepEqual(await s.questions(), ["a"]);

    assert.match(await s.t.screen(), activeLine("b", s.dirB));

    // 3. Out of the tagged trees: every AWS_* and STSH_* variable as it was before.
    await s.run(d.cd(s.plain));
    assert.deepEqual(await s.vars(), before);
    assert.match(await s.t.screen(), /stsh: b cleared; your own AWS variables are back\./);
    assert.deepEqual(await s.startsSince(n1), [`hook ${shell}`, `hook ${shell}`]);
  },
);

// 4. Expiry on the real clock: role credentials last 12 s, the MFA session 30 s, and
// credentials count as expired 4 s before their end.
const ROLE_S = 12;
const SESSION_S = 30;
const MARGIN_S = 4;
e2e(
  "near expiry the next prompt renews silently; after the MFA session it asks once",
  async (s) => {
    const { d, w, shell } = s;
    await s.expectQuestion(d.cd(s.dirA), "a");
    await s.answer(await w.emu.code(w.alice));
    // The MFA session was made before this moment, so it ends by then + SESSION_S.
    const applied = Date.now() / 1000;
    const v1 = await s.vars();
    assert.equal(v1.STSH_PROFILE, "a");
    const exp1 = Number(v1.STSH_EXPIRES);
    assert.ok(exp1 > applied - 1 && exp1 <= applied + ROLE_S, `STSH_EXPIRES ${exp1}`);
    assert.deepEqual([w.emu.counts.GetSessionToken, w.emu.counts.AssumeRole], [1, 1]);
    const n1 = (await s.starts()).length;

    // Not near expiry yet: a prompt starts nothing (checked only while that is certain).
    await s.enter(d.nop);
    if (Date.now() / 1000 < exp1 - MARGIN_S - 0.5) assert.equal((await s.starts()).length, n1);

    // The role is near its end: the next Enter renews it from the MFA session, silently.
    await until(exp1 - MARGIN_S + 0.5);
    const n2 = (await s.starts()).length;
    await s.enter(d.nop);
    assert.deepEqual(await s.startsSince(n2), [`hook ${shell}`]);
    const v2 = await s.vars();
    assert.notEqual(v2.AWS_ACCESS_KEY_ID, v1.AWS_ACCESS_KEY_ID);
    assert.equal(v2.STSH_PROFILE, "a");
    const exp2 = Number(v2.STSH_EXPIRES);
    assert.ok(exp2 > exp1, `renewed STSH_EXPIRES ${exp2} after ${exp1}`);
    assert.deepEqual([w.emu.counts.GetSessionToken, w.emu.counts.AssumeRole], [1, 2]);
    assert.deepEqual(await s.questions(), ["a"]);

    // The MFA session is at its end (and the renewed role near its own): the next Enter asks
    // exactly one question. The first code's 30-s step is spent: answer with the next one.
    await until(Math.max(applied + SESSION_S - MARGIN_S + 1, exp2 - MARGIN_S + 0.5));
    const n3 = (await s.starts()).length;
    await s.expectQuestion(d.nop, "a");
    await s.answer(await w.emu.code(w.alice, 1));
    assert.deepEqual(await s.startsSince(n3), [`hook ${shell}`, `hook ${shell} --prompt`]);
    const v3 = await s.vars();
    assert.equal(v3.STSH_PROFILE, "a");
    assert.notEqual(v3.AWS_ACCESS_KEY_ID, v2.AWS_ACCESS_KEY_ID);
    assert.equal(w.emu.counts.GetSessionToken, 2);
    assert.match(await s.arn(), ARN_A);
    assert.deepEqual(await s.questions(), ["a", "a"]);
  },
  {
    roleLifetimeSeconds: ROLE_S,
    sessionLifetimeSeconds: SESSION_S,
    env: { STSH_REFRESH_MARGIN: String(MARGIN_S) },
  },
);

// 5. Ctrl-C at the question: the prompt comes back with the status of the user's command,
// nothing is set, and the same tree is not asked about again until `stsh reload`.
e2e("Ctrl-C at the question keeps $? and sets nothing, and is not asked again", async (s) => {
  const { d, w, shell } = s;
  await s.run(d.setVars({ AWS_ACCESS_KEY_ID: USER_VARS.AWS_ACCESS_KEY_ID }));
  const before = await s.vars();
  const n0 = (await s.starts()).length;
  await s.expectQuestion(d.cdAndFail(s.dirA, 7), "a");
  await s.answer(null);
  // The first command of the next line reads the status of the line before.
  assert.equal(await s.run(d.status), d.statusWant(7));
  // One line says how to be asked again.
  assert.match(await s.t.screen(), /stsh: cancelled; `stsh reload` \(or cd\) asks again\./);
  assert.deepEqual(await s.startsSince(n0), [`hook ${shell}`, `hook ${shell} --prompt`]);
  // Enter again (an empty line, then a command): no second question, no start.
  await s.enter();
  await s.enter(d.nop);
  assert.deepEqual(await s.startsSince(n0), [`hook ${shell}`, `hook ${shell} --prompt`]);
  assert.deepEqual(await s.questions(), ["a"]);
  assert.equal((await s.run("printenv AWS_ACCESS_KEY_ID")).trim(), USER_VARS.AWS_ACCESS_KEY_ID);
  assert.deepEqual(await s.vars(), before);
  assert.equal(w.emu.counts.GetSessionToken, undefined);

  // `stsh reload` makes the next prompt look again: asked, answered, set.
  await s.expectQuestion("stsh reload", "a");
  await s.answer(await w.emu.code(w.alice));
  assert.equal((await s.vars()).STSH_PROFILE, "a");
  assert.match(await s.arn(), ARN_A);
});

// 5b. Ctrl-C after the code was typed: the STS call that spends it finishes, and the
// credentials it bought are set (bash, zsh and fish; pwsh's hook needs the program gone at
// once after Ctrl-C, so there the code is given up, as the README says).
e2e(
  "Ctrl-C after the code was typed does not waste it",
  async (s) => {
    const { d, w } = s;
    w.emu.failNext("GetSessionToken", "Slow");
    await s.expectQuestion(d.cd(s.dirA), "a");
    const before = await s.prompts();
    await s.t.send(await w.emu.code(w.alice));
    await s.t.key("Enter");
    // Ctrl-C while the emulator holds the GetSessionToken call that carries the code.
    const deadline = Date.now() + 10_000;
    while (!w.emu.calls.some((c) => c.action === "GetSessionToken")) {
      if (Date.now() > deadline) throw new Error("no GetSessionToken call");
      await new Promise((r) => setTimeout(r, 20));
    }
    await s.t.key("C-c");
    await s.t.waitFor(s.promptAnywhere, { count: before + 1 });
    assert.equal(w.emu.counts.GetSessionToken, 1);
    assert.equal((await s.vars()).STSH_PROFILE, "a");
    assert.match(await s.arn(), ARN_A);
    assert.doesNotMatch(await s.t.screen(), /cancelled/);
  },
  {},
  ["bash", "zsh", "fish"],
);

// 6. Tags that must never give credentials, ask, or run anything.
const HOSTILE = ["$(touch PWNED)", "'; touch PWNED; '", "a\nb", "O’Brien"];

e2e("untrusted and hostile tags: no credentials, no question, nothing executed", async (s) => {
  const { d, w } = s;
  await s.run(d.setVars({ AWS_ACCESS_KEY_ID: USER_VARS.AWS_ACCESS_KEY_ID }));
  const before = await s.vars();
  const untrusted = w.sb.path("work", "untrusted");
  await w.sb.write("work/untrusted/.aws-profile", "a\n", 0o644);
  const hostile: string[] = [];
  for (const [i, text] of HOSTILE.entries()) {
    hostile.push(await w.sb.write(`work/h${i}/.aws-profile`, text + "\n", 0o644));
    // Not even `stsh allow` makes them count.
    const r = await w.run(["allow", w.sb.path("work", `h${i}`)]);
    assert.equal(r.code, 2, `stsh allow accepted ${JSON.stringify(text)}`);
  }
  const n0 = (await s.starts()).length;

  // The untrusted tag: one notice, however often one comes back.
  for (let i = 0; i < 2; i++) {
    await s.run(d.cd(untrusted));
    assert.deepEqual(await s.vars(), before);
    await s.run(d.cd(s.plain));
  }
  const screen = await s.t.screen();
  assert.equal(screen.split(UNTRUSTED).length - 1, 1, `the notice is not shown once:\n${screen}`);

  for (const tag of hostile) {
    const dir = tag.slice(0, -"/.aws-profile".length);
    await s.run(d.cd(dir));
    assert.deepEqual(await s.vars(), before, `tag ${tag}`);
    await s.run(d.nop);
    await s.run(d.cd(s.plain));
  }
  assert.match(await s.t.screen(), /does not hold one profile name/);
  assert.deepEqual(await s.questions(), []);
  assert.ok(!(await s.starts()).some((l) => l.includes("--prompt")));
  // One start for each change of tag (in and out), never more; the second visit is quiet.
  const hook = `hook ${s.shell}`;
  assert.deepEqual(await s.startsSince(n0), [
    ...[hook, hook, `${hook} --quiet`, hook],
    ...HOSTILE.flatMap(() => [hook, hook]),
  ]);
  assert.deepEqual(w.emu.counts, {});
  const found: string[] = [];
  for await (const p of walk(s.home)) if (p.endsWith("/PWNED")) found.push(p);
  for (const p of [`${Deno.cwd()}/PWNED`, "/PWNED"]) {
    if (await Deno.stat(p).then(() => true, () => false)) found.push(p);
  }
  assert.deepEqual(found, [], "a tag's contents were executed");
});

// 6b. Tag FILES that must never wedge a prompt (issue 12.1): each shell and the binary look
// before they open — only a non-empty regular file of the user's is read, with a byte limit —
// and the binary says one line per directory. A read of a FIFO would block the prompt for
// good and a read without limit of the 50 GB file for minutes: each step is timed.
const HOSTILE_FILES: Record<string, (tag: string, dir: string) => Promise<void>> = {
  fifo: (t) => mkfifo(t),
  "link-to-fifo": async (t, d) => {
    await mkfifo(`${d}/pipe`);
    await Deno.symlink("pipe", t);
  },
  "link-to-pagemap": (t) => Deno.symlink("/proc/self/pagemap", t),
  "link-to-dev-zero": (t) => Deno.symlink("/dev/zero", t),
  "sparse-50G": async (t) => {
    const f = await Deno.open(t, { write: true, create: true, mode: 0o644 });
    await f.truncate(50 * 2 ** 30);
    f.close();
  },
  "nul-bytes": (t) => Deno.writeFile(t, new Uint8Array(4096), { mode: 0o644 }),
  "dangling-link": (t, d) => Deno.symlink(`${d}/nothing-here`, t),
  ...(Deno.uid() === 0
    ? {
      "other-user": async (t: string) => {
        await Deno.writeTextFile(t, "a\n", { mode: 0o644 });
        await Deno.chown(t, 65534, 65534);
      },
    }
    : {}),
};

async function mkfifo(path: string): Promise<void> {
  assert.ok((await new Deno.Command("mkfifo", { args: [path] }).output()).success, path);
}

e2e("hostile tag files: the prompt comes back, nothing asked or set, one line each", async (s) => {
  const { d, w, shell } = s;
  await s.run(d.setVars({ AWS_ACCESS_KEY_ID: USER_VARS.AWS_ACCESS_KEY_ID }));
  const before = await s.vars();
  const dirs: [string, string][] = [];
  for (const [kind, make] of Object.entries(HOSTILE_FILES)) {
    const dir = w.sb.path("hostile", kind);
    await Deno.mkdir(dir, { recursive: true });
    await make(`${dir}/.aws-profile`, dir);
    dirs.push([kind, dir]);
  }
  const step = async (line: string, kind: string) => {
    const t0 = performance.now();
    await s.run(line, 10_000);
    const ms = performance.now() - t0;
    // A second on a quiet machine (one start of stsh); a loaded CI box gets five.
    assert.ok(ms < 5_000, `${kind}: '${line}' took ${ms.toFixed(0)} ms`);
  };
  const n0 = (await s.starts()).length;
  for (const [kind, dir] of dirs) {
    // In, a prompt there, out, in again (the notice is not repeated), out.
    await step(d.cd(dir), kind);
    await step(d.nop, kind);
    assert.deepEqual(await s.vars(), before, kind);
    await step(d.cd(s.plain), kind);
    await step(d.cd(dir), kind);
    await step(d.cd(s.plain), kind);
  }
  assert.deepEqual(await s.questions(), [], "a hostile tag asked for a code");
  assert.deepEqual(await s.vars(), before);
  assert.deepEqual(w.emu.counts, {});
  const hook = `hook ${shell}`;
  assert.deepEqual(
    await s.startsSince(n0),
    dirs.flatMap(() => [hook, hook, `${hook} --quiet`, hook]),
    "one start per change of tag, never one on an unchanged prompt",
  );
  const screen = await s.t.screen();
  for (const [kind, dir] of dirs) {
    const said = screen.split("\n").filter((l) =>
      l.startsWith("stsh: ") && l.includes(`${dir}/.aws-profile`)
    );
    assert.equal(said.length, 1, `${kind}: ${JSON.stringify(said)}`);
    assert.match(said[0], /; ignored\./, kind);
  }
});

// 7, 8. The init line run twice installs one hook; 200 unchanged prompts with credentials
// active start no process.
e2e("init twice installs one hook; 200 unchanged prompts start nothing", async (s) => {
  const { d, w, shell } = s;
  if (shell === "bash") {
    const pc = await s.run('echo "[${PROMPT_COMMAND[*]}]"');
    assert.equal(pc.split("__stsh_hook").length - 1, 1, pc);
  } else if (shell === "zsh") {
    const fns = await s.run('echo "[${precmd_functions[*]}] [${chpwd_functions[*]}]"');
    assert.equal(fns.split("__stsh_precmd").length - 1, 1, fns);
    assert.equal(fns.split("__stsh_chpwd").length - 1, 1, fns);
  } else if (shell === "fish") {
    const fns = await s.run("functions --handlers | string match '*__stsh*' | string join ,");
    assert.equal(fns.split("fish_prompt __stsh_prompt").length - 1, 1, fns);
    assert.equal(fns.split("PWD __stsh_chpwd").length - 1, 1, fns);
  } else {
    assert.equal(
      await s.run(
        "$ExecutionContext.SessionState.InvokeCommand.LocationChangedAction.GetInvocationList().Count",
      ),
      "1",
    );
    assert.equal(
      await s.run('"$global:__stsh_prompt_old" -like "*__stsh_prompt_wrapper*"'),
      "False",
    );
  }
  // One start per change (plus the question's), never two.
  const n0 = (await s.starts()).length;
  await s.expectQuestion(d.cd(s.dirA), "a");
  await s.answer(await w.emu.code(w.alice));
  assert.deepEqual(await s.startsSince(n0), [`hook ${shell}`, `hook ${shell} --prompt`]);
  const n1 = (await s.starts()).length;
  await s.run(d.cd(s.dirB));
  assert.deepEqual(await s.startsSince(n1), [`hook ${shell}`]);
  assert.equal((await s.vars()).STSH_PROFILE, "b");

  // 200 prompts in the tagged tree, credentials active: no process at all.
  const n2 = (await s.starts()).length;
  const p0 = await s.prompts();
  await s.t.send(`${d.nop}\r`.repeat(200));
  await s.run(d.nop, 90_000);
  assert.ok((await s.prompts()) >= p0 + 201, "not all 200 prompts were drawn");
  assert.deepEqual(await s.startsSince(n2), [], "an unchanged prompt started a process");
  assert.equal((await s.vars()).STSH_PROFILE, "b");
}, { initTimes: 2 });

// 9. `assume` pins a profile over directory tags; `assume --clear` restores.
e2e("assume pins over tags, shows the time left, and --clear restores", async (s) => {
  const { d, w, shell } = s;
  await s.run(d.setVars(USER_VARS));
  const before = await s.vars();
  await s.expectQuestion("assume a", "a");
  await s.answer(await w.emu.code(w.alice));
  const pinned = await s.vars();
  assert.equal(pinned.STSH_PROFILE, "a");
  assert.equal(pinned.STSH_PINNED, "1");
  assert.match(await s.t.screen(), /stsh: a \(role a in 123456789012\) assumed: (59|60)m left/);
  assert.match(await s.arn(), ARN_A);

  const n1 = (await s.starts()).length;
  await s.run(d.cd(s.dirB));
  await s.run(d.nop);
  assert.deepEqual(await s.startsSince(n1), [], "a tag replaced or re-checked a pinned profile");
  const inB = await s.vars();
  assert.equal(inB.STSH_PROFILE, "a");
  assert.equal(inB.AWS_ACCESS_KEY_ID, pinned.AWS_ACCESS_KEY_ID);
  assert.match(await s.arn(), ARN_A);
  assert.match(await s.run("assume"), /^a \(assumed\): (59|60)m left, until \d\d:\d\d$/);

  await s.run(d.cd(s.plain));
  await s.run("assume --clear");
  assert.deepEqual(await s.vars(), before);
  assert.match(await s.t.screen(), /stsh: a cleared; your own AWS variables are back\./);
  assert.deepEqual(await s.startsSince(n1), ["current", `hook ${shell} --unassume`]);
  assert.deepEqual(await s.questions(), ["a"]);
  assert.equal(w.emu.counts.GetSessionToken, 1);
});
