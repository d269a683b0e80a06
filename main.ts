/** stsh: argv -> command. Everything else lives in lib/. */

/**
 * A module of lib/, imported through a computed URL rather than `import("./lib/x.ts")`: before
 * running anything, Deno reads and parses every module that a literal dynamic import can reach
 * (for `stsh current`, all of lib/). This way a command reads only the modules it runs.
 * deno.json's compile task includes lib/ for the same reason.
 */
function lib<T>(name: string): Promise<T> {
  return import(new URL(`./lib/${name}.ts`, import.meta.url).href);
}

/** The program cannot load (an install whose module cache is damaged): one line, no trace. */
function cannotStart(e: unknown): never {
  if (Deno.args.includes("--debug")) console.error(e);
  const first = String((e as Error)?.message ?? e).split("\n")[0];
  // deno-lint-ignore no-control-regex
  const why = first.replace(/[\x00-\x1f\x7f-\x9f]/g, "");
  console.error(`stsh: cannot start (${why}); reinstall with ./install.sh`);
  // pwsh's `Invoke-Expression (& stsh init pwsh | Out-String)` refuses an empty string.
  if (Deno.args[0] === "init" && Deno.args[1] === "pwsh") console.log("# stsh cannot start");
  Deno.exit(1);
}

if (import.meta.main) {
  // The installed launcher (bin/stsh) points Deno at the install's own module cache and
  // registry; give the commands stsh runs the user's own values back ("=value", or "" for
  // unset), before anything else runs. Deno itself read them at start-up.
  for (const name of ["DENO_DIR", "NPM_CONFIG_REGISTRY"]) {
    const was = Deno.env.get(`STSH_WAS_${name}`);
    if (was === undefined) continue;
    Deno.env.delete(`STSH_WAS_${name}`);
    if (was.startsWith("=")) Deno.env.set(name, was.slice(1));
    else Deno.env.delete(name);
  }
  const args = Deno.args;
  const load = <T>(name: string) => lib<T>(name).catch(cannotStart);
  let code: number | undefined;
  // The shell hooks' command skips the general CLI (and commander's start-up cost); so do
  // warm env, credential-process, exec and current (lib/quick.ts), which otherwise fall
  // through to the full CLI having printed nothing.
  if (args[0] === "hook") {
    code = await (await load<typeof import("./lib/hook.ts")>("hook")).hookMain(args.slice(1));
  } else if (
    (args[0] === "env" || args[0] === "credential-process" || args[0] === "exec" ||
      args[0] === "current") && Deno.env.get("STSH_NO_QUICK") !== "1"
  ) {
    code = await (await load<typeof import("./lib/quick.ts")>("quick")).quickMain(args);
  }
  code ??= await (await load<typeof import("./lib/cli.ts")>("cli")).main(args);
  Deno.exit(code);
}
