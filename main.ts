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

if (import.meta.main) {
  const args = Deno.args;
  let code: number | undefined;
  // The shell hooks' command skips the general CLI (and commander's start-up cost); so do
  // warm env, credential-process, exec and current (lib/quick.ts), which otherwise fall
  // through to the full CLI having printed nothing.
  if (args[0] === "hook") {
    code = await (await lib<typeof import("./lib/hook.ts")>("hook")).hookMain(args.slice(1));
  } else if (
    (args[0] === "env" || args[0] === "credential-process" || args[0] === "exec" ||
      args[0] === "current") && Deno.env.get("STSH_NO_QUICK") !== "1"
  ) {
    code = await (await lib<typeof import("./lib/quick.ts")>("quick")).quickMain(args);
  }
  code ??= await (await lib<typeof import("./lib/cli.ts")>("cli")).main(args);
  Deno.exit(code);
}
