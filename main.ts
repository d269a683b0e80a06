/** stsh: argv -> command. Everything else lives in lib/. */
if (import.meta.main) {
  // The shell hooks' command skips the general CLI (and commander's start-up cost).
  const code = Deno.args[0] === "hook"
    ? await (await import("./lib/hook.ts")).hookMain(Deno.args.slice(1))
    : await (await import("./lib/cli.ts")).main(Deno.args);
  Deno.exit(code);
}
