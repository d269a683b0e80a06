/** stsh: argv -> command. Everything else lives in lib/. */
if (import.meta.main) {
  const args = Deno.args;
  let code: number | undefined;
  // The shell hooks' command skips the general CLI (and commander's start-up cost); so do
  // warm env, credential-process, exec and current (lib/quick.ts), which otherwise fall
  // through to the full CLI having printed nothing.
  if (args[0] === "hook") {
    code = await (await import("./lib/hook.ts")).hookMain(args.slice(1));
  } else if (
    (args[0] === "env" || args[0] === "credential-process" || args[0] === "exec" ||
      args[0] === "current") && Deno.env.get("STSH_NO_QUICK") !== "1"
  ) {
    code = await (await import("./lib/quick.ts")).quickMain(args);
  }
  code ??= await (await import("./lib/cli.ts")).main(args);
  Deno.exit(code);
}
