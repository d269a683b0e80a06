/** stsh: argv -> command. Everything else lives in lib/. */
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
  // The shell hooks' command skips the general CLI (and commander's start-up cost).
  const hook = Deno.args[0] === "hook";
  let run: (args: string[]) => Promise<number>;
  try {
    run = hook ? (await import("./lib/hook.ts")).hookMain : (await import("./lib/cli.ts")).main;
  } catch (e) {
    // The program cannot load (an install whose module cache is damaged): one line, no trace.
    if (Deno.args.includes("--debug")) console.error(e);
    const first = String((e as Error)?.message ?? e).split("\n")[0];
    // deno-lint-ignore no-control-regex
    const why = first.replace(/[\x00-\x1f\x7f-\x9f]/g, "");
    console.error(`stsh: cannot start (${why}); reinstall with ./install.sh`);
    // pwsh's `Invoke-Expression (& stsh init pwsh | Out-String)` refuses an empty string.
    if (Deno.args[0] === "init" && Deno.args[1] === "pwsh") console.log("# stsh cannot start");
    Deno.exit(1);
  }
  Deno.exit(await run(hook ? Deno.args.slice(1) : Deno.args));
}
