/**
 * Tab completion for every shell from one place: `stsh complete -- WORD…` gets the words of
 * the command line from the command's name (`stsh` or `assume`) to the word under the cursor
 * and prints the candidates, one per line. What stsh's commands, options and their values are
 * is read from the commander definitions themselves, so completion cannot drift from them.
 */
import type { Command, Option } from "commander";

/** Commands that exist for the shells, not for people. */
const HIDDEN = new Set(["hook", "complete", "help"]);
/** Options every command understands (main() takes them anywhere, see normalizeArgs). */
const EVERYWHERE = ["--debug", "--help"];

function longFlags(options: readonly Option[]): string[] {
  return options.flatMap((o) => o.long ? [o.long] : []);
}

/**
 * Candidates for the last word of `words`. `profiles` is called only when a profile name can
 * go under the cursor (it reads the AWS config).
 */
export async function complete(
  program: Command,
  words: string[],
  profiles: () => Promise<string[]>,
): Promise<string[]> {
  const [head, ...rest] = words;
  const cur = rest.pop() ?? "";
  const prev = rest[rest.length - 1];
  const pick = (all: string[]) => [...new Set(all)].filter((c) => c.startsWith(cur)).sort();
  if (head === "assume") {
    return rest.length === 0 ? pick(["--clear", ...await profiles()]) : [];
  }
  if (head !== "stsh") return [];

  // The subcommand: the first word that is not an option (only --debug/-V/-h come before).
  const at = rest.findIndex((w) => !w.startsWith("-"));
  if (at < 0) {
    if (cur.startsWith("-")) return pick([...longFlags(program.options), "--help"]);
    const visible = program.createHelp().visibleCommands(program);
    return pick(visible.map((c) => c.name()).filter((n) => !HIDDEN.has(n)));
  }
  const cmd = program.commands.find((c) => c.name() === rest[at]);
  if (!cmd) return [];
  // Nested commands (`stsh keys add …`): complete within the subcommand.
  if (cmd.commands.length) {
    const inner = cmd.commands.filter((c) => !HIDDEN.has(c.name()));
    const sub = rest.slice(at + 1).find((w) => !w.startsWith("-"));
    if (sub === undefined) return pick(inner.map((c) => c.name()));
    const c = inner.find((x) => x.name() === sub);
    return c
      ? await completeArgs(c, rest.slice(rest.indexOf(sub) + 1), cur, prev, pick, profiles)
      : [];
  }
  return await completeArgs(cmd, rest.slice(at + 1), cur, prev, pick, profiles);
}

async function completeArgs(
  cmd: Command,
  before: string[],
  cur: string,
  prev: string | undefined,
  pick: (all: string[]) => string[],
  profiles: () => Promise<string[]>,
): Promise<string[]> {
  if (before.includes("--")) return []; // the command of `stsh exec … --`: the shell's business
  const option = (flag?: string) =>
    flag ? cmd.options.find((o) => o.long === flag || o.short === flag) : undefined;
  // The value of an option: its choices, or a profile for --profile.
  if (prev === "--profile") return pick(await profiles());
  const takes = option(prev);
  if (takes && (takes.required || takes.optional)) return pick(takes.argChoices ?? []);
  if (cur.startsWith("-")) {
    const takesProfile = /profile/i.test(cmd.registeredArguments[0]?.name() ?? "");
    return pick([...longFlags(cmd.options), ...(takesProfile ? ["--profile"] : []), ...EVERYWHERE]);
  }

  // Which positional argument is under the cursor?
  let n = 0;
  for (let i = 0; i < before.length; i++) {
    const w = before[i];
    if (!w.startsWith("-")) n++;
    else if (!w.includes("=")) {
      const o = option(w);
      if (o && (o.required || o.optional)) i++;
    }
  }
  const arg = cmd.registeredArguments[Math.min(n, cmd.registeredArguments.length - 1)];
  if (!arg || (n >= cmd.registeredArguments.length && !arg.variadic)) return [];
  if (arg.argChoices) return pick(arg.argChoices);
  if (/profile/i.test(arg.name())) return pick(await profiles());
  return [];
}
