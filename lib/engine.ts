/**
 * resolve(profile) -> credentials: the cache first, then STS, asking for an MFA code only
 * when no live MFA session can be used. One GetSessionToken with MFA per source keys and
 * device serves every role that uses them; role credentials are re-minted from it silently.
 */
import { Cache, cacheKey, type Holder, isFresh, type Session } from "./cache.ts";
import { type Config, type Keys, loadConfig, type Plan, plan, type Profile } from "./config.ts";
import { EXIT, MfaNeeded, MfaRefused, StshError } from "./errors.ts";
import { checkCredentials } from "./formats.ts";
import { describeIoError } from "./fsafe.ts";
import { CodeSource } from "./mfa.ts";
import { helperTimeoutMs, runHelper } from "./proc.ts";
import {
  assumeRole,
  type CallTarget,
  getSessionToken,
  type Issued,
  sdkCredentials,
} from "./sts.ts";
import { notice, openTerminal } from "./tty.ts";
import { configStamp, refreshMargin } from "./paths.ts";
import { SessionVault, storedKeys } from "./secrets.ts";

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
  /** The target profile's own region; absent: leave the user's AWS_REGION alone. */
  region?: string;
  profile: string;
  arn?: string;
}

export interface ResolveOptions {
  /** The person's environment: config paths, region, endpoint, environment credentials. */
  env?: Record<string, string>;
  tokenCode?: string;
  /** May the terminal be asked for a code? */
  interactive: boolean;
  /** Pass long-term keys through instead of a GetSessionToken session. */
  noSession?: boolean;
  /** With noSession: export long-term keys even when the profile has an MFA device. */
  force?: boolean;
  /**
   * Another process holds the session's lock: "bounded" waits — up to STSH_LOCK_TIMEOUT for
   * a caller that may ask a person, a few seconds (never for a person) for one that may not;
   * "never" gives up at once (a credential endpoint answering an HTTP request).
   */
  wait?: "never" | "bounded";
  config?: Config;
  now?: () => number;
  log?: (message: string) => void;
}

const CHAIN_CAP = 3600;
/** A caller that may not ask a person waits this long for a holder that says nothing. */
const QUIET_WAIT_MS = 3_000;
/** … and this long for a holder at work (its STS calls and helpers have deadlines). */
const WORK_WAIT_MS = 30_000;

/** How long a caller that may ask a person waits on a lock: STSH_LOCK_TIMEOUT, default 600 s. */
export function lockTimeoutMs(env: Record<string, string>): number {
  const s = Number(env.STSH_LOCK_TIMEOUT);
  return env.STSH_LOCK_TIMEOUT !== undefined && Number.isFinite(s) && s >= 0 ? s * 1000 : 600_000;
}

const sinceText = (h: Holder) => {
  const t = Date.parse(h.since);
  return Number.isFinite(t) ? `, since ${new Date(t).toTimeString().slice(0, 8)}` : "";
};

/** What a lock's holder is doing, in words: "the MFA code being typed in another terminal (pid 42)". */
function holderText(h: Holder | null, label: string): string {
  if (!h) return `another stsh, which holds the ${label}`;
  if (h.doing === "question") {
    return `the MFA code being typed in another terminal (pid ${h.pid}${sinceText(h)})`;
  }
  return `another stsh (pid ${h.pid}${sinceText(h)}) getting the ${h.label}`;
}

class Resolver {
  readonly env: Record<string, string>;
  readonly cache: Cache;
  /** Where MFA sessions' secrets go (a secret store when one is active); opened lazily. */
  readonly vault: SessionVault;
  readonly now: () => number;
  readonly margin: number;
  readonly log: (m: string) => void;
  codes?: CodeSource;
  /** The cache key of the session run() returned last. */
  lastKey?: string;
  /** Why something paid for could not be saved: said once, in one line, at the end. */
  readonly unsaved = new Set<string>();
  private person?: boolean;

  constructor(readonly pl: Plan, readonly config: Config, readonly opts: ResolveOptions) {
    this.env = opts.env ?? Deno.env.toObject();
    this.vault = new SessionVault({ env: this.env, interactive: opts.interactive });
    this.cache = new Cache(this.env, this.vault);
    this.now = opts.now ?? Date.now;
    this.margin = refreshMargin(this.env);
    this.log = opts.log ?? (() => {});
  }

  fresh(s: Session): boolean {
    return isFresh(s, this.now(), this.margin);
  }

  target(k: Keys): CallTarget {
    // Only the keys: a cached session's string expiration would confuse the SDK.
    const credentials = {
      accessKeyId: k.accessKeyId,
      secretAccessKey: k.secretAccessKey,
      sessionToken: k.sessionToken,
    };
    return { region: this.pl.region, endpoint: this.pl.endpoint, credentials };
  }

  codeSource(): CodeSource {
    this.codes ??= new CodeSource({
      serial: this.pl.mfaSerial!,
      profile: this.pl.target.name,
      tokenCode: this.opts.tokenCode,
      mfaProcess: this.pl.mfaProcess,
      interactive: this.opts.interactive,
      env: this.env,
      onAsk: (asking) => this.cache.nowDoing(asking ? "question" : "working"),
    });
    return this.codes;
  }

  /** May this resolve ask a person (and so wait for one)? */
  mayAskPerson(): boolean {
    if (this.person === undefined) {
      let ok = this.opts.interactive && this.opts.wait !== "never";
      if (ok) {
        const t = openTerminal();
        ok = t !== null;
        t?.close();
      }
      this.person = ok;
    }
    return this.person;
  }

  /**
   * Decide, each time a session's lock is found taken, whether to wait on: say once what is
   * awaited (again when it changes), and give up by the rules of ResolveOptions.wait.
   */
  lockPolicy(label: string) {
    let said = "";
    const limit = lockTimeoutMs(this.env);
    const busy = (h: Holder | null, why: string) => {
      const text = `Not waiting for ${holderText(h, label)}: ${why}.`;
      const hint = h?.doing === "question"
        ? "Answer the question there, then run this again (or pass --token-code)."
        : "Run it again in a moment, or in a terminal.";
      const serial = this.pl.mfaSerial;
      return serial
        ? new MfaNeeded(serial, this.pl.target.name, text, hint)
        : new StshError(text, hint);
    };
    return (h: Holder | null, waitedMs: number) => {
      if (this.opts.wait === "never") throw busy(h, "this caller never waits");
      const person = this.mayAskPerson();
      if (!person) {
        if (h?.doing === "question") throw busy(h, "there is no terminal here");
        if (!h && waitedMs >= QUIET_WAIT_MS) {
          throw busy(h, `no terminal here, and ${Math.round(waitedMs / 1000)} s passed`);
        }
        if (waitedMs >= WORK_WAIT_MS) {
          throw busy(h, `${Math.round(waitedMs / 1000)} s passed`);
        }
      } else if (waitedMs >= limit) {
        throw new StshError(
          `Gave up after ${Math.round(waitedMs / 1000)} s waiting for ${holderText(h, label)}.`,
          "Answer or cancel the question there; STSH_LOCK_TIMEOUT sets the limit in seconds.",
        );
      }
      // Said once (as soon as the holder says who it is), and again when a person is asked.
      const kind = h?.doing ?? "unknown";
      if ((said === "" && (h || waitedMs >= 500)) || (kind === "question" && said !== kind)) {
        said = kind;
        notice(`waiting for ${holderText(h, label)}…`);
      }
    };
  }

  /** Run an STS call that carries an MFA code, re-asking a person after a refused code. */
  async withCode(call: (code: string) => Promise<Issued>): Promise<Issued> {
    const src = this.codeSource();
    let reason: string | undefined;
    while (true) {
      const code = await src.next(reason);
      // Spent unless STS surely never got it (no connection): then the same code still works.
      let spent = true;
      try {
        return await call(code);
      } catch (e) {
        if (e instanceof StshError && e.notSent) spent = false;
        // Only a refused code is worth another try; a wrong device or role is not.
        if (!(e instanceof MfaRefused) || !src.canRetry) throw e;
        reason = e.message;
      } finally {
        if (spent) await this.remember(code);
      }
    }
  }

  /** A cached session for `key`, or a new one from `mint`, under the key's lock. */
  async session(
    key: string,
    label: string,
    mint: () => Promise<Session>,
  ): Promise<Session> {
    const quick = await this.cache.read(key);
    if (quick && this.fresh(quick)) {
      this.log(`cache hit: ${label} until ${quick.expiration} (${this.cache.file(key)})`);
      this.lastKey = key;
      return quick;
    }
    this.log(
      `cache ${quick ? `has an expiring ${label} (until ${quick.expiration})` : `miss: ${label}`}`,
    );
    const s = await this.cache.withLock(key, async () => {
      const again = await this.cache.read(key);
      if (again && this.fresh(again)) {
        this.log(`cache hit after waiting: ${label}`);
        return again;
      }
      this.log(`minting: ${label}`);
      const t0 = performance.now();
      const s = await mint();
      this.log(
        `minted ${label} in ${ms(t0)}, until ${s.expiration}${s.arn ? ` as ${s.arn}` : ""}`,
      );
      // Refused now, not cached and refused at every later use.
      checkCredentials(
        {
          accessKeyId: s.accessKeyId,
          secretAccessKey: s.secretAccessKey,
          sessionToken: s.sessionToken,
        },
        `The credentials STS gave for the ${label}`,
      );
      try {
        await this.cache.write(key, s);
        this.log(`saved ${label}: ${this.cache.file(key)}`);
      } catch (e) {
        this.unsaved.add(reason(e));
      }
      return s;
    }, {
      label,
      poll: this.lockPolicy(label),
      onNoLock: (why) => this.log(`no lock for ${label}: ${why}`),
    });
    this.lastKey = key; // after any session minted inside, so the outermost one is last
    return s;
  }

  /**
   * Long-term keys with their secret: from the secret store when they live there. The one
   * place keys come out of a store, reached only when STS must be called with them.
   */
  async longTerm(k: Keys): Promise<Keys> {
    if (!k.keyring) return k;
    this.log(`reading the keys of '${this.pl.base.profile.name}' from ${k.keyring}`);
    return await storedKeys(this.pl.base.profile.name, {
      accessKeyId: k.accessKeyId,
      stored: k.keyring,
    }, { env: this.env, interactive: this.opts.interactive });
  }

  /** A code was spent: remember it, or say (once, at the end) why it could not be. */
  async remember(code: string) {
    try {
      await this.codeSource().guard.remember(this.pl.mfaSerial!, code);
    } catch (e) {
      this.unsaved.add(`the replay guard: ${reason(e)}`);
    }
  }

  async baseKeys(): Promise<Keys & { expiration?: Date }> {
    const b = this.pl.base;
    if (b.kind === "keys") return await this.longTerm(b.keys);
    if (b.kind === "environment") {
      const id = this.env.AWS_ACCESS_KEY_ID, secret = this.env.AWS_SECRET_ACCESS_KEY;
      if (!id || !secret) {
        throw new StshError(
          `Profile '${b.profile.name}' uses credential_source = Environment, but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set.`,
        );
      }
      return { accessKeyId: id, secretAccessKey: secret, sessionToken: this.env.AWS_SESSION_TOKEN };
    }
    if (b.kind === "process") return await processCredentials(b.profile.name, b.command, this.env);
    return await sdkCredentials(
      b.profile.name,
      b.via,
      this.config,
      helperTimeoutMs(this.env),
      b.via === "web_identity" ? b.profile.raw.web_identity_token_file : undefined,
    );
  }

  /** GetSessionToken on long-term keys: with MFA when a device is configured. */
  async userSession(keys: Keys): Promise<Session> {
    const serial = this.pl.mfaSerial;
    const duration = this.pl.base.profile.mfaSessionDurationSeconds;
    const key = cacheKey({
      kind: "session",
      keyId: keys.accessKeyId,
      serial,
      duration,
      endpoint: this.pl.endpoint,
    });
    const what = `GetSessionToken for '${this.pl.base.profile.name}'`;
    return await this.session(key, `MFA session of '${this.pl.base.profile.name}'`, async () => {
      const full = await this.longTerm(keys);
      // Whatever the store must ask (unlock, a passphrase) is asked before the code is spent.
      if (serial) await this.vault.ready();
      const got = serial
        ? await this.withCode((code) =>
          getSessionToken(this.target(full), { durationSeconds: duration, serial, code, what })
        )
        : await getSessionToken(this.target(full), { durationSeconds: duration, what });
      return toSession(
        got,
        serial ? "mfa-session" : "session",
        this.pl.base.profile.name,
        !!serial,
        this.now(),
      );
    });
  }

  async assume(
    role: Profile,
    source: () => Promise<Keys>,
    sourceId: string,
    opts: {
      chained: boolean;
      withCode: boolean;
      note?: string;
      /** A new source when STS refuses the cached one (expired early, or revoked). */
      renewSource?: () => Promise<Keys>;
    },
  ): Promise<Session> {
    let duration = role.durationSeconds;
    if (opts.chained && duration !== undefined && duration > CHAIN_CAP) {
      notice(
        `profile '${role.name}' asks for duration_seconds ${duration}, but AWS caps a role assumed from another session at 1 h; using 3600.`,
      );
      duration = CHAIN_CAP;
    }
    const serial = opts.withCode ? this.pl.mfaSerial : undefined;
    const key = cacheKey({
      kind: "role",
      source: sourceId,
      role: role.roleArn,
      externalId: role.externalId,
      sessionName: role.roleSessionName,
      duration,
      serial,
      endpoint: this.pl.endpoint,
    });
    const what = `AssumeRole for '${role.name}'`;
    return await this.session(key, `role '${role.name}'`, async () => {
      const p = {
        roleArn: role.roleArn!,
        sessionName: role.roleSessionName ?? `stsh-${Math.floor(this.now() / 1000)}`,
        externalId: role.externalId,
        durationSeconds: duration,
        what,
      };
      const creds = await source();
      if (opts.note) notice(opts.note);
      let got: Issued;
      try {
        got = serial
          ? await this.withCode((code) => assumeRole(this.target(creds), { ...p, serial, code }))
          : await assumeRole(this.target(creds), p);
      } catch (e) {
        const code = e instanceof StshError ? e.stsCode ?? "" : "";
        if (!opts.renewSource || !/^(ExpiredToken|InvalidClientTokenId)$/.test(code)) throw e;
        notice("STS refused the cached MFA session (expired or revoked); starting a new one.");
        got = await assumeRole(this.target(await opts.renewSource()), p);
      }
      return toSession(got, "role", role.name, false, this.now());
    });
  }

  async run(): Promise<Credentials> {
    const { pl } = this;
    const done = (k: Keys & { expiration?: Date | string; arn?: string }): Credentials => ({
      accessKeyId: k.accessKeyId,
      secretAccessKey: k.secretAccessKey,
      sessionToken: k.sessionToken,
      expiration: k.expiration ? new Date(k.expiration) : undefined,
      region: pl.exportRegion,
      profile: pl.target.name,
      arn: k.arn,
    });
    const b = pl.base;
    const longTerm = b.kind === "keys" && !b.keys.sessionToken;
    if (this.opts.noSession && pl.roles.length > 0) {
      throw new StshError(
        `Profile '${pl.target.name}' is a role: --no-session (pass a keys-only profile's long-term keys through) does not apply to it.`,
        "Leave out --no-session; a role always gives a session.",
        EXIT.refused,
      );
    }
    if (pl.roles.length === 0) {
      if (longTerm && this.opts.noSession && pl.mfaSerial) {
        const name = pl.target.name;
        if (!this.opts.force) {
          throw new StshError(
            `Profile '${name}' has an MFA device (mfa_serial): --no-session would export its long-term keys, which carry no MFA and never expire.`,
            "Leave out --no-session to get an MFA session, or add --force to export the long-term keys anyway.",
            EXIT.refused,
          );
        }
        notice(
          `warning: exporting the long-term keys of '${name}' (--no-session --force): they carry no MFA and never expire.`,
        );
      }
      if (!longTerm || this.opts.noSession) return done(await this.baseKeys());
      // The key id names the session: its secret is fetched only if one must be made.
      return done(await this.userSession(b.keys));
    }
    // Source credentials are fetched only when a role really has to be assumed, so a cache
    // hit never runs an SDK provider (SSO, credential_process) or loads the SDK at all.
    let source: () => Promise<Keys> = () => this.baseKeys();
    let sourceId = b.kind === "keys"
      ? `keys:${b.keys.accessKeyId}`
      : b.kind === "environment"
      ? `env:${this.env.AWS_ACCESS_KEY_ID ?? ""}`
      : b.kind === "process"
      ? `process:${b.profile.name}:${b.command}`
      : `sdk:${b.profile.name}:${b.via}`;
    let last: Session | undefined;
    for (const [i, role] of pl.roles.entries()) {
      let chained = i > 0 || !longTerm;
      let withCode = false;
      let note: string | undefined;
      let renewSource: (() => Promise<Keys>) | undefined;
      if (i === 0 && pl.mfaSerial) {
        const direct = !longTerm ||
          (pl.roles.length === 1 && (role.durationSeconds ?? 3600) > CHAIN_CAP);
        if (direct) {
          withCode = true;
          if (longTerm) {
            note =
              `profile '${role.name}' asks for ${role.durationSeconds} s; AWS caps roles assumed from an MFA session at 1 h, so it is assumed directly with an MFA code (one code per ${role.durationSeconds} s role session).`;
          }
        } else {
          // The MFA session is needed only to mint the role: a role session still fresh is
          // used even when the MFA session behind it has ended.
          const keys = b.keys;
          let sessionKey: string | undefined;
          const fromSession = async () => {
            const session = await this.userSession(keys);
            sessionKey = this.lastKey;
            return session;
          };
          source = fromSession;
          renewSource = async () => {
            if (sessionKey) await this.cache.remove(sessionKey);
            return await fromSession();
          };
          sourceId = `mfa:${sourceId}:${pl.mfaSerial}`;
          chained = true;
        }
      }
      last = await this.assume(role, source, sourceId, { chained, withCode, note, renewSource });
      const s = last;
      source = () => Promise.resolve(s);
      sourceId = `${sourceId}>${role.roleArn}`;
    }
    return done(last!);
  }
}

function toSession(
  got: Issued,
  kind: Session["kind"],
  profile: string,
  mfa: boolean,
  nowMs: number,
): Session {
  return {
    issued: new Date(nowMs).toISOString().replace(/\.\d{3}Z$/, "Z"),
    accessKeyId: got.accessKeyId,
    secretAccessKey: got.secretAccessKey,
    sessionToken: got.sessionToken,
    expiration: got.expiration.toISOString().replace(/\.\d{3}Z$/, "Z"),
    kind,
    profile,
    arn: got.arn,
    mfa,
  };
}

/**
 * Why something could not be saved, in a few words: the directory, not each file in it (two
 * sessions that failed for one reason are said once).
 */
const reason = (e: unknown) =>
  (e instanceof StshError ? e.message : describeIoError(e))
    .replace(/[\\/][0-9a-f]{32,40}\.json\b/g, "").replace(/\.$/, "");

/**
 * credential_process (sts.md §6.3), run by stsh itself so it gets a deadline and its process
 * group is killed: stdout is JSON, Version 1, AccessKeyId, SecretAccessKey, SessionToken?,
 * Expiration? (ISO 8601). Everything is checked before it is used.
 */
export async function processCredentials(
  profile: string,
  command: string,
  env: Record<string, string>,
): Promise<Keys & { expiration?: Date }> {
  const what = `credential_process of profile '${profile}'`;
  const text = await runHelper(command, { what, env, childEnv: env, maxOutputBytes: 256 * 1024 });
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(text);
    if (!o || typeof o !== "object" || Array.isArray(o)) throw new Error();
  } catch {
    throw new StshError(`${what} did not print a JSON object.`);
  }
  if (o.Version !== 1) {
    throw new StshError(
      `${what} printed Version ${JSON.stringify(o.Version ?? null).slice(0, 20)}; only 1 is known.`,
    );
  }
  for (const k of ["AccessKeyId", "SecretAccessKey"]) {
    if (typeof o[k] !== "string" || o[k] === "") {
      throw new StshError(`${what} printed no ${k}.`);
    }
  }
  for (const k of ["SessionToken", "Expiration"]) {
    if (o[k] !== undefined && o[k] !== null && typeof o[k] !== "string") {
      throw new StshError(`${what} printed a ${k} that is not a string.`);
    }
  }
  const keys = {
    accessKeyId: o.AccessKeyId as string,
    secretAccessKey: o.SecretAccessKey as string,
    sessionToken: (o.SessionToken as string | undefined) || undefined,
  };
  checkCredentials(keys, `The credentials ${what} printed`);
  let expiration: Date | undefined;
  if (o.Expiration) {
    expiration = new Date(o.Expiration as string);
    if (isNaN(expiration.getTime())) {
      throw new StshError(`${what} printed an Expiration that is not a date.`);
    }
    if (expiration.getTime() <= Date.now()) {
      throw new StshError(`${what} printed credentials that expired at ${o.Expiration}.`);
    }
  }
  return { ...keys, expiration };
}

/** Credentials for `profile`, with as few MFA prompts as AWS allows. */
/** What a plan is, in one line for --debug: never a secret (the key id is masked). */
function describePlan(pl: Plan): string {
  const b = pl.base;
  const base = b.kind === "keys"
    ? `keys of '${b.profile.name}' (${b.keys.accessKeyId.slice(0, 4)}…${
      b.keys.accessKeyId.slice(-4)
    }${b.keys.keyring ? `, in ${b.keys.keyring}` : ""}${b.keys.sessionToken ? ", session" : ""})`
    : b.kind === "environment"
    ? "the environment's keys"
    : b.kind === "process"
    ? `credential_process of '${b.profile.name}'`
    : `${b.via} of '${b.profile.name}'`;
  const roles = pl.roles.map((r) => `${r.name} (${r.roleArn})`).join(" -> ");
  return `plan for '${pl.target.name}': ${base}${roles ? ` -> ${roles}` : ""}; MFA ${
    pl.mfaSerial ?? "none"
  }${pl.mfaProcess ? " via mfa_process" : ""}; STS ${pl.endpoint} in ${pl.region}; exports region ${
    pl.exportRegion ?? "(none: yours is left alone)"
  }`;
}

const ms = (t0: number) => `${(performance.now() - t0).toFixed(0)} ms`;

export async function resolve(profile: string, opts: ResolveOptions): Promise<Credentials> {
  const t0 = performance.now();
  const env = opts.env ?? Deno.env.toObject();
  const log = opts.log ?? (() => {});
  // Taken before the files are read: an edit made meanwhile gives a stamp the index does
  // not hold, so the next run parses again instead of trusting what this one found.
  const stamp = configStamp(env);
  const config = opts.config ?? await loadConfig(env);
  log(
    `config: ${config.configPath}, credentials: ${config.credentialsPath} (${config.profiles.size} profiles${
      opts.config ? "" : `, read in ${ms(t0)}`
    })`,
  );
  const pl = plan(config, profile, env);
  log(describePlan(pl));
  const r = new Resolver(pl, config, { ...opts, env });
  try {
    const creds = await r.run();
    log(`resolved '${profile}' in ${ms(t0)}`);
    // Keys-based chains depend only on the files and env in the stamp: remember the result.
    if (pl.base.kind === "keys" && r.lastKey && !opts.noSession && !pl.base.keys.sessionToken) {
      try {
        await r.cache.rememberTarget(profile, {
          stamp,
          key: r.lastKey,
          region: pl.exportRegion ?? "",
        });
      } catch (e) {
        r.log(`index not saved: ${reason(e)}`);
      }
    }
    return creds;
  } finally {
    r.codes?.close();
    for (const w of new Set(r.cache.warnings)) notice(w);
    if (r.unsaved.size) {
      notice(
        `warning: the new credentials are used but not saved (${
          [...r.unsaved].join("; ")
        }); the next run may ask for an MFA code again.`,
      );
    }
  }
}
