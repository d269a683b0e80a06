/**
 * Commands, flags and help text. Thin: parses, calls lib, prints. stdout carries only the
 * payload (shell code or JSON); everything for the person goes to stderr or the terminal.
 */
import { Argument, Command, CommanderError, Option } from "commander";
import meta from "../deno.json" with { type: "json" };
import { Cache } from "./cache.ts";
import { complete } from "./complete.ts";
import { consoleLink, openInBrowser, parseDuration } from "./console.ts";
import { describe, getProfile, knownHint, loadConfig, PROFILE_NAME } from "./config.ts";
import { type Credentials, resolve } from "./engine.ts";
import { EXIT, specialPathRefusal, StshError } from "./errors.ts";
import { fishQuote, FORMAT_NAMES, processJson, psQuote, shQuote } from "./formats.ts";
import { inspectTag, TAG_FILE, tagFor, TrustStore } from "./trust.ts";
import type { CloseOptions } from "./serve.ts";
import { keysAdd, keysExport, keysImport, keysList, keysRm, keysWhere } from "./keys.ts";
import { SessionVault } from "./secrets.ts";
import { notice } from "./tty.ts";
import { currentText, envPayload, shadowUnderStamp, staticKeysEnv } from "./quick.ts";
import { join, resolvePath } from "./paths.ts";
import { writeAtomic } from "./fsafe.ts";
import { clock, oneLine, timeLeft, visible, wrap } from "./text.ts";

const out = (text: string) => {
  const bytes = new TextEncoder().encode(text);
  let done = 0;
  while (done < bytes.length) done += Deno.stdout.writeSync(bytes.subarray(done));
};

function defaultProfile(p?: string): string {
  if (p === "") {
    throw new StshError("An empty profile name ('') names no profile.", undefined, EXIT.refused);
  }
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

const SHELLS = ["bash", "zsh", "pwsh", "fish"];
const HOOK_FILES: Record<string, string> = {
  bash: "stsh.bash",
  zsh: "stsh.zsh",
  pwsh: "stsh.ps1",
  fish: "stsh.fish",
};

/** What `stsh init SHELL` prints: the hook with the program's path and the mode filled in. */
async function initScript(shell: string | undefined, serve: boolean): Promise<string> {
  const file = shell ? HOOK_FILES[shell] : undefined;
  if (!file) {
    throw new StshError(
      shell
        ? `stsh init knows ${SHELLS.join(", ")}; not '${visible(shell)}'.`
        : `Say which shell: stsh init ${SHELLS.join("|")}.`,
      'For example, in ~/.bashrc: eval "$(stsh init bash)"',
      EXIT.refused,
    );
  }
  const text = await Deno.readTextFile(new URL(`../shell/${file}`, import.meta.url));
  const bin = Deno.env.get("STSH_BIN") || (Deno.build.standalone ? Deno.execPath() : "stsh");
  const quote = shell === "pwsh" ? psQuote : shell === "fish" ? fishQuote : shQuote;
  return text.replaceAll("@STSH_BIN@", quote(bin)).replaceAll(
    "@STSH_MODE@",
    serve ? "--serve" : "",
  );
}

/** Help and messages fit the terminal: its width, else $COLUMNS, else 80. */
function helpWidth(): number {
  try {
    if (Deno.stdout.isTerminal()) return Deno.consoleSize().columns;
  } catch { /* not a terminal */ }
  const c = Number(Deno.env.get("COLUMNS"));
  return Number.isInteger(c) && c >= 40 ? c : 80;
}

/** Two columns, "  COMMAND" then its explanation indented below when it would not fit. */
function examples(rows: [string, string][], width: number): string {
  const lines = rows.map(([cmd, what]) => {
    const one = `  ${cmd.padEnd(38)}  ${what}`;
    return one.length <= width && cmd.length <= 38
      ? one
      : `  ${cmd}\n${wrap(`      ${what}`, width)}`;
  });
  return "\nExamples:\n" + lines.join("\n");
}

/** Examples shown under each command's --help. */
const EXAMPLES: Record<string, [string, string][]> = {
  "": [
    ['eval "$(stsh env prod)"', "credentials for 'prod' in this bash/zsh"],
    ["stsh env prod --format powershell | iex", "the same in PowerShell"],
    ["stsh exec prod -- terraform plan", "run one command as 'prod'"],
    ["credential_process = stsh credential-process prod", "in ~/.aws/config, for any SDK"],
    ['eval "$(stsh init zsh)"', "in ~/.zshrc: credentials follow directories"],
    ["stsh tag prod", "this directory (and below) uses 'prod'"],
  ],
  env: [
    ['eval "$(stsh env prod)"', "bash/zsh: export prod's credentials"],
    ["stsh env --profile prod --format json", "as JSON (also: --format process, dotenv)"],
    ["stsh env prod --format powershell | iex", "PowerShell: $env: lines, as typed"],
    ["stsh env prod --token-code 123456", "give the MFA code up front"],
  ],
  "credential-process": [
    ["credential_process = stsh credential-process prod", "in ~/.aws/config"],
  ],
  exec: [
    ["stsh exec prod -- terraform apply", "the command asks a local endpoint; never stale"],
    ["AWS_PROFILE=prod stsh exec -- aws s3 ls", "the profile from $AWS_PROFILE"],
  ],
  console: [
    ["stsh console prod", "open the console as prod's role"],
    ["stsh console prod --print --destination /s3/home", "print the sign-in URL instead"],
  ],
  init: [
    ['eval "$(stsh init zsh)"', "in ~/.zshrc (bash: ~/.bashrc)"],
    ["stsh init fish | source", "in ~/.config/fish/config.fish"],
    ["Invoke-Expression (& stsh init pwsh | Out-String)", "in $PROFILE"],
    ['eval "$(stsh init zsh --serve)"', "export a local endpoint instead of keys"],
  ],
  tag: [["stsh tag prod ~/work/infra", "credentials for prod in ~/work/infra and below"]],
  allow: [["cd ~/work/infra && stsh allow", "trust its .aws-profile as it is now"]],
  clear: [["stsh clear prod", "the next use of prod asks STS again"]],
};

const EPILOGUE =
  "Every command that takes a PROFILE also takes --profile NAME, and --debug works " +
  "anywhere (before `--`). Exit codes: 0 ok, 1 error, 2 bad usage or refused tag, 3 MFA " +
  "code needed but no terminal, 4 (hook) MFA code needed, 130 cancelled; `stsh exec` " +
  "returns the command's own code. State: ~/.aws/stsh (STSH_HOME). Docs: README.md.";

/** What each command's definition gets besides the program. */
interface Ctx {
  /** Was --debug given (anywhere)? */
  debug(): boolean;
  /** A log for lib calls under --debug (`debug: ` lines on stderr), else undefined. */
  log(prefix?: string): ((m: string) => void) | undefined;
}

/** The program itself: description, --version, --debug, help and error output. */
function root(width: number): Command {
  const enc = new TextEncoder();
  return new Command("stsh")
    .description(
      "MFA-protected AWS credentials that follow you around the shell.\n\n" +
        "One MFA code opens a session (GetSessionToken, 12 h by default); every role " +
        "profile that uses the same keys is then assumed from it without another code, " +
        "and renewed silently until the session ends.",
    )
    .version(meta.version, "-V, --version")
    .option("--debug", "say what stsh does (never secrets), and show stack traces")
    .configureHelp({ helpWidth: width, minWidthToWrap: 20 })
    .configureOutput({
      writeErr: (s) => Deno.stderr.writeSync(enc.encode(s)),
      // One prefix for every message: commander's "error: …" becomes "stsh: …", and what it
      // quotes from the command line has its control characters made visible.
      outputError: (s, write) => write(wrap(visible(s.replace(/^error: /, "stsh: ")), width)),
    })
    .showHelpAfterError("  run `stsh --help` for usage")
    .exitOverride()
    .enablePositionalOptions()
    .addHelpText("after", () => `${examples(EXAMPLES[""], width)}\n\n${wrap(EPILOGUE, width)}`);
}

function envCommand(program: Command, ctx: Ctx) {
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
      out(envPayload(await credentialsFor(defaultProfile(p), o, ctx.debug()), o.format));
    });
}

function credentialProcessCommand(program: Command, ctx: Ctx) {
  program.command("credential-process")
    .description(
      "credential_process output (Version 1) for SDKs: credential_process = stsh credential-process PROFILE",
    )
    .argument("[profile]", "profile name")
    .option("-t, --token-code <code>", "the current 6-digit MFA code")
    .action(async (p: string | undefined, o: ResolveFlags) => {
      out(processJson(await credentialsFor(defaultProfile(p), o, ctx.debug())));
    });
}

function execCommand(program: Command, ctx: Ctx) {
  program.command("exec")
    .description(
      "run a command with a profile's credentials, served by a loopback endpoint the AWS SDKs " +
        "refresh from (--env: static keys); exits with its code",
    )
    .argument("<profile>", "profile name")
    .argument("<command...>", "the command, after --")
    .option("-t, --token-code <code>", "the current 6-digit MFA code")
    .option("--env", "give the command static keys (AWS_ACCESS_KEY_ID…) instead of the endpoint")
    .passThroughOptions()
    .action(async (p: string, argv: string[], o: ResolveFlags & { env?: boolean }) => {
      Deno.exit(await runExec(p, argv[0] === "--" ? argv.slice(1) : argv, o, ctx));
    });
}

/** `stsh exec`: the command's exit code (128 + 2 when a signal ended it). */
async function runExec(
  p: string,
  cmd: string[],
  o: ResolveFlags & { env?: boolean },
  ctx: Ctx,
): Promise<number> {
  if (!cmd.length) {
    throw new StshError(
      "Say which command to run: stsh exec PROFILE -- CMD …",
      undefined,
      EXIT.refused,
    );
  }
  // Resolved up front, so a code is asked on the terminal before the command starts.
  const c = await credentialsFor(p, o, ctx.debug());
  const env = Deno.env.toObject();
  let childEnv: Record<string, string>;
  let server: { close(o?: CloseOptions): Promise<void> } | undefined;
  const serve = await import("./serve.ts");
  // Recorded under the config stamp, so that a warm exec (lib/quick.ts) needs no parse.
  const shadow = o.env
    ? null
    : await shadowUnderStamp(env, async () => serve.defaultProfileShadows(await loadConfig(env)));
  if (o.env || shadow) {
    if (shadow) {
      notice(
        `warning: profile 'default' has credentials of its own (${shadow}), which AWS SDKs use before the credential endpoint; giving the command static keys instead${
          c.expiration ? ` (they end at ${clock(c.expiration)})` : ""
        }. Keep those credentials under another profile name to use the endpoint.`,
      );
    }
    childEnv = staticKeysEnv(env, c);
  } else {
    let s;
    try {
      s = serve.startServer({
        env,
        only: p,
        transport: "raw",
        debug: ctx.debug(),
        log: ctx.log("endpoint: "),
      });
    } catch (e) {
      throw new StshError(
        `Cannot open the credential endpoint on 127.0.0.1: ${(e as Error).message}`,
        "`stsh exec --env` gives the command static keys instead.",
      );
    }
    server = s;
    childEnv = serve.execEnv(env, s, p, c.region);
  }
  let child;
  try {
    child = new Deno.Command(cmd[0], { args: cmd.slice(1), env: childEnv, clearEnv: true })
      .spawn();
  } catch (e) {
    await server?.close();
    throw new StshError(`Cannot run ${cmd[0]}: ${(e as Error).message}`, undefined, 127);
  }
  // Ctrl-C reaches the command from the terminal by itself; stsh only must not die of it
  // (forwarding would deliver a second one: Terraform takes that as "abort now").
  Deno.addSignalListener("SIGINT", () => {});
  const status = await child.status;
  // The endpoint ends with the command (a request in flight is answered first, bounded).
  if (server) await server.close({ boundMs: 3000, exiting: true });
  return status.code || (status.signal ? 128 + 2 : 0);
}

function consoleCommand(program: Command, ctx: Ctx) {
  program.command("console")
    .description("open the AWS console as a role profile (or print the sign-in URL)")
    .argument("[profile]", "role profile (default: $AWS_PROFILE or 'default')")
    .option("--print", "print the sign-in URL on stdout instead of opening a browser")
    .option("--destination <url>", "console page to open: a URL, or a path such as /s3/home")
    .option(
      "--duration <d>",
      "console session length, 15m..12h (roles assumed from long-term keys)",
    )
    .option("-t, --token-code <code>", "the current 6-digit MFA code")
    .action(async (
      p: string | undefined,
      o: { print?: boolean; destination?: string; duration?: string; tokenCode?: string },
    ) => {
      const profile = defaultProfile(p);
      checkName(profile);
      const link = await consoleLink(profile, {
        destination: o.destination,
        durationSeconds: o.duration === undefined ? undefined : parseDuration(o.duration),
        tokenCode: o.tokenCode,
        log: ctx.log(),
      });
      const until = link.until ? `; the console session lasts until ${clock(link.until)}` : "";
      if (o.print) {
        out(link.url + "\n");
        notice(`sign-in URL for '${profile}' (use it within 15 minutes, once)${until}.`);
      } else {
        await openInBrowser(link.url, { profile });
        notice(`opened the AWS console as '${profile}' in your browser${until}.`);
      }
    });
}

function serveCommand(program: Command, ctx: Ctx) {
  program.command("serve")
    .description(
      "the per-user credential endpoint for shells hooked with --serve (the hook starts it; " +
        "it exits when idle, STSH_SERVE_IDLE seconds, or when no session is left)",
    )
    .action(async () => {
      const { runUserServer } = await import("./serve_user.ts");
      const how = await runUserServer({
        env: Deno.env.toObject(),
        debug: ctx.debug(),
        onReady: (s) => {
          // One line for whoever started it (ensureUserServer waits for it); nothing after.
          out(`ready ${s.port}\n`);
          if (!Deno.stdout.isTerminal()) Deno.stdout.close();
          else notice(`serving on ${s.url}/creds/PROFILE (the token is in the 0600 state file).`);
        },
      });
      if (how === "already running") notice("a credential server is already running.");
    });
}

function profilesCommand(program: Command) {
  program.command("profiles")
    .description("list profiles: kind, MFA device, role, where the keys are, cached until")
    .option("--names", "names only, one per line (for scripts)")
    .action(async (o: { names?: boolean }) => out(await profilesText(!!o.names)));
}

/** `stsh profiles`: a table, or (`--names`) one name per line. */
async function profilesText(namesOnly: boolean): Promise<string> {
  const config = await loadConfig();
  const names = [...config.profiles.keys()].sort();
  if (namesOnly) return names.map((n) => n + "\n").join("");
  const entries = await new Cache().list();
  const vars = Deno.env.toObject();
  // The longest-lived live session per profile (entries come sorted by expiration).
  const latest = new Map<string, (typeof entries)[number]>();
  for (const e of entries) if (Date.parse(e.expiration) > Date.now()) latest.set(e.profile, e);
  const rows = names.map((n) => {
    const d = describe(config, n, vars);
    const cached = latest.get(n);
    return [
      n,
      d.kind,
      d.mfa ? "yes" : "-",
      d.role ?? "-",
      keysWhere(config, n, vars),
      cached
        ? `${clock(new Date(cached.expiration))} (${
          timeLeft(Date.parse(cached.expiration) - Date.now())
        })`
        : "-",
    ];
  });
  return table(["PROFILE", "KIND", "MFA", "ROLE", "KEYS", "CACHED UNTIL"], rows);
}

function statusCommand(program: Command) {
  program.command("status")
    .description("sessions in the cache and their time left (never secrets)")
    .action(async () => {
      const entries = await new Cache().list();
      if (!entries.length) return out("No cached sessions.\n");
      out(table(
        ["PROFILE", "KIND", "EXPIRES", "LEFT", "ARN"],
        entries.map((e) => [
          e.profile,
          e.stored ? `${e.kind} (${e.stored})` : e.kind,
          clock(new Date(e.expiration)),
          timeLeft(Date.parse(e.expiration) - Date.now()),
          e.arn ?? "-",
        ]),
      ));
    });
}

function clearCommand(program: Command) {
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
      // With a vault, MFA sessions kept in a secret store are deleted there too.
      const vault = new SessionVault({ env: Deno.env.toObject(), interactive: true });
      const cache = new Cache(undefined, vault);
      const entries = await cache.list();
      const gone = entries.filter((e) => o.all || e.profile === p);
      for (const e of gone) await cache.remove(e.key);
      let unknown = "";
      if (p && !gone.length) {
        // Forgetting a profile since removed from the config is fine; a typo should be seen.
        const config = await loadConfig(Deno.env.toObject()).catch(() => null);
        if (config && !config.profiles.has(p)) {
          unknown = ` There is no profile '${p}' in your AWS config. ${knownHint(config)}`;
        }
      }
      notice(`forgot ${gone.length} cached session${gone.length === 1 ? "" : "s"}.${unknown}`);
    });
}

function keysCommand(program: Command) {
  const env = () => Deno.env.toObject();
  const keys = program.command("keys")
    .description("long-term keys in the OS keyring instead of ~/.aws/credentials")
    .addHelpText(
      "after",
      "\nSTSH_KEYRING=auto|secret-service|keychain|wincred|file|none chooses the store (README).",
    );
  keys.command("add")
    .description("store keys for PROFILE, asked on the terminal (the secret without echo)")
    .argument("<profile>", "profile name")
    .option("--env", "take them from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    .action(async (p: string, o: { env?: boolean }) => {
      checkName(p);
      await keysAdd(p, !!o.env, env());
    });
  keys.command("import")
    .description("move PROFILE's keys out of ~/.aws/credentials into the store")
    .argument("<profile>", "profile name")
    .action(async (p: string) => {
      checkName(p);
      await keysImport(p, env());
    });
  keys.command("list")
    .description("profiles with keys: masked key id and where they are (never a secret)")
    .option("--verify", "ask each store whether the keys are really there")
    .action(async (o: { verify?: boolean }) => out(await keysList(!!o.verify, env())));
  keys.command("rm")
    .description("delete PROFILE's keys from the store")
    .argument("<profile>", "profile name")
    .action(async (p: string) => {
      checkName(p);
      await keysRm(p, env());
    });
  keys.command("export")
    .description("move PROFILE's keys back into ~/.aws/credentials (the way back)")
    .argument("<profile>", "profile name")
    .action(async (p: string) => {
      checkName(p);
      await keysExport(p, env());
    });
}

function initCommand(program: Command) {
  program.command("init")
    .description('print the shell hook: eval "$(stsh init zsh)" in ~/.zshrc')
    .addArgument(new Argument("[shell]", SHELLS.join(", ")).choices(SHELLS))
    .option("--serve", "export a local credential endpoint instead of the keys")
    .action(async (shell: string | undefined, o: { serve?: boolean }) =>
      out(await initScript(shell, !!o.serve))
    );
}

function currentCommand(program: Command) {
  program.command("current")
    .description("the profile active in this shell and its time left")
    .action(() => out(currentText(Deno.env.toObject())));
}

function tagCommand(program: Command) {
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
}

function allowCommand(program: Command) {
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
}

function denyCommand(program: Command) {
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
}

function doctorCommand(program: Command) {
  program.command("doctor")
    .description("check versions, AWS files, profiles, state, keyring and this shell's hook")
    .action(async () => {
      const { diagnose, report } = await import("./doctor.ts");
      const r = report(await diagnose(Deno.env.toObject()));
      out(r.text);
      if (!r.healthy) Deno.exitCode = EXIT.error;
    });
}

function completeCommand(program: Command) {
  program.command("complete", { hidden: true })
    .description("Tab completion for the shells: stsh complete -- WORD…")
    .argument("[words...]")
    .action(async (words: string[]) => {
      const names = async () => {
        try {
          return [...(await loadConfig()).profiles.keys()];
        } catch {
          return [];
        }
      };
      const found = await complete(program, words ?? [], names);
      out(found.map((c) => c + "\n").join(""));
    });
}

function reloadCommand(program: Command) {
  program.command("reload")
    .description("look at this directory again at the next prompt (hooked shells)")
    .action(() => notice("the next prompt looks at this directory again."));
}

/** The commands, in the order `stsh --help` lists them. */
const COMMANDS: ((program: Command, ctx: Ctx) => void)[] = [
  envCommand,
  credentialProcessCommand,
  execCommand,
  consoleCommand,
  serveCommand,
  profilesCommand,
  statusCommand,
  clearCommand,
  keysCommand,
  initCommand,
  currentCommand,
  tagCommand,
  allowCommand,
  denyCommand,
  doctorCommand,
  completeCommand,
  reloadCommand,
];

export function buildProgram(): Command {
  const width = helpWidth();
  const program = root(width);
  const debug = () => !!program.opts().debug;
  const ctx: Ctx = {
    debug,
    log: (prefix = "") => debug() ? (m) => notice(`debug: ${prefix}${m}`) : undefined,
  };
  for (const define of COMMANDS) define(program, ctx);
  for (const c of program.commands) {
    const rows = EXAMPLES[c.name()];
    if (rows) c.addHelpText("after", () => examples(rows, width));
    c.showHelpAfterError(`  run \`stsh ${c.name()} --help\` for usage`);
    for (const sub of c.commands) {
      sub.showHelpAfterError(`  run \`stsh ${c.name()} ${sub.name()} --help\` for usage`);
    }
  }
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

/** Commands whose first argument is a profile (and so take --profile NAME, as the AWS CLI). */
const PROFILE_COMMANDS = new Set(["env", "credential-process", "exec", "console", "clear", "tag"]);

/**
 * AWS CLI habits, before commander sees the arguments: `--debug` anywhere before `--`;
 * `--profile NAME` (or `--profile=NAME`) for the profile argument of any command that takes
 * one; and `stsh exec -- CMD` without a profile takes $AWS_PROFILE (else "default").
 */
export function normalizeArgs(
  program: Command,
  argv: string[],
  env: Record<string, string | undefined> = Deno.env.toObject(),
): string[] {
  const dd = argv.indexOf("--");
  const head = dd < 0 ? [...argv] : argv.slice(0, dd);
  const tail = dd < 0 ? [] : argv.slice(dd);
  const debug = head.includes("--debug");
  const rest = head.filter((a) => a !== "--debug");
  const at = rest.findIndex((a) => !a.startsWith("-"));
  const name = at < 0 ? undefined : rest[at];
  const cmd = program.commands.find((c) => c.name() === name);
  if (!cmd || !PROFILE_COMMANDS.has(name!)) return debug ? ["--debug", ...rest, ...tail] : argv;

  // The command's own arguments, its options (with their values) told from positionals.
  const takesValue = (a: string) =>
    cmd.options.some((o) => (o.long === a || o.short === a) && (o.required || o.optional));
  const args = rest.slice(at + 1);
  let profile: string | undefined;
  const kept: string[] = [];
  let positionals = 0;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--profile" || a.startsWith("--profile=")) {
      const v = a === "--profile" ? args[++i] : a.slice("--profile=".length);
      if (!v || v.startsWith("-")) {
        throw new StshError("--profile needs a profile name.", undefined, EXIT.refused);
      }
      if (profile !== undefined && v !== profile) {
        throw new StshError(
          `Two profiles given: '${profile}' and '${v}'.`,
          undefined,
          EXIT.refused,
        );
      }
      profile = v;
      continue;
    }
    kept.push(a);
    if (a.startsWith("-")) {
      if (!a.includes("=") && takesValue(a) && i + 1 < args.length) kept.push(args[++i]);
    } else positionals++;
  }
  // With --profile, a positional is the profile only when every argument slot is taken
  // (`tag --profile prod DIR`: DIR is the directory).
  const slots = cmd.registeredArguments.filter((a) => !a.variadic).length;
  if (profile !== undefined && positionals > 0 && positionals >= slots) {
    const given = kept.find((a, i) => !a.startsWith("-") && !takesValue(kept[i - 1] ?? ""));
    if (given !== profile) {
      throw new StshError(
        `Two profiles given: '${visible(given ?? "")}' and --profile '${visible(profile)}'.`,
        undefined,
        EXIT.refused,
      );
    }
    profile = undefined;
  }
  if (profile === undefined && name === "exec" && positionals === 0 && tail.length) {
    profile = env.AWS_PROFILE || "default";
  }
  // The profile goes where a typed one would: before the first positional. exec passes
  // everything after its first positional to the command, so its options (with their
  // values) come first: `exec prod --env -- cmd` is `exec --env prod -- cmd`.
  const options: string[] = [], others: string[] = [];
  for (let i = 0; i < kept.length; i++) {
    const a = kept[i];
    const value = a.startsWith("-") && !a.includes("=") && takesValue(a) && i + 1 < kept.length;
    const into = !a.startsWith("-") ? others : options;
    into.push(a);
    if (value) into.push(kept[++i]);
  }
  const first = name === "exec"
    ? options.length
    : kept.findIndex((a, i) =>
      !a.startsWith("-") && !(i > 0 && kept[i - 1].startsWith("-") && takesValue(kept[i - 1]))
    );
  const ordered = name === "exec" ? [...options, ...others] : kept;
  const at2 = first < 0 ? ordered.length : first;
  const args2 = profile !== undefined
    ? [...ordered.slice(0, at2), profile, ...ordered.slice(at2)]
    : ordered;
  return [...(debug ? ["--debug"] : []), ...rest.slice(0, at + 1), ...args2, ...tail];
}

/** Run the CLI; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(normalizeArgs(program, argv), { from: "user" });
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
    const special = specialPathRefusal(e);
    if (special) {
      Deno.stderr.writeSync(new TextEncoder().encode(`stsh: ${oneLine(special)}\n`));
      return EXIT.error;
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
