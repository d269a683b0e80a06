/**
 * Commands, flags and help text. Thin: parses, calls lib, prints. stdout carries only the
 * payload (shell code or JSON); everything for the person goes to stderr or the terminal.
 */
import { Command, CommanderError, Option } from "commander";
import meta from "../deno.json" with { type: "json" };
import { Cache } from "./cache.ts";
import { describe, getProfile, loadConfig, PROFILE_NAME } from "./config.ts";
import { type Credentials, resolve } from "./engine.ts";
import { EXIT, StshError } from "./errors.ts";
import {
  credentialChanges,
  credentialsJson,
  FORMAT_NAMES,
  FORMATS,
  processJson,
  psQuote,
  shQuote,
} from "./formats.ts";
import { inspectTag, TAG_FILE, tagFor, TrustStore } from "./trust.ts";
import { notice } from "./tty.ts";
import { join, resolvePath } from "./paths.ts";
import { writeAtomic } from "./fsafe.ts";
import { oneLine, visible } from "./text.ts";

const out = (text: string) => {
  const bytes = new TextEncoder().encode(text);
  let done = 0;
  while (done < bytes.length) done += Deno.stdout.writeSync(bytes.subarray(done));
};

export function timeLeft(ms: number): string {
  if (ms <= 0) return "expired";
  const m = Math.floor(ms / 60000);
  if (m < 1) return `${Math.floor(ms / 1000)}s`;
  if (m < 60) return `${m}m`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

const clock = (d: Date) => d.toTimeString().slice(0, 5);

function defaultProfile(p?: string): string {
  return p || Deno.env.get("AWS_PROFILE") || "default";
}

function checkName(p: string) {
  if (!PROFILE_NAME.test(p)) {
    throw new StshError(`'${p}' is not a profile name.`, undefined, EXIT.refused);
  }
}

interface ResolveFlags {
  tokenCode?: string;
  session?: boolean;
  force?: boolean;
}

async function credentialsFor(
  profile: string,
  flags: ResolveFlags,
  debug: boolean,
): Promise<Credentials> {
  checkName(profile);
  return await resolve(profile, {
    tokenCode: flags.tokenCode,
    interactive: true,
    noSession: flags.session === false,
    force: flags.force,
    log: debug ? (m) => notice(`debug: ${m}`) : undefined,
  });
}

/** What `stsh init SHELL` prints: the hook with the path of this program filled in. */
async function initScript(shell: string): Promise<string> {
  const file = { bash: "stsh.bash", zsh: "stsh.zsh", pwsh: "stsh.ps1" }[shell];
  if (!file) {
    throw new StshError(
      `stsh init knows bash, zsh and pwsh, not '${shell}'.`,
      undefined,
      EXIT.refused,
    );
  }
  const text = await Deno.readTextFile(new URL(`../shell/${file}`, import.meta.url));
  const bin = Deno.env.get("STSH_BIN") || (Deno.build.standalone ? Deno.execPath() : "stsh");
  return text.replaceAll("@STSH_BIN@", shell === "pwsh" ? psQuote(bin) : shQuote(bin));
}

export function buildProgram(): Command {
  const program = new Command("stsh")
    .description(
      "MFA-protected AWS credentials that follow you around the shell.\n\n" +
        "One MFA code opens a session (GetSessionToken, 12 h by default); every role profile\n" +
        "that uses the same keys is then assumed from it without another code, and renewed\n" +
        "silently until the session ends.",
    )
    .version(meta.version, "-V, --version")
    .option("--debug", "say what stsh does (never secrets), and show stack traces")
    .showHelpAfterError("(run `stsh --help` for usage)")
    .configureOutput({
      writeErr: (s) => Deno.stderr.writeSync(new TextEncoder().encode(visible(s))),
    })
    .exitOverride()
    .enablePositionalOptions()
    .addHelpText(
      "after",
      `
Examples:
  eval "$(stsh env prod)"                        credentials for 'prod' in this bash/zsh
  stsh env prod --format powershell | Invoke-Expression
  stsh exec prod -- terraform plan               run one command with them
  credential_process = stsh credential-process prod   (in ~/.aws/config, for SDKs)
  eval "$(stsh init zsh)"                        in ~/.zshrc: follow directories, \`assume\`
  stsh tag prod                                  this directory (and below) uses 'prod'

Exit codes: 0 ok, 1 error, 2 bad usage or refused tag, 3 MFA code needed but no terminal,
4 (hook) MFA code needed, 130 cancelled; \`stsh exec\` returns the command's own code.
State: ~/.aws/stsh (STSH_HOME). Docs: README.md.`,
    );
  const debug = () => !!program.opts().debug;

  program.command("env")
    .description("print credentials for a profile, as shell code or JSON")
    .argument("[profile]", "profile name (default: $AWS_PROFILE or 'default')")
    .addOption(
      new Option("-f, --format <format>", "output format").choices(FORMAT_NAMES).default("env"),
    )
    .option(
      "-t, --token-code <code>",
      "the current 6-digit MFA code (else mfa_process, else asked)",
    )
    .option("--no-session", "for a keys-only profile: pass the long-term keys through")
    .option("--force", "with --no-session: even when the profile has an MFA device")
    .action(async (p: string | undefined, o: ResolveFlags & { format: string }) => {
      const c = await credentialsFor(defaultProfile(p), o, debug());
      if (o.format === "process") out(processJson(c));
      else if (o.format === "json") out(credentialsJson(c));
      else out(FORMATS[o.format].export(credentialChanges(c)));
    });

  program.command("credential-process")
    .description(
      "credential_process output (Version 1) for SDKs: credential_process = stsh credential-process PROFILE",
    )
    .argument("[profile]", "profile name")
    .option("-t, --token-code <code>", "the current 6-digit MFA code")
    .action(async (p: string | undefined, o: ResolveFlags) => {
      out(processJson(await credentialsFor(defaultProfile(p), o, debug())));
    });

  program.command("exec")
    .description("run a command with a profile's credentials; exits with its code")
    .argument("<profile>", "profile name")
    .argument("<command...>", "the command, after --")
    .option("-t, --token-code <code>", "the current 6-digit MFA code")
    .passThroughOptions()
    .action(async (p: string, argv: string[], o: ResolveFlags) => {
      const cmd = argv[0] === "--" ? argv.slice(1) : argv;
      if (!cmd.length) {
        throw new StshError(
          "Say which command to run: stsh exec PROFILE -- CMD …",
          undefined,
          EXIT.refused,
        );
      }
      const c = await credentialsFor(p, o, debug());
      const env = Deno.env.toObject();
      for (const [k, v] of Object.entries(credentialChanges(c))) {
        if (v === null) delete env[k];
        else env[k] = v;
      }
      let child;
      try {
        child = new Deno.Command(cmd[0], { args: cmd.slice(1), env, clearEnv: true }).spawn();
      } catch (e) {
        throw new StshError(`Cannot run ${cmd[0]}: ${(e as Error).message}`, undefined, 127);
      }
      // Ctrl-C reaches the command from the terminal by itself; stsh only must not die of it
      // (forwarding would deliver a second one: Terraform takes that as "abort now").
      Deno.addSignalListener("SIGINT", () => {});
      const status = await child.status;
      Deno.exit(status.code || (status.signal ? 128 + 2 : 0));
    });

  program.command("profiles")
    .description("list profiles: kind, MFA device, role, cached until")
    .option("--names", "names only, one per line (for Tab completion)")
    .action(async (o: { names?: boolean }) => {
      const config = await loadConfig();
      const names = [...config.profiles.keys()].sort();
      if (o.names) return out(names.map((n) => n + "\n").join(""));
      const entries = await new Cache().list();
      const env = Deno.env.toObject();
      // The longest-lived live session per profile (entries come sorted by expiration).
      const latest = new Map<string, (typeof entries)[number]>();
      for (const e of entries) if (Date.parse(e.expiration) > Date.now()) latest.set(e.profile, e);
      const rows = names.map((n) => {
        const d = describe(config, n, env);
        const cached = latest.get(n);
        return [
          n,
          d.kind,
          d.mfa ? "yes" : "-",
          d.role ?? "-",
          cached
            ? `${clock(new Date(cached.expiration))} (${
              timeLeft(Date.parse(cached.expiration) - Date.now())
            })`
            : "-",
        ];
      });
      out(table(["PROFILE", "KIND", "MFA", "ROLE", "CACHED UNTIL"], rows));
    });

  program.command("status")
    .description("sessions in the cache and their time left (never secrets)")
    .action(async () => {
      const entries = await new Cache().list();
      if (!entries.length) return out("No cached sessions.\n");
      out(table(
        ["PROFILE", "KIND", "EXPIRES", "LEFT", "ARN"],
        entries.map((e) => [
          e.profile,
          e.kind,
          clock(new Date(e.expiration)),
          timeLeft(Date.parse(e.expiration) - Date.now()),
          e.arn ?? "-",
        ]),
      ));
    });

  program.command("clear")
    .description("forget cached sessions: of one profile, or --all")
    .argument("[profile]", "profile whose sessions to forget")
    .option("--all", "forget every cached session")
    .action(async (p: string | undefined, o: { all?: boolean }) => {
      if (!p && !o.all) {
        throw new StshError(
          "Say which: `stsh clear PROFILE` or `stsh clear --all`.",
          undefined,
          EXIT.refused,
        );
      }
      const cache = new Cache();
      const entries = await cache.list();
      const gone = entries.filter((e) => o.all || e.profile === p);
      for (const e of gone) await cache.remove(e.key);
      notice(`forgot ${gone.length} cached session${gone.length === 1 ? "" : "s"}.`);
    });

  program.command("init")
    .description('print the shell hook: eval "$(stsh init zsh)" in ~/.zshrc')
    .argument("<shell>", "bash, zsh or pwsh")
    .action(async (shell: string) => out(await initScript(shell)));

  program.command("current")
    .description("the profile active in this shell and its time left")
    .action(() => {
      const env = Deno.env.toObject();
      if (!env.STSH_PROFILE) return out("No stsh credentials in this shell.\n");
      const exp = Number(env.STSH_EXPIRES) * 1000;
      const how = env.STSH_PINNED === "1"
        ? "assumed"
        : `from ${join(env.STSH_ROOT ?? "", TAG_FILE)}`;
      out(
        `${env.STSH_PROFILE} (${how}): ${
          exp ? `${timeLeft(exp - Date.now())} left, until ${clock(new Date(exp))}` : "no expiry"
        }\n`,
      );
    });

  program.command("tag")
    .description(`write ${TAG_FILE} naming PROFILE in DIR (default .) and trust it`)
    .argument("<profile>", "profile name")
    .argument("[dir]", "directory", ".")
    .action(async (p: string, dir: string) => {
      checkName(p);
      getProfile(await loadConfig(), p);
      const file = join(resolvePath(dir), TAG_FILE);
      // Never through a link: `ln -s ~/.ssh/id_ed25519 .aws-profile` must not cost the key.
      await writeAtomic(file, p + "\n", { mode: 0o644 });
      const { tag, state } = await tagFor(dir);
      if (!state.ok) throw new StshError(state.reason, undefined, EXIT.refused);
      await new TrustStore().allow(state.realRoot, state.content);
      notice(`${tag.file} now names '${p}' and is trusted.`);
    });

  program.command("allow")
    .description(`trust the ${TAG_FILE} of DIR (default .) as it is now`)
    .argument("[dir]", "directory", ".")
    .action(async (dir: string) => {
      const { tag, state } = await tagFor(dir);
      if (!state.ok) throw new StshError(state.reason, undefined, EXIT.refused);
      const config = await loadConfig();
      if (!config.profiles.has(state.profile)) {
        notice(`warning: '${state.profile}' is not in ${config.configPath} (yet).`);
      }
      await new TrustStore().allow(state.realRoot, state.content);
      notice(`trusted ${tag.file} ('${state.profile}').`);
    });

  program.command("deny")
    .description(`never use the ${TAG_FILE} of DIR (default .), whatever it says`)
    .argument("[dir]", "directory", ".")
    .action(async (dir: string) => {
      const { tag } = await tagFor(dir);
      const st = await inspectTag(tag);
      const realRoot = st.realRoot ?? await Deno.realPath(tag.root);
      await new TrustStore().deny(realRoot, st.content);
      notice(`denied ${tag.file}.`);
    });

  program.command("reload")
    .description("look at this directory again at the next prompt (hooked shells)")
    .action(() => notice("the next prompt looks at this directory again."));

  return program;
}

/** Columns padded to their widest cell; cells from files made visible, one line each. */
function table(head: string[], rows: string[][]): string {
  const all = [head, ...rows.map((r) => r.map(oneLine))];
  // A loop, not Math.max(...cells): 200 000 rows would overflow the stack as arguments.
  const w = head.map(() => 0);
  for (const r of all) for (const [i, c] of r.entries()) if (c.length > w[i]) w[i] = c.length;
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]))).join("  "))
    .join("\n") + "\n";
}

/** Run the CLI; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: "user" });
    return typeof Deno.exitCode === "number" ? Deno.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (
        e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.exitCode === 0
      ) return 0;
      return EXIT.refused;
    }
    const debug = argv.includes("--debug");
    if (e instanceof StshError) {
      // Messages quote paths, names and STS's words: nothing in them may drive the terminal.
      Deno.stderr.writeSync(
        new TextEncoder().encode(
          `stsh: ${oneLine(e.message)}${e.hint ? `\n  ${oneLine(e.hint)}` : ""}\n`,
        ),
      );
      if (debug) console.error(visible(`${e.stack}\n${e.cause ? Deno.inspect(e.cause) : ""}`));
      return e.exitCode;
    }
    Deno.stderr.writeSync(
      new TextEncoder().encode(
        `stsh: unexpected error: ${oneLine(String((e as Error)?.message ?? e))}${
          debug ? "" : " (--debug shows details)"
        }\n`,
      ),
    );
    if (debug) console.error(visible(String((e as Error)?.stack ?? e)));
    return EXIT.error;
  }
}
