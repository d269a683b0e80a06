/**
 * The README's set-up as a new user meets it: `./install.sh`, then a stsh that stands on its
 * own — the Deno it was installed with, its own module cache, no ~/.cache/deno, no registry —
 * and one line, never a trace, when it cannot start.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT } from "./support/fixture.ts";
import { parseExports } from "./support/fixture.ts";
import { findExe } from "./support/shells.ts";
import { world } from "./support/world.ts";

const dec = new TextDecoder();
const PWSH = findExe("pwsh", [join(Deno.env.get("HOME") ?? "/root", ".dotnet", "tools")]);

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `cmd` with exactly `env`, without a controlling terminal (setsid), as `user`. */
async function run(
  cmd: string[],
  env: Record<string, string>,
  opts: { cwd?: string; user?: string } = {},
): Promise<Out> {
  const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  // runuser sets HOME and SHELL of its own; `env -i` puts back exactly ours.
  const argv = opts.user
    ? ["/usr/sbin/runuser", "-u", opts.user, "--", "/usr/bin/env", "-i", ...envArgs, ...cmd]
    : cmd;
  const o = await new Deno.Command("/usr/bin/setsid", {
    args: ["-w", ...argv],
    env,
    clearEnv: true,
    cwd: opts.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: o.code, stdout: dec.decode(o.stdout), stderr: dec.decode(o.stderr) };
}

const show = (o: Out) => `exit ${o.code}\n--- stdout\n${o.stdout}\n--- stderr\n${o.stderr}`;

/** A port nothing listens on: a registry that is not there. */
function closedRegistry(): string {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return `http://127.0.0.1:${port}/`;
}

/**
 * A directory of links to every program on PATH except deno and stsh: a machine without Deno
 * (nor an stsh installed earlier, e.g. by CI's own ./install.sh into /usr/local/bin, which
 * `command -v stsh` would otherwise find before the one under test).
 */
async function pathWithoutDeno(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "stsh-nodeno-" });
  await Deno.chmod(dir, 0o755);
  for (const d of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    if (!d.startsWith("/")) continue;
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(d)];
    } catch {
      continue;
    }
    for (const e of entries) {
      if (e.name === "deno" || e.name === "stsh") continue;
      await Deno.symlink(join(d, e.name), join(dir, e.name)).catch(() => {}); // first one wins
    }
  }
  return dir;
}

function entries(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name);
}

/** A stderr that is one `stsh: cannot start (…); reinstall with ./install.sh` line. */
function assertCannotStart(o: Out, reason: RegExp) {
  assert.notEqual(o.code, 0, show(o));
  assert.equal(o.stdout, "", show(o));
  assert.match(o.stderr, /^stsh: cannot start \(.+\); reinstall with \.\/install\.sh\n$/, show(o));
  assert.match(o.stderr, reason, show(o));
}

/**
 * An interactive bash whose ~/.bashrc runs `eval "$(stsh init bash)"` and then a last line:
 * the rc file must reach that line. Returns stdout and stderr without bash's own words about
 * job control (there is no terminal).
 */
async function bashrc(stsh: string, env: Record<string, string>): Promise<Out> {
  const home = await Deno.makeTempDir({ prefix: "stsh-rc-" });
  try {
    await Deno.writeTextFile(
      join(home, ".bashrc"),
      `eval "$(${stsh} init bash)"\necho "rc: end reached, assume is $(type -t assume)"\n`,
    );
    const o = await run(["/bin/bash", "-ic", "true"], { ...env, HOME: home });
    o.stderr = o.stderr.split("\n").filter((l) =>
      l && !/^bash: (cannot set terminal process group|no job control)/.test(l)
    ).map((l) => l + "\n").join("");
    return o;
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

Deno.test({
  name:
    "install.sh with deno on PATH: a launcher that needs no ~/.cache/deno, no registry and no deno on PATH; one line when it cannot start; again is harmless",
  sanitizeResources: false,
  fn: async () => {
    const prefix = await Deno.realPath(await Deno.makeTempDir({ prefix: "stsh-install-" }));
    const nodeno = await pathWithoutDeno();
    const emptyHome = await Deno.makeTempDir({ prefix: "stsh-emptyhome-" });
    const install = () =>
      // The environment of the person running the tests (a proxy's CA, say), as it is.
      run([join(ROOT, "install.sh"), "--prefix", prefix], Deno.env.toObject());
    try {
      const first = await install();
      assert.equal(first.code, 0, show(first));
      assert.match(first.stdout, /stsh \d+\.\d+\.\d+ is ready/);
      assert.match(
        first.stdout,
        /built .* with deno compile|installed .* as a launcher running \/\S*deno with/,
      );
      // Not on PATH: the exact line to add.
      assert.ok(first.stdout.includes(`export PATH="${prefix}/bin:$PATH"`), first.stdout);
      const stsh = join(prefix, "bin", "stsh");
      const launcher = await Deno.readTextFile(stsh);
      const cache = join(prefix, "share", "stsh", "cache");
      if (launcher.startsWith("#!")) {
        assert.match(launcher, /^deno='\/\S+'$/m, "the Deno, by absolute path");
        assert.ok(launcher.includes(`\ncache='${cache}'\n`), launcher);
      }

      // With an empty HOME, no registry, no DENO_DIR, and no deno on PATH.
      const registry = closedRegistry();
      const bare = { PATH: nodeno, HOME: emptyHome, NPM_CONFIG_REGISTRY: registry };
      const v = await run([stsh, "--version"], bare);
      assert.equal(v.code, 0, show(v));
      assert.match(v.stdout, /^\d+\.\d+\.\d+\n$/);
      assert.equal(v.stderr, "");
      const init = await run([stsh, "init", "bash"], bare);
      assert.equal(init.code, 0, show(init));
      assert.equal(init.stderr, "");
      assert.ok(init.stdout.includes(`'${stsh}'`), "the hook calls the installed stsh back");
      // A project directory with a deno.json and an .npmrc of its own changes nothing.
      const project = await Deno.makeTempDir({ dir: emptyHome, prefix: "project-" });
      await Deno.writeTextFile(join(project, "deno.json"), "{ not json");
      await Deno.writeTextFile(join(project, ".npmrc"), `registry=${registry}\n`);
      const inProject = await run([stsh, "--version"], bare, { cwd: project });
      assert.equal(inProject.code, 0, show(inProject));
      await Deno.remove(project, { recursive: true });
      assert.deepEqual(entries(emptyHome), [], "nothing written to HOME");

      // The modules loaded only when needed: the STS client (a role behind MFA, through the
      // emulator), the SDK's credential providers (credential_process).
      const w = await world();
      try {
        await w.primeCode();
        await w.sb.write(
          ".aws/config",
          (await Deno.readTextFile(w.sb.path(".aws/config"))) +
            `\n[profile cp]\ncredential_process = /bin/echo '{"Version": 1, ` +
            `"AccessKeyId": "ASIAPROCESSPROCESS01", "SecretAccessKey": "s", "SessionToken": "t"}'\n`,
        );
        const env = { ...w.env, PATH: nodeno, NPM_CONFIG_REGISTRY: registry };
        delete (env as Record<string, string>).DENO_DIR;
        const role = await run([stsh, "env", "a"], env);
        assert.equal(role.code, 0, show(role));
        assert.match(parseExports(role.stdout).AWS_ACCESS_KEY_ID ?? "", /^ASIA/);
        assert.equal(w.emu.counts.AssumeRole, 1);
        const cp = await run([stsh, "env", "cp"], env);
        assert.equal(cp.code, 0, show(cp));
        assert.equal(parseExports(cp.stdout).AWS_ACCESS_KEY_ID, "ASIAPROCESSPROCESS01");
        // The commands stsh runs see the user's DENO_DIR and registry, not the install's.
        const child = await run(
          [stsh, "exec", "cp", "--", "/usr/bin/env"],
          { ...env, DENO_DIR: "/users/own/deno-dir" },
        );
        assert.equal(child.code, 0, show(child));
        assert.match(child.stdout, /^DENO_DIR=\/users\/own\/deno-dir$/m);
        assert.ok(child.stdout.includes(`\nNPM_CONFIG_REGISTRY=${registry}\n`), child.stdout);
        assert.doesNotMatch(child.stdout, /STSH_WAS_/);
        const unset = await run([stsh, "exec", "cp", "--", "/usr/bin/env"], env);
        assert.doesNotMatch(unset.stdout, /^DENO_DIR=/m);
        assert.deepEqual(
          [...Deno.readDirSync(w.sb.home)].map((e) => e.name).filter((n) => n === ".cache"),
          [],
          "no ~/.cache/deno",
        );
      } finally {
        await w.close();
      }

      // A working install: the rc file installs the hook and goes on.
      let rc = await bashrc(stsh, bare);
      assert.equal(rc.stderr, "", show(rc));
      assert.match(rc.stdout, /rc: end reached, assume is function/, show(rc));

      // Broken installs: one line, no trace; `eval "$(stsh init bash)"` evaluates nothing and
      // the rc file carries on.
      if (launcher.startsWith("#!")) {
        await Deno.rename(cache, cache + ".away"); // the module cache removed
        assertCannotStart(await run([stsh, "init", "bash"], bare), /module cache .* is gone/);
        rc = await bashrc(stsh, bare);
        assertCannotStart({ ...rc, code: 1, stdout: "" }, /module cache/);
        assert.match(rc.stdout, /rc: end reached, assume is \n/, show(rc));
        if (PWSH) {
          // pwsh's profile line: Invoke-Expression refuses an empty string, so stsh gives it a
          // comment; the profile goes on with nothing but stsh's line on stderr.
          const ps = await run([
            PWSH,
            "-NoLogo",
            "-NoProfile",
            "-Command",
            `Invoke-Expression (& '${stsh}' init pwsh | Out-String); 'profile: end reached'`,
          ], bare);
          assertCannotStart({ ...ps, code: 1, stdout: "" }, /module cache/);
          assert.equal(ps.stdout, "profile: end reached\n", show(ps));
        }
        await Deno.rename(cache + ".away", cache);

        // Its npm packages gone, the rest still there: main.ts says it, in one line.
        await Deno.rename(join(cache, "npm"), join(cache, "npm.away"));
        const init2 = await run([stsh, "init", "bash"], bare);
        assertCannotStart(init2, /npm package/);
        rc = await bashrc(stsh, bare);
        assert.match(rc.stdout, /rc: end reached/, show(rc));
        assert.equal(rc.stderr.split("\n").filter(Boolean).length, 1, show(rc));
        await Deno.rename(join(cache, "npm.away"), join(cache, "npm"));

        // The Deno it was installed with gone.
        const moved = join(prefix, "stsh-moved-deno");
        await Deno.writeTextFile(moved, launcher.replace(/^deno=.*$/m, "deno='/gone/deno'"));
        await Deno.chmod(moved, 0o755);
        assertCannotStart(await run([moved, "--version"], bare), /\/gone\/deno, is gone/);
      }

      // Again: harmless, and nothing left over.
      const second = await install();
      assert.equal(second.code, 0, show(second));
      const left = [...Deno.readDirSync(join(prefix, "bin"))].map((e) => e.name).sort();
      assert.deepEqual(left, ["stsh"]);
      const share = [...Deno.readDirSync(join(prefix, "share", "stsh"))].map((e) => e.name);
      assert.ok(!share.some((n) => n.endsWith(".new") || n.endsWith(".old")), share.join());
      assert.equal((await run([stsh, "--version"], bare)).stdout, v.stdout);

      const bad = await run([join(ROOT, "install.sh"), "--bogus"], { PATH: nodeno });
      assert.equal(bad.code, 2);
    } finally {
      await Deno.remove(prefix, { recursive: true });
      await Deno.remove(nodeno, { recursive: true });
      await Deno.remove(emptyHome, { recursive: true });
    }
  },
});

/** Copies of the checkout's tracked files (a fresh clone) into `dir`. */
async function cloneInto(dir: string) {
  const ls = await new Deno.Command("git", {
    args: ["-C", ROOT, "ls-files", "-z"],
    stdout: "piped",
  })
    .output();
  const files = ls.success
    ? dec.decode(ls.stdout).split("\0").filter(Boolean)
    : ["install.sh", "main.ts", "deno.json", "deno.lock", "bin/stsh", "bin/preload.ts"];
  for (const f of files) {
    const to = join(dir, f);
    await Deno.mkdir(join(to, ".."), { recursive: true });
    await Deno.copyFile(join(ROOT, f), to).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e; // deleted, not yet committed
    });
  }
  if (!ls.success) {
    for (const d of ["lib", "shell"]) {
      await new Deno.Command("cp", { args: ["-R", join(ROOT, d), dir] }).output();
    }
  }
}

const root = Deno.uid() === 0;
const npm = (Deno.env.get("PATH") ?? "").split(":").some((d) => {
  try {
    return Deno.statSync(join(d, "npm")).isFile;
  } catch {
    return false;
  }
});

Deno.test({
  name:
    "install.sh without deno: in one shell, ./install.sh then deno and stsh on PATH (~/.local/bin); the installed stsh runs with an empty HOME and no registry",
  ignore: !npm,
  sanitizeResources: false,
  fn: async () => {
    // A person (not root: as root the prefix is /usr/local) whose PATH has ~/.local/bin, on a
    // machine without Deno. install.sh fetches Deno from the npm registry.
    const user = root ? "nobody" : undefined;
    const top = await Deno.makeTempDir({ prefix: "stsh-fresh-" });
    const home = join(top, "home"), clone = join(top, "stsh"), empty = join(top, "empty");
    const nodeno = await pathWithoutDeno();
    try {
      for (const d of [home, clone, empty]) await Deno.mkdir(d);
      await cloneInto(clone);
      await Deno.chmod(top, 0o755);
      if (user) {
        const ids = await run(["/usr/bin/id", "-u", user], { PATH: nodeno });
        const uid = Number(ids.stdout.trim());
        for (const d of [home, clone, empty]) {
          await run(["/bin/chown", "-R", `${uid}`, d], { PATH: nodeno });
        }
      }
      const bin = join(home, ".local", "bin");
      const env: Record<string, string> = {
        ...Deno.env.toObject(), // a proxy's CA and the like, as the person has them
        HOME: home,
        PATH: `${nodeno}:${bin}`,
      };
      delete env.DENO_DIR;
      if (user) Object.assign(env, { USER: user, LOGNAME: user });
      const which = await run(["/bin/sh", "-c", "command -v deno || echo none"], env);
      assert.equal(which.stdout, "none\n", "no deno on this PATH");

      // The README's two commands, in one shell (the test suite itself stands in as
      // `deno task fmt --check main.ts`: a task, run by the deno the first command installed).
      const readme = await run(
        [
          "/bin/sh",
          "-c",
          "./install.sh && deno task fmt --check main.ts && command -v deno && command -v stsh && stsh --version",
        ],
        env,
        { cwd: clone, user },
      );
      assert.equal(readme.code, 0, show(readme));
      assert.match(readme.stdout, /installing Deno 2 from the npm package 'deno'/);
      assert.ok(readme.stdout.includes(`installed deno 2.`), readme.stdout);
      assert.doesNotMatch(readme.stdout, /not on your PATH/, "~/.local/bin is on PATH");
      assert.ok(readme.stdout.includes(`${bin}/deno\n${bin}/stsh\n`), readme.stdout);
      const stsh = join(bin, "stsh");
      const launcher = await Deno.readTextFile(stsh);
      assert.ok(
        launcher.includes(`\ndeno='${home}/.local/share/stsh/deno/`),
        "the launcher runs the Deno it installed, by absolute path",
      );

      // An empty HOME, no registry, no DENO_DIR, no deno on PATH.
      const bare = { PATH: nodeno, HOME: empty, NPM_CONFIG_REGISTRY: closedRegistry() };
      const v = await run([stsh, "--version"], bare, { user });
      assert.equal(v.code, 0, show(v));
      assert.match(v.stdout, /^\d+\.\d+\.\d+\n$/);
      assert.equal(v.stderr, "");
      const init = await run([stsh, "init", "bash"], bare, { user });
      assert.equal(init.code, 0, show(init));
      assert.equal(init.stderr, "");
      assert.match(init.stdout, /__stsh_hook/);
      assert.deepEqual(entries(empty), []);
    } finally {
      await Deno.remove(top, { recursive: true });
      await Deno.remove(nodeno, { recursive: true });
    }
  },
});
