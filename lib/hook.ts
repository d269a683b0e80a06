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
  STATE_VARS,
} from "./formats.ts";
import { findTag, inspectTag, TrustStore } from "./trust.ts";
import { notice } from "./tty.ts";
import { configStamp, isAbsolute, PROFILE_NAME, refreshMargin } from "./paths.ts";
import { Cache, isFresh } from "./cache.ts";

export interface HookRequest {
  cwd: string;
  env: Record<string, string>;
  /** May the terminal be asked for an MFA code? */
  prompt: boolean;
  /** Do not repeat a notice the shell has already shown for this tag. */
  quiet: boolean;
  assume?: string;
  unassume?: boolean;
  now?: () => number;
  log?: (m: string) => void;
}

export interface HookResult {
  changes: ChangeSet;
  status: number;
}

/** The hook state kept in the environment. */
export class HookState {
  readonly profile: string;
  readonly root: string;
  readonly expires: number;
  readonly pinned: boolean;
  readonly prev: Record<string, string | null>;

  constructor(readonly env: Record<string, string>) {
    this.profile = env.STSH_PROFILE ?? "";
    this.root = env.STSH_ROOT ?? "";
    this.expires = Number(env.STSH_EXPIRES) || 0;
    this.pinned = env.STSH_PINNED === "1";
    this.prev = parsePrev(env.STSH_PREV);
  }

  get active(): boolean {
    return this.profile !== "";
  }

  /** The environment as the person had it before stsh changed anything. */
  userEnv(): Record<string, string> {
    const out = { ...this.env };
    for (const k of STATE_VARS) delete out[k];
    if (!this.active) return out;
    for (const k of AWS_VARS) {
      const v = this.prev[k];
      if (typeof v === "string") out[k] = v;
      else delete out[k];
    }
    return out;
  }

  /** Put back every variable stsh changed, and forget the state. */
  restore(): ChangeSet {
    if (!this.active && !this.env.STSH_PREV) return {};
    const c: ChangeSet = {};
    for (const k of AWS_VARS) c[k] = this.prev[k] ?? null;
    for (const k of STATE_VARS) c[k] = null;
    return c;
  }

  activate(
    profile: string,
    root: string,
    pinned: boolean,
    creds: Parameters<typeof credentialChanges>[0],
  ): ChangeSet {
    const prev: Record<string, string | null> = this.active ? { ...this.prev } : {};
    if (!this.active) { for (const k of AWS_VARS) prev[k] = this.env[k] ?? null; }
    const c: ChangeSet = {};
    for (const k of AWS_VARS) c[k] = prev[k] ?? null; // anything the credentials leave out
    Object.assign(c, credentialChanges(creds));
    c.STSH_PROFILE = profile;
    c.STSH_ROOT = root;
    c.STSH_EXPIRES = creds.expiration
      ? String(Math.floor(creds.expiration.getTime() / 1000))
      : null;
    c.STSH_PINNED = pinned ? "1" : null;
    c.STSH_PREV = JSON.stringify(prev);
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
    for (const k of AWS_VARS) {
      if (typeof o?.[k] === "string" || o?.[k] === null) out[k] = o[k];
    }
    return out;
  } catch {
    return {};
  }
}

export async function decide(req: HookRequest): Promise<HookResult> {
  const state = new HookState(req.env);
  const now = req.now ?? Date.now;
  const say = (text: string) => req.quiet || notice(text);

  if (req.unassume) return { changes: state.restore(), status: EXIT.ok };

  const activate = async (profile: string, root: string, pinned: boolean) => {
    const userEnv = state.userEnv();
    const margin = refreshMargin(userEnv);
    const quick = await new Cache(userEnv).quick(
      profile,
      await configStamp(userEnv),
      (s) => isFresh(s, now(), margin),
    );
    if (quick) {
      req.log?.(`cache hit without parsing the config: ${profile}`);
      const { session: s, region } = quick;
      return state.activate(profile, root, pinned, {
        ...s,
        expiration: new Date(s.expiration),
        region,
      });
    }
    // Loaded only now: the AWS config parser and the engine are the slow part of start-up,
    // and the paths without a trusted tag or with a warm cache never need them.
    const [{ loadConfig }, { resolve }] = await Promise.all([
      import("./config.ts"),
      import("./engine.ts"),
    ]);
    const config = await loadConfig(userEnv);
    if (!config.profiles.has(profile)) return null;
    const creds = await resolve(profile, {
      env: userEnv,
      interactive: req.prompt,
      config,
      now,
      log: req.log,
    });
    return state.activate(profile, root, pinned, creds);
  };

  /** Resolve, mapping "needs a code" and "cancelled" to the protocol's statuses. */
  const attempt = async (
    profile: string,
    root: string,
    pinned: boolean,
    onFailure: ChangeSet,
  ): Promise<HookResult> => {
    try {
      const changes = await activate(profile, root, pinned);
      if (!changes) {
        say(`profile '${profile}' is not in your AWS config; nothing set.`);
        return { changes: onFailure, status: EXIT.refused };
      }
      return { changes, status: EXIT.ok };
    } catch (e) {
      if (e instanceof MfaNeeded) {
        return { changes: onFailure, status: req.prompt ? EXIT.mfaNoTerminal : EXIT.mfaNeeded };
      }
      if (e instanceof Cancelled) return { changes: state.restore(), status: EXIT.cancelled };
      if (e instanceof StshError) {
        notice(e.message + (e.hint ? ` ${e.hint}` : ""));
        // Credentials that still work stay; anything else is put back.
        const alive = state.active && state.profile === profile && state.expires * 1000 > now();
        return { changes: alive ? {} : state.restore(), status: EXIT.error };
      }
      throw e;
    }
  };

  if (req.assume !== undefined) {
    if (!PROFILE_NAME.test(req.assume)) {
      throw new StshError(`'${req.assume}' is not a profile name.`, undefined, EXIT.refused);
    }
    return await attempt(req.assume, "", true, {});
  }

  if (state.pinned) {
    if (state.fresh(now())) return { changes: {}, status: EXIT.ok };
    return await attempt(state.profile, "", true, {});
  }

  const tag = await findTag(req.cwd);
  if (!tag) return { changes: state.restore(), status: EXIT.ok };
  const st = await inspectTag(tag);
  if (!st.ok) {
    say(st.reason);
    return { changes: state.restore(), status: EXIT.refused };
  }
  const trust = new TrustStore(req.env);
  if (!(await trust.isAllowed(st.realRoot, st.content))) {
    say(
      (await trust.isDenied(st.realRoot))
        ? `${tag.file} (profile '${st.profile}') is denied; \`stsh allow\` trusts it again.`
        : `${tag.file} asks for '${st.profile}': run \`stsh allow\` to trust it.`,
    );
    return { changes: state.restore(), status: EXIT.refused };
  }
  if (state.root === tag.root && state.profile === st.profile && state.fresh(now())) {
    return { changes: {}, status: EXIT.ok };
  }
  // Leaving one tag for another, or renewing: nothing stale may stay behind while we ask.
  return await attempt(st.profile, tag.root, false, state.restore());
}

const HOOK_USAGE =
  "usage: stsh hook bash|zsh|pwsh [--prompt] [--quiet] [--assume PROFILE | --unassume]";

/**
 * `stsh hook SHELL …`, the command the shell hooks run. It is parsed here, without the
 * general CLI, because it runs on every `cd` into a tagged tree: loading commander alone
 * costs more than the rest of a warm run.
 */
export async function hookMain(args: string[]): Promise<number> {
  const [shell, ...rest] = args;
  const fmt = HOOK_FORMATS[shell];
  const req: HookRequest = {
    cwd: await logicalCwd(),
    env: Deno.env.toObject(),
    prompt: false,
    quiet: false,
  };
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (a === "--prompt") req.prompt = true;
    else if (a === "--quiet") req.quiet = true;
    else if (a === "--unassume") req.unassume = true;
    else if (a === "--assume" && i + 1 < rest.length) req.assume = rest[++i];
    else if (a === "--debug") req.log = (m) => notice(`debug: ${m}`);
    else return usage();
  }
  if (!fmt) return usage();
  try {
    const r = await decide(req);
    const text = new TextEncoder().encode(fmt.export(r.changes));
    for (let done = 0; done < text.length;) done += Deno.stdout.writeSync(text.subarray(done));
    return r.status;
  } catch (e) {
    if (!(e instanceof StshError)) throw e;
    notice(e.message + (e.hint ? ` ${e.hint}` : ""));
    return e.exitCode;
  }
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
