/**
 * The decision the shell hooks ask for (shell/PROTOCOL.md): given the working directory and
 * the shell's environment, what to set and what to restore.
 */
import { Cancelled, EXIT, MfaNeeded, StshError } from "./errors.ts";
import {
  AWS_VARS,
  type ChangeSet,
  credentialChanges,
  HOOK_FORMATS,
  PREV_VAR,
  STATE_VARS,
} from "./formats.ts";
import { asksFor, findTag, inspectTag, TrustStore } from "./trust.ts";
import { exitAtOnceOnCancel, notice } from "./tty.ts";
import {
  configStamp,
  isAbsolute,
  join,
  later,
  privateDir,
  PROFILE_NAME,
  refreshMargin,
  stateDir,
} from "./paths.ts";
import { quickCredentials } from "./quick.ts";
import { clock, timeLeft, visible } from "./text.ts";

export interface HookRequest {
  cwd: string;
  env: Record<string, string>;
  /** May the terminal be asked for an MFA code? */
  prompt: boolean;
  /** Do not repeat a notice the shell has already shown for this tag. */
  quiet: boolean;
  /**
   * Exit at once on Ctrl-C without a word (pwsh): pwsh aborts its prompt function when a
   * native command is still writing after Ctrl-C, so its hook says "cancelled" itself.
   */
  silentCancel?: boolean;
  /** Export the credential endpoint instead of the keys (`stsh init SHELL --serve`). */
  serve?: boolean;
  assume?: string;
  unassume?: boolean;
  now?: () => number;
  log?: (m: string) => void;
}

export interface HookResult {
  changes: ChangeSet;
  status: number;
}

/**
 * The user's own values stsh saves when it first changes anything: every AWS name it sets or
 * unsets, and the STSH_PROFILE / STSH_EXPIRES that `eval "$(stsh env …)"` may have set.
 */
const SAVED: readonly string[] = [...AWS_VARS, "STSH_PROFILE", "STSH_EXPIRES"];

/**
 * The hook state kept in the environment. The hook manages only what it set itself: a
 * directory tag (STSH_ROOT) or an `assume` (STSH_PINNED=1). Anything else — including
 * credentials from `eval "$(stsh env …)"`, which carry STSH_PROFILE — is the user's own.
 */
export class HookState {
  readonly profile: string;
  readonly root: string;
  readonly expires: number;
  readonly pinned: boolean;
  /** Did the hook (tag or assume) set what is in the environment? */
  readonly active: boolean;
  readonly prev: Record<string, string | null>;

  constructor(readonly env: Record<string, string>) {
    this.root = env.STSH_ROOT ?? "";
    this.pinned = env.STSH_PINNED === "1";
    this.active = (env.STSH_PROFILE ?? "") !== "" && (this.root !== "" || this.pinned);
    this.profile = this.active ? env.STSH_PROFILE : "";
    this.expires = this.active ? Number(env.STSH_EXPIRES) || 0 : 0;
    this.prev = this.active ? parsePrev(env[PREV_VAR]) : {};
  }

  /** The environment as the person had it before stsh changed anything. */
  userEnv(): Record<string, string> {
    const out = { ...this.env };
    delete out[PREV_VAR];
    if (!this.active) return out;
    for (const k of STATE_VARS) delete out[k];
    for (const k of SAVED) {
      const v = this.prev[k];
      if (typeof v === "string") out[k] = v;
      else delete out[k];
    }
    return out;
  }

  /** Put back every variable stsh changed, and forget the state. */
  restore(): ChangeSet {
    if (!this.active) return {};
    const c: ChangeSet = {};
    for (const k of STATE_VARS) c[k] = null;
    for (const k of SAVED) c[k] = this.prev[k] ?? null;
    c[PREV_VAR] = null;
    return c;
  }

  /**
   * The change set that makes `vars` (the credentials' variables, or the endpoint's) active
   * for `profile`, saving the user's own values the first time; `expires` is when the hook
   * must look again.
   */
  activate(
    profile: string,
    root: string,
    pinned: boolean,
    vars: ChangeSet,
    expires?: Date,
  ): ChangeSet {
    const prev: Record<string, string | null> = {};
    for (const k of SAVED) prev[k] = this.active ? this.prev[k] ?? null : this.env[k] ?? null;
    const c: ChangeSet = {};
    for (const k of AWS_VARS) c[k] = prev[k] ?? null; // anything the credentials leave out
    Object.assign(c, vars);
    c.STSH_PROFILE = profile;
    c.STSH_ROOT = root;
    c.STSH_EXPIRES = expires ? String(Math.floor(expires.getTime() / 1000)) : null;
    c.STSH_PINNED = pinned ? "1" : null;
    c[PREV_VAR] = JSON.stringify(prev);
    return c;
  }

  fresh(nowMs: number): boolean {
    return this.active && (this.expires === 0 ||
      nowMs / 1000 < this.expires - refreshMargin(this.env));
  }
}

function parsePrev(text: string | undefined): Record<string, string | null> {
  if (!text) return {};
  try {
    const o = JSON.parse(text);
    const out: Record<string, string | null> = {};
    for (const k of SAVED) {
      if (typeof o?.[k] === "string" || o?.[k] === null) out[k] = o[k];
    }
    return out;
  } catch {
    return {};
  }
}

/** "role admin in 210987654321" for an assumed-role ARN, else the ARN's last part. */
export function describeArn(arn?: string): string {
  if (!arn) return "";
  const m = arn.match(/^arn:aws[a-z-]*:sts::(\d{12}):assumed-role\/([^/]+)\//);
  if (m) return `role ${m[2]} in ${m[1]}`;
  const u = arn.match(/^arn:aws[a-z-]*:(?:iam|sts)::(\d{12}):(.+)$/);
  return u ? `${u[2]} in ${u[1]}` : arn;
}

/** The one line that says what is active now: profile, where from, role, time left. */
function activeLine(
  profile: string,
  from: string,
  creds: { expiration?: Date; arn?: string },
  now: number,
): string {
  const who = describeArn(creds.arn);
  const left = creds.expiration
    ? `${timeLeft(creds.expiration.getTime() - now)} left, until ${clock(creds.expiration)}`
    : "no expiry";
  return `${profile}${who ? ` (${visible(who)})` : ""} ${from}: ${left}.`;
}

export async function decide(req: HookRequest): Promise<HookResult> {
  const state = new HookState(req.env);
  const now = req.now ?? Date.now;
  const log = req.log ?? (() => {});
  /** Notices about a tag: once per tag per shell (the shell passes --quiet after that). */
  const say = (text: string) => req.quiet || notice(text);
  /** What is set or cleared: one line, unless STSH_QUIET=1. */
  const tell = (text: string) => req.env.STSH_QUIET === "1" || notice(text);
  const again = req.assume !== undefined
    ? `\`assume ${req.assume}\` asks again.`
    : "`stsh reload` (or cd) asks again.";
  const cleared = (changes: ChangeSet): HookResult => {
    if (state.active) {
      const own = Object.values(state.prev).some((v) => typeof v === "string");
      tell(
        `${state.profile} cleared; ${
          own ? "your own AWS variables are back" : "no AWS credentials are set"
        }.`,
      );
    }
    return { changes, status: EXIT.ok };
  };

  log(
    `state: ${
      state.active
        ? `${state.profile} ${state.pinned ? "(assumed)" : `from ${state.root}`}, until ${
          state.expires || "-"
        }`
        : "nothing stsh set"
    }`,
  );
  if (req.unassume) return cleared(state.restore());

  /** Credentials for `profile`: the remembered session when the config is unchanged. */
  const credentials = async (profile: string, userEnv: Record<string, string>) => {
    // lib/quick.ts: the same index read as `stsh env`'s quick path, with no thread hand-offs
    // and no side effects (a damaged file is left for the full resolve to discard and say).
    const quick = quickCredentials(profile, userEnv, configStamp(userEnv), now());
    if (quick) {
      log(`cache hit without parsing the config: ${profile}`);
      return quick;
    }
    // Loaded only now: the AWS config parser and the engine are the slow part of start-up,
    // and the paths without a trusted tag or with a warm cache never need them.
    const [{ loadConfig }, { resolve }] = await Promise.all([
      later<typeof import("./config.ts")>("config"),
      later<typeof import("./engine.ts")>("engine"),
    ]);
    const config = await loadConfig(userEnv);
    if (!config.profiles.has(profile)) return null;
    return await resolve(profile, {
      env: userEnv,
      interactive: req.prompt,
      config,
      now,
      log: req.log,
    });
  };

  /**
   * What to export: the credentials themselves, or (`--serve`) the per-user endpoint that
   * re-mints them, so programs started here outlive the role session. The credentials are
   * resolved first either way: a code is asked here, at the prompt, never by the server.
   */
  const activate = async (profile: string, root: string, pinned: boolean) => {
    const userEnv = state.userEnv();
    const creds = await credentials(profile, userEnv);
    if (!creds) return null;
    const keys = () => ({
      changes: state.activate(profile, root, pinned, credentialChanges(creds), creds.expiration),
      creds,
      served: false,
    });
    if (!req.serve) return keys();
    const [{ loadConfig }, serve, { ensureUserServer }] = await Promise.all([
      later<typeof import("./config.ts")>("config"),
      later<typeof import("./serve.ts")>("serve"),
      later<typeof import("./serve_user.ts")>("serve_user"),
    ]);
    const shadow = serve.defaultProfileShadows(await loadConfig(userEnv));
    if (shadow) {
      say(
        `profile 'default' has credentials of its own (${shadow}), which AWS SDKs use before the endpoint; exporting keys instead.`,
      );
      return keys();
    }
    const client = Number(req.env.STSH_SHELL_PID) || undefined;
    const server = await ensureUserServer(userEnv, { client });
    log(`endpoint ${server.url} (server pid ${server.pid})`);
    const vars = serve.endpointChanges(server, profile, creds.region);
    return {
      changes: state.activate(profile, root, pinned, vars, creds.expiration),
      creds,
      served: true,
    };
  };

  /** Resolve, mapping "needs a code" and "cancelled" to the protocol's statuses. */
  const attempt = async (
    profile: string,
    root: string,
    pinned: boolean,
    onFailure: ChangeSet,
    from: string,
  ): Promise<HookResult> => {
    try {
      const got = await activate(profile, root, pinned);
      if (!got) {
        const { loadConfig, knownHint } = await later<typeof import("./config.ts")>("config");
        const config = await loadConfig(state.userEnv()).catch(() => null);
        say(
          `profile '${profile}' is not in your AWS config; nothing set.${
            config ? ` ${knownHint(config)}` : ""
          }`,
        );
        return { changes: onFailure, status: EXIT.refused };
      }
      // A renewal of what is already active is silent; anything new gets one line.
      const renewal = state.active && state.profile === profile && state.root === root &&
        state.pinned === pinned;
      if (!renewal) {
        tell(
          activeLine(profile, from, got.creds, now()) +
            (got.served ? " Served by the local endpoint." : ""),
        );
      }
      return { changes: got.changes, status: EXIT.ok };
    } catch (e) {
      if (e instanceof MfaNeeded) {
        return { changes: onFailure, status: req.prompt ? EXIT.mfaNoTerminal : EXIT.mfaNeeded };
      }
      if (e instanceof Cancelled) {
        if (!req.silentCancel) notice(`cancelled; ${again}`);
        return { changes: state.restore(), status: EXIT.cancelled };
      }
      if (e instanceof StshError) {
        notice(e.message + (e.hint ? ` ${e.hint}` : ""));
        // Credentials that still work stay; anything else is put back.
        const alive = state.active && state.profile === profile && state.expires * 1000 > now();
        notice(alive ? `${profile} stays active until it expires; ${again}` : again);
        return { changes: alive ? {} : state.restore(), status: EXIT.error };
      }
      throw e;
    }
  };

  if (req.assume !== undefined) {
    if (!PROFILE_NAME.test(req.assume)) {
      throw new StshError(
        `'${visible(req.assume)}' is not a profile name.`,
        undefined,
        EXIT.refused,
      );
    }
    return await attempt(req.assume, "", true, {}, "assumed");
  }

  if (state.pinned) {
    if (state.fresh(now())) return { changes: {}, status: EXIT.ok };
    log(`renewing the assumed ${state.profile}`);
    return await attempt(state.profile, "", true, {}, "assumed");
  }

  const tag = await findTag(req.cwd);
  if (!tag) {
    log(`no tag above ${req.cwd}`);
    return cleared(state.restore());
  }
  const st = await inspectTag(tag);
  log(`tag ${tag.file}: ${st.ok ? `'${st.profile}'` : st.reason}`);
  if (!st.ok) {
    say(st.reason);
    const r = cleared(state.restore());
    return { ...r, status: EXIT.refused };
  }
  const trust = new TrustStore(req.env);
  if (!(await trust.isAllowed(st.realRoot, st.content))) {
    const file = visible(tag.file);
    say(
      (await trust.isDenied(st.realRoot))
        ? `${file} (${asksFor(st)}) is denied; \`stsh allow\` trusts it again.`
        : `${file} asks for ${asksFor(st)}: run \`stsh allow\` to trust it.`,
    );
    const r = cleared(state.restore());
    return { ...r, status: EXIT.refused };
  }
  if (state.root === tag.root && state.profile === st.profile && state.fresh(now())) {
    return { changes: {}, status: EXIT.ok };
  }
  // Leaving one tag for another, or renewing: nothing stale may stay behind while we ask.
  const from = `from ${visible(tag.file)}`;
  return await attempt(st.profile, tag.root, false, state.restore(), from);
}

const HOOK_USAGE =
  "usage: stsh hook bash|zsh|pwsh|fish [--prompt] [--quiet] [--debug] [--serve] [--assume PROFILE | --unassume]";

/**
 * `stsh hook SHELL …`, the command the shell hooks run. It is parsed here, without the
 * general CLI, because it runs on every `cd` into a tagged tree: loading commander alone
 * costs more than the rest of a warm run. `--debug` or STSH_DEBUG=1 says what it decides.
 */
export async function hookMain(args: string[]): Promise<number> {
  const t0 = performance.now();
  const [shell, ...rest] = args;
  const fmt = HOOK_FORMATS[shell];
  const env = Deno.env.toObject();
  const req: HookRequest = {
    cwd: await logicalCwd(),
    env,
    prompt: false,
    quiet: false,
    silentCancel: shell === "pwsh",
  };
  const debug = (m: string) => notice(`debug: ${visible(m)}`);
  if (env.STSH_DEBUG === "1") req.log = debug;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (a === "--prompt") req.prompt = true;
    else if (a === "--quiet") req.quiet = true;
    else if (a === "--unassume") req.unassume = true;
    else if (a === "--assume" && i + 1 < rest.length) req.assume = rest[++i];
    else if (a === "--debug") req.log = debug;
    else if (a === "--serve") req.serve = true;
    else return usage();
  }
  if (!fmt) return usage();
  if (req.silentCancel) exitAtOnceOnCancel();
  await keepRunDir(env);
  try {
    const r = await decide(req);
    const text = new TextEncoder().encode(fmt.export(r.changes));
    for (let done = 0; done < text.length;) done += Deno.stdout.writeSync(text.subarray(done));
    req.log?.(
      `hook ${shell}: status ${r.status}, ${Object.keys(r.changes).length} names changed, ${
        (performance.now() - t0).toFixed(1)
      } ms`,
    );
    return r.status;
  } catch (e) {
    if (!(e instanceof StshError)) throw e;
    notice(e.message + (e.hint ? ` ${e.hint}` : ""));
    return e.exitCode;
  }
}

/** A week: a reference file older than this belongs to a shell long gone (or idle). */
const STALE_REF_MS = 7 * 86400_000;

/**
 * The private run/ directory where bash, zsh and fish keep each shell's reference file (its mtime:
 * when the shell last read its tag, PROTOCOL.md). Made when missing — one stat otherwise —
 * and now and then swept of references older than a week; a shell whose reference went
 * simply reads its tag at the next prompt and writes a new one. Never an error: without it,
 * the shells read the tag at every prompt, as they must.
 */
async function keepRunDir(env: Record<string, string>) {
  const dir = join(stateDir(env), "run");
  try {
    if (!Deno.statSync(dir).isDirectory) return;
  } catch {
    await privateDir(dir).catch(() => {});
    return;
  }
  if (Math.random() >= 0.05) return;
  try {
    const old = Date.now() - STALE_REF_MS;
    for (const e of Deno.readDirSync(dir)) {
      if (!/^(bash|zsh|fish)\.\d+$/.test(e.name)) continue;
      const st = Deno.lstatSync(join(dir, e.name));
      if (st.isFile && (st.mtime?.getTime() ?? 0) < old) Deno.removeSync(join(dir, e.name));
    }
  } catch { /* another shell swept first */ }
}

/**
 * The directory as the shell sees it: `$PWD` when it names the working directory (so a
 * tag above a symlink is found as the hook's own walk finds it), else the physical one.
 * A stale `$PWD` (pwsh does not maintain it) fails the check and is ignored.
 */
async function logicalCwd(): Promise<string> {
  const physical = Deno.cwd();
  const pwd = Deno.env.get("PWD");
  if (!pwd || !isAbsolute(pwd) || pwd === physical) return physical;
  try {
    if ((await Deno.realPath(pwd)) === (await Deno.realPath(physical))) return pwd;
  } catch { /* fall back */ }
  return physical;
}

function usage(): number {
  notice(HOOK_USAGE);
  return EXIT.refused;
}
